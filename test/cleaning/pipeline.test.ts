/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * The real chain on data/sample: the federated diagnosis (three simulated nodes) → clean (auto) →
 * cleaned copy → report. Guards the contract between analyses/image-diagnosis's output and what
 * cleaning and the report read.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { applyCleaning, clean, planCleaning, requestSource, responseOf } from '../../analyses/image-cleaning/index.js';
import { diagnose, type DiagnosisResult } from '../../analyses/image-diagnosis/index.js';
import { checkResult } from '../../src/evaluation/check.js';
import { parseReference } from '../../src/evaluation/reference.js';
import { datasetFromFolder } from '../../src/images/index.js';
import type { CleaningRequest } from '../../src/images/types.js';
import { renderDiagnosisReport } from '../../src/report/index.js';
import { tempDir } from '../images/helpers.js';
import { SEED_RULES } from './fixture.js';

const SAMPLE = resolve('data/sample');
const NODES = ['node-a', 'node-b', 'node-c'];
const TASKS = ['mislabeled_images', 'lighting_conditions', 'blurry', 'odd_size', 'duplicates'];

let result: DiagnosisResult;
let request: CleaningRequest;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('flame-pipeline-'));
  result = await diagnose(
    { dataset_uuid: 'sample', tasks: TASKS.map((name) => ({ name })) },
    { nodes: NODES.map((id) => ({ id, data: { folder: join(SAMPLE, id) } })) },
  );
  request = { ...(result as unknown as CleaningRequest), auto: true };
}, 90000);
afterAll(() => cleanup());

async function sampleHashes(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const node of NODES) {
    const { dataset } = await datasetFromFolder(join(SAMPLE, node));
    for (const files of Object.values(dataset.class_files)) {
      for (const p of Object.keys(files)) out.set(p, createHash('sha256').update(await readFile(p)).digest('hex'));
    }
  }
  return out;
}

/** The cleaning rows of `flame check` for a cleaning of the sample (keys are uuids: matched by path). */
async function checkRows(cleaned: ReturnType<typeof clean>) {
  const truth = parseReference(JSON.parse(await readFile(join(SAMPLE, 'truth.json'), 'utf8')), 'truth.json');
  const byPath = (ds: typeof cleaned.corrected) => ({
    ...ds,
    class_files: Object.fromEntries(Object.entries(ds.class_files).map(([c, fs]) => [c, Object.fromEntries(Object.values(fs).map((f) => [(f as unknown as { path: string }).path, f]))])),
  });
  return checkResult({ corrected: byPath(cleaned.corrected), removed: byPath(cleaned.removed) }, truth).rows;
}

it('auto by default acts only on confident verdicts: at least 90 % of what it relabels or removes was faulty', async () => {
  const plan = planCleaning(request);
  const rows = await checkRows(responseOf(plan));
  const all = rows.find((r) => r.task === 'cleaning')!;
  process.stdout.write(`default auto on data/sample: acted on ${all.flagged}, precision ${all.precision!.toFixed(3)}, recall ${all.recall!.toFixed(3)}; left for review ${plan.deferred.length}\n`);
  expect(all.precision).toBeGreaterThanOrEqual(0.9); // 0.96 when written (24 of 25)
  // 0.62 when written with federated-averaging heads; 0.487 with the closed-form heads (19 of 39
  // faults; on three held-out samples they match the old heads: EXPERIMENTS.md, "Auto cleaning").
  expect(all.recall).toBeGreaterThanOrEqual(0.45);
  // what is left is mislabeled outliers only, never a lighting outlier or a duplicate
  for (const d of plan.deferred) expect(d.reasons.every((r) => r.startsWith('mislabeled_images: '))).toBe(true);
}, 30000);

it('cleans what the diagnosis flags, by seed 000\'s rules, and finds most planted faults', async () => {
  const plan = planCleaning(request, SEED_RULES);
  const flagged = new Set(result.tasks.flatMap((t) => Object.values(t.datasets.outliers.class_files).flatMap((fs) => Object.keys(fs))));
  expect(plan.decisions.map((d) => d.key).sort()).toEqual([...flagged].sort());
  for (const d of plan.decisions) {
    if (d.action === 'corrected') {
      expect(d.current_class).not.toBe(d.given_class);
      expect(d.confidence).toBeGreaterThanOrEqual(0.7);
    }
  }
  const lighting = result.tasks.find((t) => t.name === 'lighting_conditions')!;
  for (const files of Object.values(lighting.datasets.outliers.class_files)) {
    for (const f of Object.values(files)) expect(plan.decisions.find((d) => d.uuid === f.uuid)?.action).toBe('removed');
  }
  const rows = await checkRows(clean(request, SEED_RULES));
  const all = rows.find((r) => r.task === 'cleaning')!;
  expect(all.recall).toBeGreaterThanOrEqual(0.8); // 0.90 when written
  // the 0.7 bar keeps most relabels right: 12 of 19 were mislabeled, 11 of those moved to the true class
  const corrected = rows.find((r) => r.task === 'corrected')!;
  expect(corrected.precision).toBeGreaterThanOrEqual(0.4); // 0.63 when written, 0.444 with the closed-form heads
  expect(corrected.relabel_accuracy).toBeGreaterThanOrEqual(0.8); // 0.92 when written
}, 30000);

it('writes the cleaned copy from the request alone and leaves data/sample untouched', async () => {
  const before = await sampleHashes();
  const res = await applyCleaning(clean(request), requestSource(request), join(dir, 'cleaned'), { roots: NODES.map((id) => join(SAMPLE, id)) });
  const c = res.manifest.counts;
  expect(c.source).toBe(300);
  expect(c.kept + c.corrected + c.removed).toBe(300);
  expect(c.not_in_source).toBe(0);
  expect(res.manifest.files).toHaveLength(c.kept + c.corrected);
  expect(await sampleHashes()).toEqual(before);
}, 30000);

it('reports the run: every image plotted, the three nodes counted', async () => {
  const { html, model, thumbnails } = await renderDiagnosisReport(result, { title: 'sample', roots: NODES.map((id) => join(SAMPLE, id)) });
  expect(model.images).toHaveLength(300);
  expect(model.per_node.map((r) => [r.name, r.images])).toEqual(NODES.map((n) => [n, 100]));
  expect(html.match(/<circle /g)).toHaveLength(300);
  const flagged = model.images.filter((i) => i.flagged_by.length > 0).length;
  expect([...thumbnails!.values()].filter((t) => 'src' in t)).toHaveLength(flagged);
}, 30000);
