/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * The diagnosis under the nodes' disclosure policy: the shipped sample run as `npm start` runs it with
 * the minimum count off (1) and at its default (3) — what was suppressed is reported in the result and
 * the HTML report, and the detection figures are printed side by side — a node too small to share
 * refuses, and Laplace noise asked for by one node lands on the pooled statistics only.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkResult } from '../../src/evaluation/check.js';
import { parseReference } from '../../src/evaluation/reference.js';
import { renderDiagnosisReport } from '../../src/report/index.js';
import { simulate } from '../../src/star/simulator.js';
import { createDiagnosis, diagnose, diagnosisRounds, type DiagnosisOptions, type DiagnosisResult } from '../../analyses/image-diagnosis/index.js';

const SAMPLE = path.resolve('data/sample');
const NODES = ['node-a', 'node-b', 'node-c'];

/** The nodes of `flame demo` (npm start): each hospital reads its class-folder tree through the data API. */
const demoNodes = () => NODES.map((id) => ({ id, dataSources: [{ id: 'images', type: 'folder' as const, path: path.join(SAMPLE, id) }], data: { source: 'images' } }));

test('the sample as npm start runs it: suppression is reported in result and report, and detection changes only a little', async () => {
  const truth = parseReference(JSON.parse(await readFile(path.join(SAMPLE, 'truth.json'), 'utf8')), 'truth.json');
  const run = (minCount: number) => diagnose({ auto: true, dataset_uuid: 'fashion-mnist-sample' }, { nodes: demoNodes(), disclosure: { minCount } });
  const off = await run(1);
  const on = await run(3);
  const scores = (r: DiagnosisResult) => new Map(checkResult(r, truth).rows.map((row) => [row.task, row]));
  const [s1, s3] = [scores(off), scores(on)];
  const lines = ['task                 F1 (min 1)  F1 (min 3)  P/R (min 1)  P/R (min 3)'];
  for (const t of ['mislabeled_images', 'lighting_conditions']) {
    const [a, b] = [s1.get(t)!, s3.get(t)!];
    lines.push(`${t.padEnd(20)} ${a.f1!.toFixed(3).padStart(10)}  ${b.f1!.toFixed(3).padStart(10)}  ${a.precision!.toFixed(2)}/${a.recall!.toFixed(2)}    ${b.precision!.toFixed(2)}/${b.recall!.toFixed(2)}`);
  }
  const d = on.disclosure as { min_count: Record<string, number>; suppressed: Record<string, Record<string, number>>; suppressed_total: number; noise: unknown };
  lines.push(`suppressed at minimum 3: ${d.suppressed_total} values: ${JSON.stringify(d.suppressed)}`);
  process.stdout.write(`${lines.join('\n')}\n`);

  // Off: the result carries no disclosure field (it is what it was before the policy existed).
  expect(off.disclosure).toBeUndefined();
  expect(d.min_count).toEqual({ 'node-a': 3, 'node-b': 3, 'node-c': 3 });
  expect(d.noise).toBeNull();
  expect(d.suppressed_total).toBeGreaterThan(0);
  for (const node of NODES) {
    expect(Object.keys(d.suppressed[node]).sort()).toEqual(['class_counts', 'colour_images', 'confident_joint', 'fold_sums', 'histogram_bins', 'prune_candidates', 'shape_counts']);
    expect(d.suppressed[node].histogram_bins).toBeGreaterThan(0);
  }
  // Measured: lighting F1 1.000 both; mislabeled F1 0.481 at minimum 1, 0.488 at minimum 3 (small
  // confident-joint cells unattributed and spread by the summed probabilities; 0.409 when merged into
  // the row's largest cell).
  expect(s3.get('lighting_conditions')!.f1).toBe(s1.get('lighting_conditions')!.f1);
  expect(Math.abs(s3.get('mislabeled_images')!.f1! - s1.get('mislabeled_images')!.f1!)).toBeLessThan(0.05);

  const report = await renderDiagnosisReport(on, { title: 'sample' });
  expect(report.html).toContain(`id="disclosure">Disclosure control: minimum count 3 per node; ${d.suppressed_total} shared values were suppressed or merged into a neighbour`);
  expect(report.html).toContain('No noise was added.');
  expect((await renderDiagnosisReport(off, { title: 'sample' })).html).not.toContain('id="disclosure"');
}, 240_000);

test('a hospital with 2 images refuses to share anything, naming the policy; with the policy off it takes part', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'diag-small-'));
  await mkdir(path.join(dir, 'Bag'));
  for (const f of ['12393.png', '17333.png']) await copyFile(path.join(SAMPLE, 'node-a', 'Bag', f), path.join(dir, 'Bag', f));
  const nodes = [
    { id: 'node-a', data: { folder: path.join(SAMPLE, 'node-b') } },
    { id: 'small', data: { folder: dir } },
  ];
  const request = { dataset_uuid: 'small', tasks: [{ name: 'lighting_conditions' }] };
  await expect(diagnose(request, { nodes, projections: false })).rejects.toThrow(
    'diagnosis on node "small" (images): 2 records, fewer than this node\'s minimum count 3 (disclosure policy: config.disclosure.minCount / FLAME_MIN_COUNT): the node shares nothing',
  );
  const r = await diagnose(request, { nodes, projections: false, disclosure: { minCount: 1 } });
  expect(r.tasks[0].datasets.inliers.class_files.Bag).toBeDefined();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

test('one hospital asks for Laplace noise: the pooled mean/std get it, per-image records and counts stay exact, and it is recorded', async () => {
  const options: DiagnosisOptions = { tasks: ['lighting_conditions', 'blurry', 'odd_size', 'duplicates'], projections: false, datasetUuid: 'noise' };
  const scale = 0.01;
  const run = async (noisy: boolean) => {
    const { outcome } = await simulate(createDiagnosis(options), {
      nodes: NODES.map((id) => ({
        id,
        dataSources: [{ id: 'images', type: 'folder' as const, path: path.join(SAMPLE, id) }],
        disclosure: noisy && id === 'node-b' ? { minCount: 3, noiseScale: scale } : { minCount: 3 },
      })),
      maxRounds: diagnosisRounds(options),
      logLevel: 'error',
    });
    return outcome;
  };
  const [exact, noised] = [await run(false), await run(true)];
  const [e, n] = [exact.result, noised.result];
  expect(n.result!.disclosure).toMatchObject({ noise: { mechanism: 'laplace', scale, requested_by: ['node-b'] } });
  expect(noised.noise).toEqual((n.result!.disclosure as { noise: unknown }).noise);
  expect((e.result!.disclosure as { noise: unknown }).noise).toBeNull();
  const deviations: number[] = [];
  const diff = (a: number[], b: number[]) => a.forEach((v, i) => deviations.push(b[i] - v));
  diff(e.setup.mean, n.setup.mean);
  diff(e.setup.std_dev, n.setup.std_dev);
  e.result!.tasks.forEach((t, k) => {
    for (const kind of ['outliers', 'inliers'] as const) {
      const [de, dn] = [t.datasets[kind], n.result!.tasks[k].datasets[kind]];
      diff(de.mean, dn.mean);
      diff(de.std_dev, dn.std_dev);
      // Every per-image record is exactly as without noise.
      expect(dn.class_files).toEqual(de.class_files);
    }
  });
  expect({ ...n.setup, mean: 0, std_dev: 0 }).toEqual({ ...e.setup, mean: 0, std_dev: 0 });
  // Grey images: one mean and std for the setup and per dataset; blurry, odd_size and duplicates
  // flag nothing on the sample (its 300 images are distinct), so their (empty) outlier datasets have none.
  expect(deviations).toHaveLength(12);
  expect((n.result!.disclosure as { noise: { values: number } }).noise.values).toBe(12);
  const meanAbs = deviations.reduce((a, x) => a + Math.abs(x), 0) / deviations.length;
  process.stdout.write(`diagnosis noise scale ${scale}: mean |noise| ${meanAbs.toExponential(3)} over ${deviations.length} statistics\n`);
  expect(deviations.every((x) => x !== 0)).toBe(true);
  // Mean |x| of Laplace(0, b) is b; its sd over 14 draws is b/3.7: generous bounds.
  expect(meanAbs).toBeGreaterThan(0.25 * scale);
  expect(meanAbs).toBeLessThan(2.5 * scale);
}, 60_000);
