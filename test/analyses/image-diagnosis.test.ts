/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * The federated diagnosis on data/sample (300 Fashion-MNIST images over 3 nodes with planted
 * flips and lighting faults): request checks, quality floors measured on the sample, and
 * federated == pooled for the same probabilities (a user ONNX classifier).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BadRequestError } from '../../src/errors.js';
import { datasetFromFolder, decodeImage, mergeSums, meanStd, type Dataset } from '../../src/images/index.js';
import { exportClassifierOnnx } from '../../src/ml/classifier-export.js';
import { ConvFeatureExtractor, randomConvSpec } from '../../src/ml/features.js';
import { localFeatureSums, localUpdate, standardize, standardizerFrom, zeroWeights } from '../../src/ml/softmax.js';
import { diagnose, findDuplicates, flaggedPaths, parseDiagnosisRequest, summaryRows, type DiagnosisResult } from '../../analyses/image-diagnosis/index.js';

const SAMPLE = path.resolve('data/sample');
const NODES = ['node-a', 'node-b', 'node-c'];

interface Truth {
  flipped: Array<{ path: string }>;
  darkened: string[];
  brightened: string[];
}

let truth: Truth;
let builds: Awaited<ReturnType<typeof datasetFromFolder>>[];
beforeAll(async () => {
  truth = JSON.parse(await readFile(path.join(SAMPLE, 'truth.json'), 'utf8')) as Truth;
  builds = await Promise.all(NODES.map((n) => datasetFromFolder(path.join(SAMPLE, n))));
});

const rel = (p: string): string => path.relative(SAMPLE, p);
const relSet = (s: Set<string>): Set<string> => new Set([...s].map(rel));

function precisionRecall(flagged: Set<string>, faulty: Set<string>): { precision: number; recall: number } {
  const tp = [...flagged].filter((p) => faulty.has(p)).length;
  return { precision: tp / Math.max(1, flagged.size), recall: tp / faulty.size };
}

/** One pooled dataset (seed-000 request form) of the three nodes' folders. */
function pooledDataset(): Dataset {
  const classes = builds[0].dataset.classes;
  const class_files = Object.fromEntries(classes.map((c) => [c, Object.assign({}, ...builds.map((b) => b.dataset.class_files[c]))]));
  const { mean, std_dev } = meanStd(mergeSums(builds.map((b) => b.sums)));
  return { classes, mean, std_dev, class_files };
}

function fileCount(r: DiagnosisResult, task: string): number {
  const t = r.tasks.find((x) => x.name === task)!;
  return Object.values(t.datasets).reduce((a, ds) => a + Object.values(ds.class_files).reduce((b, f) => b + Object.keys(f).length, 0), 0);
}

describe('request checks', () => {
  test('missing and unknown fields are named', () => {
    const ds = { classes: ['a', 'b'], mean: [0.5], std_dev: [0.1], class_files: { a: { '/x.png': { uuid: 'u1' } } } };
    expect(() => parseDiagnosisRequest({ auto: false, dataset: ds, tasks: [{ name: 'lighting_conditions' }] })).toThrow(/request\.dataset_uuid/);
    expect(() => parseDiagnosisRequest({ dataset_uuid: 'd', dataset: ds, tasks: [{ name: 'sharpen' }] })).toThrow(/request\.tasks\[0\]\.name: unknown task "sharpen"/);
    expect(() => parseDiagnosisRequest({ dataset_uuid: 'd', dataset: { ...ds, class_files: { c: {} } }, tasks: [{ name: 'blurry' }] })).toThrow(/request\.dataset\.class_files\["c"\]: class "c" is not in request\.dataset\.classes/);
    expect(() => parseDiagnosisRequest({ dataset_uuid: 'd', dataset: { ...ds, class_files: { a: { '/x.png': {} } } }, tasks: [{ name: 'blurry' }] })).toThrow(/request\.dataset\.class_files\["a"\]\["\/x\.png"\]\.uuid: missing/);
    expect(() => parseDiagnosisRequest({ dataset_uuid: 'd', auto: false, dataset: ds, tasks: [] }, { needDataset: true })).toThrow(/request\.tasks: missing or empty/);
    expect(() => parseDiagnosisRequest({ dataset_uuid: 'd', auto: true }, { needDataset: true })).toThrow(/request\.dataset: missing/);
    expect(() => parseDiagnosisRequest('{"dataset_uuid": ')).toThrow(BadRequestError);
    // auto with no tasks runs every task
    expect(parseDiagnosisRequest({ dataset_uuid: 'd', auto: true }).tasks.map((t) => t.name)).toEqual(['mislabeled_images', 'lighting_conditions', 'blurry', 'odd_size', 'duplicates']);
  });

  test('duplicates: multi-index search finds every pair within the distance, as brute force does', () => {
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const hex = (): string => Array.from({ length: 16 }, () => Math.floor(rnd() * 16).toString(16)).join('');
    const flip = (h: string, bits: number[]): string => {
      let b = BigInt('0x' + h);
      for (const i of bits) b ^= 1n << BigInt(i);
      return b.toString(16).padStart(16, '0');
    };
    const base = Array.from({ length: 40 }, hex);
    // every signature equal, so verification confirms each candidate and the hash search alone decides
    const signature = '01'.repeat(63);
    const images = base.flatMap((h, i) => [
      { node: 'a', uuid: `a${i}`, phash: h, signature, digest: `d${i}` },
      ...(i % 4 === 0 ? [{ node: 'b', uuid: `b${i}`, phash: flip(h, [i % 64, (i * 7 + 3) % 64]), signature, digest: `e${i}` }] : []),
      ...(i % 5 === 0 ? [{ node: 'c', uuid: `c${i}`, phash: h, signature, digest: `d${i}` }] : []),
    ]);
    const marks = findDuplicates(images, 2);
    const flagged = [...marks.keys()].map((i) => images[i].uuid).sort();
    const expected = images.filter((im) => im.node !== 'a').map((im) => im.uuid).sort();
    expect(flagged).toEqual(expected);
    const c0 = marks.get(images.findIndex((im) => im.uuid === 'c0'))!;
    expect(c0).toEqual({ issue: 'exact_duplicate', distance: 0, duplicate_of: 'a0', duplicate_of_node: 'a' });
    expect(marks.get(images.findIndex((im) => im.uuid === 'b4'))).toMatchObject({ issue: 'near_duplicate', distance: 2, duplicate_of: 'a4' });
    expect(findDuplicates(images, 1).size).toBe(images.filter((im) => im.node === 'c').length);
  });

  test('duplicates: an identical pHash whose signature does not correlate is refused; identical content never is', () => {
    const a = { node: 'a', uuid: 'a', phash: '0123456789abcdef', signature: '40'.repeat(63), digest: 'd0' };
    const other = { node: 'b', uuid: 'b', phash: a.phash, signature: '40c0'.repeat(31) + '40', digest: 'd1' };
    const same = { node: 'c', uuid: 'c', phash: 'fedcba9876543210', signature: '00'.repeat(63), digest: 'd0' };
    const marks = findDuplicates([a, other, same]);
    expect([...marks.keys()]).toEqual([2]);
    expect(marks.get(2)).toMatchObject({ issue: 'exact_duplicate', duplicate_of: 'a' });
    expect(findDuplicates([a, other], 10, -1).size).toBe(1);
  });
});

describe('diagnosis on data/sample', () => {
  test('3 nodes: lighting and mislabeled floors; the response covers every file once per task', async () => {
    const nodes = NODES.map((id) => ({ id, data: { folder: path.join(SAMPLE, id) } }));
    const progress: number[] = [];
    const streamed: string[] = [];
    const r = await diagnose(
      { dataset_uuid: 'sample', tasks: [{ name: 'mislabeled_images' }, { name: 'lighting_conditions' }] },
      // Floors measured with disclosure control off (minimum count 1); the default's figures: image-diagnosis-disclosure.test.ts.
      { nodes, disclosure: { minCount: 1 }, onProgress: (p) => progress.push(p.progress), onTaskResult: (t) => streamed.push(t.name) },
    );
    expect(r.dataset_uuid).toBe('sample');
    expect(r.tasks.map((t) => t.name)).toEqual(['mislabeled_images', 'lighting_conditions']);
    expect(streamed).toEqual(['mislabeled_images', 'lighting_conditions']);
    expect(progress.at(-1)).toBe(1);
    expect(progress.every((p, i) => i === 0 || p >= progress[i - 1])).toBe(true);
    for (const t of r.tasks) expect(fileCount(r, t.name)).toBe(300);

    // Measured: lighting P = R = 1.000 (15 of 15 planted); mislabeled R 0.833, P 0.333 (20 of 24 flips in 60 flagged).
    const lighting = precisionRecall(relSet(flaggedPaths(r, 'lighting_conditions')), new Set([...truth.darkened, ...truth.brightened]));
    expect(lighting.recall).toBeGreaterThanOrEqual(0.93);
    expect(lighting.precision).toBeGreaterThanOrEqual(0.9);
    const mislabeled = precisionRecall(relSet(flaggedPaths(r, 'mislabeled_images')), new Set(truth.flipped.map((f) => f.path)));
    expect(mislabeled.recall).toBeGreaterThanOrEqual(0.66);
    expect(mislabeled.precision).toBeGreaterThanOrEqual(0.25);

    // The dataset-level mean/std of outliers ∪ inliers pool to the whole sample's, exactly from sums.
    const all = meanStd(mergeSums(builds.map((b) => b.sums)));
    const light = r.tasks[1].datasets;
    const nOut = Object.values(light.outliers.class_files).reduce((a, f) => a + Object.keys(f).length, 0);
    const pooledMean = (light.outliers.mean[0] * nOut + light.inliers.mean[0] * (300 - nOut)) / 300; // every image is 28×28
    expect(pooledMean).toBeCloseTo(all.mean[0], 12);
    // Seed-000 fields on every file, plus node and path; mislabeled outliers sit under the suggested class.
    const outliers = r.tasks[0].datasets.outliers.class_files;
    for (const [cls, files] of Object.entries(outliers)) {
      for (const f of Object.values(files)) {
        expect(f.current_class).toBe(cls);
        expect(f.current_class).not.toBe(f.original_class);
        expect(f.confidence_vectors).toHaveLength(1);
        expect(f.confidence_vectors![0]).toHaveLength(10);
        expect(f.projections!['2d']).toHaveLength(2);
        expect(f).toMatchObject({ width: 28, height: 28, channels: 1, issue: 'mislabeled' });
        expect(NODES).toContain(f.node);
        expect(f.path.startsWith(path.join(SAMPLE, f.node))).toBe(true);
      }
    }
    const rows = summaryRows(r);
    expect(rows.filter((x) => x.task === 'lighting_conditions').reduce((a, x) => a + x.outliers, 0)).toBe(nOut);
  }, 60_000);

  test('federated == pooled: with a user classifier, 3 nodes flag exactly what 1 node holding all images flags', async () => {
    // A classifier trained on the sample's own features (in-sample: only its probabilities matter here).
    const spec = randomConvSpec({ input: { channels: 1, height: 28, width: 28 }, mean: [0.29], std: [0.35] });
    const extractor = await ConvFeatureExtractor.create(spec);
    const pooled = pooledDataset();
    const paths: string[] = [];
    const labels: number[] = [];
    pooled.classes.forEach((c, k) => Object.keys(pooled.class_files[c]).forEach((p) => (paths.push(p), labels.push(k))));
    const pixels = new Float32Array(paths.length * 784);
    for (let i = 0; i < paths.length; i++) {
      const img = await decodeImage(paths[i]);
      for (let j = 0; j < 784; j++) pixels[i * 784 + j] = img.pixels[j] / 255;
    }
    const features = await extractor.extract({ count: paths.length, channels: 1, height: 28, width: 28, data: pixels });
    await extractor.release();
    const st = standardizerFrom(localFeatureSums(features, extractor.dim));
    const { weights } = await localUpdate(zeroWeights(extractor.dim, 10), standardize(features, st), Int32Array.from(labels), { epochs: 3 });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'diag-clf-'));
    const classifier = path.join(dir, 'classifier.onnx');
    await writeFile(classifier, exportClassifierOnnx(spec, st, weights));

    const tasks = ['mislabeled_images', 'lighting_conditions', 'blurry', 'odd_size', 'duplicates'].map((name) => ({ name }));
    // Exact equality holds with disclosure control off (minimum count 1): small counts are merged per node.
    const disclosure = { minCount: 1 };
    const one = await diagnose({ dataset_uuid: 'p', auto: false, dataset: pooled, tasks }, { classifier, disclosure });
    const three = await diagnose({ dataset_uuid: 'p', auto: false, tasks }, { classifier, disclosure, nodes: NODES.map((id) => ({ id, data: { folder: path.join(SAMPLE, id) } })) });
    for (const t of tasks) {
      const a = flaggedPaths(one, t.name as 'blurry');
      expect({ task: t.name, flagged: [...flaggedPaths(three, t.name as 'blurry')].sort() }).toEqual({ task: t.name, flagged: [...a].sort() });
    }
    // Not vacuous: the classifier and the lighting rules flag something.
    expect(flaggedPaths(one, 'mislabeled_images').size).toBeGreaterThan(3);
    expect(flaggedPaths(one, 'lighting_conditions').size).toBeGreaterThan(3);
    // Dataset-level statistics pool to the same values.
    for (const i of [0, 1]) {
      const [d1, d3] = [one.tasks[i].datasets.outliers, three.tasks[i].datasets.outliers];
      expect(d3.mean[0]).toBeCloseTo(d1.mean[0], 12);
      expect(d3.std_dev[0]).toBeCloseTo(d1.std_dev[0], 12);
    }
    // The pooled run keeps the request's uuids; the federated one names each file's node.
    const f1 = Object.values(one.tasks[1].datasets.inliers.class_files.Bag)[0];
    expect(f1.node).toBe('node-1');
    expect(pooled.class_files.Bag[f1.path].uuid).toBe(f1.uuid);
  }, 60_000);

  test('a corrupt image is reported in skipped and the others are diagnosed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'diag-corrupt-'));
    const pooled = pooledDataset();
    const broken = path.join(dir, 'broken.png');
    await writeFile(broken, Buffer.from('\x89PNG\r\n\x1a\nnot really'));
    pooled.class_files.Bag[broken] = { uuid: 'broken', width: 28, height: 28, channels: 1, mean: [0], std_dev: [0] };
    const r = await diagnose({ dataset_uuid: 'c', dataset: pooled, tasks: [{ name: 'lighting_conditions' }, { name: 'odd_size' }] }, { projections: false });
    expect(r.skipped).toEqual([{ node: 'node-1', path: broken, error: expect.stringContaining('broken.png') }]);
    expect(fileCount(r, 'lighting_conditions')).toBe(300);
  }, 30_000);
});
