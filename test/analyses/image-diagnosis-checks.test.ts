/**
 * @jest-environment ./test/helpers/onnx-environment.cjs
 */
/**
 * The opt-in checks of the federated diagnosis (`grayscale`, `low_information`, `odd_aspect_ratio`,
 * `outliers`) on real images: a few hundred Fashion-MNIST test images (Debian's
 * dataset-fashion-mnist) spread over 3 simulated nodes, with planted faults made by sharp. Each
 * check's precision and recall against its plants is printed and asserted, and the federated run
 * equals the pooled one (one node holding every image) at minimum count 1.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { datasetFromFolder, mergeSums, meanStd, readIdxImageSet, type Dataset } from '../../src/images/index.js';
import { diagnose, DIAGNOSIS_TASKS, parseDiagnosisRequest, type DiagnosisResult, type DiagnosedFile, type DiagnosisTaskName } from '../../analyses/image-diagnosis/index.js';
import { CHECK_BINS, checkCutoffsFrom, emptyCheckHistograms, mergeCheckHistograms } from '../../analyses/image-diagnosis/checks.js';
import { outlierCutoffFrom, outlierModelFrom, outlierScores, PIXELS } from '../../analyses/image-diagnosis/phases/outliers.js';
import { Tensor } from '../../src/index.js';
import { seeded } from '../protocol/worker-harness.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const CLASSES = ['T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle-boot'];
/** Clean images per dataset (the first of the test split), and plants per check. */
const CLEAN = 240;
const PLANTS = 12;
const NODES = ['node-a', 'node-b', 'node-c'];

let tmp: string;
let fashion: { images: Uint8Array; labels: Uint8Array; side: number };
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diag-checks-'));
  const set = await readIdxImageSet(path.join(FASHION, 't10k-images-idx3-ubyte.gz'), path.join(FASHION, 't10k-labels-idx1-ubyte.gz'));
  fashion = { images: set.images, labels: set.labels, side: set.rows };
}, 60_000);
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** Image `i` of the split: its grey bytes and class name. */
function fashionImage(i: number): { px: Buffer; label: string } {
  const n = fashion.side * fashion.side;
  return { px: Buffer.from(fashion.images.subarray(i * n, (i + 1) * n)), label: CLASSES[fashion.labels[i]] };
}

/** The file of image `name` on node `k` of dataset `root`, class folder made. */
async function fileFor(root: string, k: number, label: string, name: string): Promise<string> {
  const dir = path.join(root, NODES[k % NODES.length], label);
  await mkdir(dir, { recursive: true });
  return path.join(dir, name);
}

/** Writes the clean images (grey PNGs, or tinted RGB with `colour`), round-robin over the nodes. */
async function writeClean(root: string, colour: boolean, rand: () => number): Promise<void> {
  const s = fashion.side;
  for (let i = 0; i < CLEAN; i++) {
    const { px, label } = fashionImage(i);
    const file = await fileFor(root, i, label, `img-${i}.png`);
    if (!colour) {
      await sharp(px, { raw: { width: s, height: s, channels: 1 } }).png().toFile(file);
      continue;
    }
    // A random tint: one channel full, another at most 0.5, so every image is clearly coloured.
    const gains = [1, 0.2 + 0.3 * rand(), 0.2 + 0.8 * rand()];
    const order = [0, 1, 2].sort(() => rand() - 0.5);
    const rgb = Buffer.alloc(s * s * 3);
    for (let p = 0; p < s * s; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.round(px[p] * gains[order[c]]);
    await sharp(rgb, { raw: { width: s, height: s, channels: 3 } }).png().toFile(file);
  }
}

/** Every file of a task's outliers (or inliers), by path. */
function taskFiles(r: DiagnosisResult, task: DiagnosisTaskName, which: 'outliers' | 'inliers'): Map<string, DiagnosedFile> {
  const t = r.tasks.find((x) => x.name === task)!;
  const out = new Map<string, DiagnosedFile>();
  for (const files of Object.values(t.datasets[which].class_files)) for (const f of Object.values(files)) out.set(f.path, f);
  return out;
}

/** One seed-000 dataset of every node's folder: the pooled view. */
async function pooledDataset(root: string): Promise<Dataset> {
  const builds = await Promise.all(NODES.map((n) => datasetFromFolder(path.join(root, n))));
  const classes = [...new Set(builds.flatMap((b) => b.dataset.classes))].sort();
  const class_files = Object.fromEntries(classes.map((c) => [c, Object.assign({}, ...builds.map((b) => b.dataset.class_files[c] ?? {}))]));
  const { mean, std_dev } = meanStd(mergeSums(builds.map((b) => b.sums)));
  return { classes, mean, std_dev, class_files };
}

/** Precision and recall of a task's flags against the planted paths, printed. */
function score(r: DiagnosisResult, task: DiagnosisTaskName, planted: ReadonlySet<string>): { precision: number; recall: number; flagged: number } {
  const flagged = [...taskFiles(r, task, 'outliers').keys()];
  const hits = flagged.filter((p) => planted.has(p)).length;
  const precision = flagged.length === 0 ? 1 : hits / flagged.length;
  const recall = hits / planted.size;
  const missed = [...planted].filter((p) => !flagged.includes(p)).map((p) => path.basename(p));
  console.log(`${task}: ${flagged.length} flagged, ${hits} of ${planted.size} plants; precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)}${missed.length ? `; missed ${missed.join(', ')}` : ''}`);
  return { precision, recall, flagged: flagged.length };
}

/** Runs `tasks` federated (3 nodes) and pooled (1 node), both at minimum count 1. */
async function federatedAndPooled(root: string, tasks: DiagnosisTaskName[], projections = false): Promise<{ fed: DiagnosisResult; pooled: DiagnosisResult }> {
  const request = { dataset_uuid: path.basename(root), tasks: tasks.map((name) => ({ name })) };
  const nodes = NODES.map((id) => ({ id, data: { folder: path.join(root, id) } }));
  const fed = await diagnose(request, { nodes, projections, disclosure: { minCount: 1 } });
  const pooled = await diagnose({ ...request, auto: false, dataset: await pooledDataset(root) }, { projections, disclosure: { minCount: 1 } });
  return { fed, pooled };
}

/** The federated run flags the same files with the same scores as the pooled one. */
function expectSameVerdicts(fed: DiagnosisResult, pooled: DiagnosisResult, tasks: DiagnosisTaskName[]): void {
  for (const task of tasks) {
    for (const which of ['outliers', 'inliers'] as const) {
      const a = taskFiles(fed, task, which);
      const b = taskFiles(pooled, task, which);
      expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
      for (const [p, f] of a) {
        expect(f.issue).toBe(b.get(p)!.issue);
        if (f.score !== undefined) expect(f.score).toBeCloseTo(b.get(p)!.score!, 4);
      }
    }
  }
}

describe('opt-in tasks', () => {
  test('auto runs the default tasks only; a request may list the new ones', () => {
    expect(parseDiagnosisRequest({ auto: true, dataset_uuid: 'd' }).tasks.map((t) => t.name)).toEqual([...DIAGNOSIS_TASKS]);
    for (const name of ['grayscale', 'low_information', 'odd_aspect_ratio', 'outliers']) expect(DIAGNOSIS_TASKS as readonly string[]).not.toContain(name);
    const listed = parseDiagnosisRequest({ auto: false, dataset_uuid: 'd', tasks: [{ name: 'grayscale' }, { name: 'outliers' }] });
    expect(listed.tasks).toEqual([{ name: 'grayscale' }, { name: 'outliers' }]);
    expect(() => parseDiagnosisRequest({ auto: false, dataset_uuid: 'd', tasks: [{ name: 'greyscale' }] })).toThrow(/unknown task "greyscale".*odd_aspect_ratio/);
  });
});

describe('what the aggregator takes from peers', () => {
  test('check histograms: the grey share decides whether grey images are flagged; malformed ones are refused', () => {
    const mostlyGrey = emptyCheckHistograms();
    mostlyGrey.chroma[0] = 6;
    mostlyGrey.chroma[40] = 4;
    mostlyGrey.entropy[128] = 10;
    const c = checkCutoffsFrom(mergeCheckHistograms([{ node: 'a', histograms: mostlyGrey }]));
    expect(c.grayShare).toBeCloseTo(0.6, 10);
    expect(c.flagGray).toBe(false);
    const colour = emptyCheckHistograms();
    colour.chroma[40] = 7;
    colour.entropy[128] = 7;
    const both = checkCutoffsFrom(mergeCheckHistograms([{ node: 'a', histograms: mostlyGrey }, { node: 'b', histograms: colour }]));
    expect(both.grayShare).toBeCloseTo(6 / 17, 10);
    expect(both.flagGray).toBe(true);
    expect(both.lowInfoBelow).toBeCloseTo(0.3 * (4 + 4 / CHECK_BINS.entropy.bins), 10);
    const short = { ...emptyCheckHistograms(), entropy: [1, 2] };
    expect(() => mergeCheckHistograms([{ node: 'evil', histograms: short }])).toThrow(/node "evil" sent no valid entropy histogram/);
    expect(() => mergeCheckHistograms([{ node: 'evil', histograms: { ...colour, chroma: colour.chroma.map(() => -1) } }])).toThrow(/chroma/);
    expect(() => outlierCutoffFrom([{ node: 'evil', value: { scoreHistogram: [Number.NaN] } }])).toThrow(/node "evil" sent no valid score histogram/);
  });

  test('outlier model: pooled class means and within-class variance; inconsistent sums are refused', () => {
    // Two classes, two features, rows (class 0) [0,0] [2,2], (class 1) [10,10] [12,14], over two nodes.
    // Pixel blocks: class 0 rows all 0.1 and all 0.3, class 1 rows all 0.5 and all 0.7 (within-class variance 0.02 everywhere).
    const pixels = (cls: number, lo: number, hi: number): { pixelSum: Tensor; pixelSumSquares: Tensor } => {
      const sum = new Float64Array(2 * PIXELS);
      const sq = new Float64Array(2 * PIXELS);
      sum.fill(lo + hi, cls * PIXELS, (cls + 1) * PIXELS);
      sq.fill(lo * lo + hi * hi, cls * PIXELS, (cls + 1) * PIXELS);
      return { pixelSum: new Tensor('float64', [2 * PIXELS], sum), pixelSumSquares: new Tensor('float64', [2 * PIXELS], sq) };
    };
    const part = (counts: number[], sum: number[], sumSquares: number[], px = pixels(0, 0, 0)) => ({
      classSums: { counts, sum: new Tensor('float64', [4], Float64Array.from(sum)), sumSquares: new Tensor('float64', [4], Float64Array.from(sumSquares)), ...px },
    });
    const a = part([2, 0], [2, 2, 0, 0], [4, 4, 0, 0], pixels(0, 0.1, 0.3));
    const b = part([0, 2], [0, 0, 22, 24], [0, 0, 244, 296], pixels(1, 0.5, 0.7));
    const model = outlierModelFrom([{ node: 'a', value: a }, { node: 'b', value: b }], 2);
    expect(Array.from(model.means.data as Float64Array)).toEqual([1, 1, 11, 12]);
    // Within-class sums of squares: feature 0: 2 + 2 = 4, feature 1: 2 + 8 = 10; over 4 − 2 degrees of freedom.
    expect(Array.from(model.invVar.data as Float64Array)).toEqual([1 / 2, 1 / 5]);
    const pixelMeans = model.pixels!.means.data as Float64Array;
    expect(pixelMeans[0]).toBeCloseTo(0.2, 12);
    expect(pixelMeans[PIXELS]).toBeCloseTo(0.6, 12);
    for (const v of model.pixels!.invVar.data as Float64Array) expect(v).toBeCloseTo(1 / 0.02, 8);
    // The features alone (a model without its pixel block).
    const featuresOnly = outlierScores(Float32Array.from([1, 1, 11, 12 + Math.sqrt(5) * Math.sqrt(2)]), 2, { ...model, pixels: undefined });
    expect(featuresOnly[0]).toBe(0);
    expect(featuresOnly[1]).toBeCloseTo(1, 5);
    // Both blocks weigh half: row 0 at class 0's features with pixels 2 standard deviations² (mean square) off, row 1 at class 1 exactly.
    const rows = new Float32Array(2 * PIXELS);
    rows.fill(0.2 + Math.sqrt(2 * 0.02), 0, PIXELS);
    rows.fill(0.6, PIXELS);
    const both = outlierScores(Float32Array.from([1, 1, 11, 12]), 2, model, rows);
    expect(both[0]).toBeCloseTo(1, 5);
    expect(both[1]).toBeCloseTo(0, 3);
    expect(() => outlierScores(Float32Array.from([1, 1]), 2, model)).toThrow(/no 256 pixels per row/);
    const noPixels = { classSums: { ...a.classSums, pixelSum: new Tensor('float64', [3], new Float64Array(3)) } };
    expect(() => outlierModelFrom([{ node: 'a', value: a }, { node: 'evil', value: noPixels }], 2)).toThrow(/node "evil" sent pixel sums that are not 2 × 256/);
    expect(() => outlierModelFrom([{ node: 'a', value: a }, { node: 'evil', value: part([1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]) }], 2)).toThrow(/node "evil" sent no class counts for 2 classes/);
    const wide = { classSums: { ...a.classSums, counts: [1, 1], sum: new Tensor('float64', [6], new Float64Array(6)), sumSquares: new Tensor('float64', [6], new Float64Array(6)) } };
    expect(() => outlierModelFrom([{ node: 'a', value: a }, { node: 'evil', value: wide }], 2)).toThrow(/class sums of 3 features, others sent 2/);
  });
});

describe('checks on Fashion-MNIST with planted faults, federated over 3 nodes', () => {
  test('low_information and odd_aspect_ratio find their plants; grayscale flags nothing in an all-grey dataset', async () => {
    const root = path.join(tmp, 'grey');
    const rand = seeded(11);
    await writeClean(root, false, rand);
    const s = fashion.side;
    const lowInfo = new Set<string>();
    const aspect = new Set<string>();
    for (let k = 0; k < PLANTS; k++) {
      const { px, label } = fashionImage(CLEAN + k);
      // Low information: half near-constant (two adjacent grey levels at random), half the silhouette in 2 levels.
      const flat = Buffer.alloc(s * s);
      const level = 40 + Math.floor(rand() * 160);
      for (let p = 0; p < s * s; p++) flat[p] = k % 2 === 0 ? level + (rand() < 0.5 ? 1 : 0) : px[p] > 60 ? 200 : 20;
      const lf = await fileFor(root, k, label, `lowinfo-${k}.png`);
      await sharp(flat, { raw: { width: s, height: s, channels: 1 } }).png().toFile(lf);
      lowInfo.add(lf);
      // Odd aspect ratio: another image stretched to 3:1 or 1:3 (ratio 1/3 < CleanVision's 0.5).
      const b = fashionImage(CLEAN + PLANTS + k);
      const af = await fileFor(root, k + 1, b.label, `aspect-${k}.png`);
      const [w, h] = k % 2 === 0 ? [s * 3, s] : [s, s * 3];
      await sharp(b.px, { raw: { width: s, height: s, channels: 1 } }).resize(w, h, { fit: 'fill' }).png().toFile(af);
      aspect.add(af);
    }
    const tasks: DiagnosisTaskName[] = ['grayscale', 'low_information', 'odd_aspect_ratio'];
    const { fed, pooled } = await federatedAndPooled(root, tasks);
    expect(fed.tasks.map((t) => t.name)).toEqual(tasks);
    expect(taskFiles(fed, 'grayscale', 'outliers').size).toBe(0);
    expect(taskFiles(fed, 'grayscale', 'inliers').size).toBe(CLEAN + 2 * PLANTS);
    const li = score(fed, 'low_information', lowInfo);
    expect(li.precision).toBeGreaterThanOrEqual(0.9);
    expect(li.recall).toBeGreaterThanOrEqual(0.9);
    const ar = score(fed, 'odd_aspect_ratio', aspect);
    expect(ar.precision).toBeGreaterThanOrEqual(0.9);
    expect(ar.recall).toBeGreaterThanOrEqual(0.9);
    for (const f of taskFiles(fed, 'odd_aspect_ratio', 'outliers').values()) expect(f.score).toBeCloseTo(1 / 3, 6);
    expectSameVerdicts(fed, pooled, tasks);
  }, 60_000);

  test('grayscale finds grey images (PNG and re-encoded JPEG) in a colour dataset', async () => {
    const root = path.join(tmp, 'colour');
    const rand = seeded(12);
    await writeClean(root, true, rand);
    const s = fashion.side;
    const grey = new Set<string>();
    for (let k = 0; k < PLANTS; k++) {
      const { px, label } = fashionImage(CLEAN + k);
      // Stored as RGB with equal channels; JPEG's rounding keeps them nearly equal.
      const rgb = Buffer.alloc(s * s * 3);
      for (let p = 0; p < s * s; p++) rgb.fill(px[p], p * 3, p * 3 + 3);
      const img = sharp(rgb, { raw: { width: s, height: s, channels: 3 } });
      const f = await fileFor(root, k, label, k % 2 === 0 ? `grey-${k}.png` : `grey-${k}.jpg`);
      await (k % 2 === 0 ? img.png() : img.jpeg({ quality: 90 })).toFile(f);
      grey.add(f);
    }
    const tasks: DiagnosisTaskName[] = ['grayscale'];
    const { fed, pooled } = await federatedAndPooled(root, tasks);
    const g = score(fed, 'grayscale', grey);
    expect(g.precision).toBeGreaterThanOrEqual(0.9);
    expect(g.recall).toBeGreaterThanOrEqual(0.9);
    expectSameVerdicts(fed, pooled, tasks);
  }, 60_000);

  test('outliers finds images of other kinds: noise, patterns, a gradient, text, an inverted garment', async () => {
    const root = path.join(tmp, 'ood');
    const rand = seeded(13);
    await writeClean(root, false, rand);
    const s = fashion.side;
    const planted = new Set<string>();
    const kinds = ['uniform', 'gaussian', 'checker', 'gradient', 'inverted', 'text'] as const;
    for (let k = 0; k < PLANTS; k++) {
      const kind = kinds[k % kinds.length];
      let px = Buffer.alloc(s * s);
      if (kind === 'text') {
        // A word in black on white, rendered by sharp (librsvg, DejaVu Sans).
        const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${s}" height="${s}"><rect width="100%" height="100%" fill="white"/><text x="2" y="${14 + k}" font-family="DejaVu Sans" font-size="${8 + k % 4}" fill="black">${k < 6 ? 'FLAME' : 'scan 7'}</text></svg>`;
        px = await sharp(Buffer.from(svg)).greyscale().raw().toBuffer();
      } else if (kind === 'inverted') {
        const src = fashionImage(CLEAN + 2 * PLANTS + k).px;
        for (let p = 0; p < s * s; p++) px[p] = 255 - src[p];
      } else {
        const cell = 2 + Math.floor(rand() * 4);
        const angle = rand() * 2 * Math.PI;
        for (let y = 0; y < s; y++) {
          for (let x = 0; x < s; x++) {
            const v =
              kind === 'uniform' ? rand() * 256
              : kind === 'gaussian' ? 128 + 50 * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
              : kind === 'checker' ? ((Math.floor(x / cell) + Math.floor(y / cell)) % 2) * 255
              : 128 + 127 * (((x - s / 2) * Math.cos(angle) + (y - s / 2) * Math.sin(angle)) / (s / 2));
            px[y * s + x] = Math.max(0, Math.min(255, Math.round(v)));
          }
        }
      }
      const f = await fileFor(root, k, CLASSES[k % CLASSES.length], `ood-${kind}-${k}.png`);
      await sharp(px, { raw: { width: s, height: s, channels: 1 } }).png().toFile(f);
      planted.add(f);
    }
    const tasks: DiagnosisTaskName[] = ['outliers'];
    const { fed, pooled } = await federatedAndPooled(root, tasks);
    const o = score(fed, 'outliers', planted);
    for (const f of taskFiles(fed, 'outliers', 'outliers').values()) expect(f.issue).toBe('out_of_distribution');
    // Measured: 10 of 12 plants, nothing else; one Gaussian noise and one gradient sit just under the
    // final fence (Q3 + 2 IQR; Q3 + 1.5 finds all 12 here but flags 0.5 % of clean images on 10,000
    // held-out ones). The features alone found none of the noise or gradients, nor the inverted
    // garments (analyses/image-diagnosis/EXPERIMENTS.md, "Outliers").
    expect(o.precision).toBeGreaterThanOrEqual(0.95);
    expect(o.recall).toBeGreaterThanOrEqual(0.8);
    const found = [...taskFiles(fed, 'outliers', 'outliers').keys()].map((p) => path.basename(p).split('-')[1]);
    for (const kind of ['uniform', 'checker', 'inverted', 'text']) expect(found.filter((k) => k === kind)).toHaveLength(2);
    expectSameVerdicts(fed, pooled, tasks);
  }, 60_000);
});
