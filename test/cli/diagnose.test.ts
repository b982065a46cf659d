/** `flame diagnose` and `flame simulate diagnose` end to end, in a child process as a user runs them. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { datasetFromFolder } from '../../src/images/index.js';
import { runCli, REPO_ROOT } from './run-cli.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-cli-diagnose-'));
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

const sample = (node: string): string => path.join(REPO_ROOT, 'data', 'sample', node);

test('simulate diagnose: plain progress lines, a summary table, a response that flame check scores', async () => {
  const out = path.join(tmp, 'sim.json');
  const report = path.join(tmp, 'sim.html');
  const run = await runCli(['simulate', 'diagnose', '--node', `node-a=${sample('node-a')}`, '--node', `node-b=${sample('node-b')}`, '--node', `node-c=${sample('node-c')}`, '--tasks', 'lighting_conditions', '--out', out, '--report', report]);
  expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
  expect(run.stderr).toMatch(/^done 100%$/m); // not a TTY: plain lines
  expect(run.stdout).toMatch(/^task\s+node\s+class\s+outliers\s+files$/m);
  expect(run.stdout).toMatch(/^lighting_conditions\s+node-a\s+Ankle-boot\s+2\s+9$/m);
  const response = JSON.parse(await fs.readFile(out, 'utf8'));
  expect(response.tasks.map((t: { name: string }) => t.name)).toEqual(['lighting_conditions']);
  const check = await runCli(['--json', 'check', '--reference', path.join(REPO_ROOT, 'data', 'sample', 'truth.json'), out]);
  expect(check.code).toBe(0);
  const [row] = JSON.parse(check.stdout).rows;
  expect(row).toMatchObject({ task: 'lighting_conditions', tp: 15, fp: 0, fn: 0 });
  // --report: the HTML report with a thumbnail of each of the 15 flagged images, read from its node's folder
  expect(run.stderr).toMatch(/report written to .*sim\.html \(300 images, 15 flagged\)/);
  const html = await fs.readFile(report, 'utf8');
  expect((html.match(/src="data:image\/png;base64,/g) ?? []).length).toBe(15);
}, 60_000);

test('diagnose --request: the seed-000 response; a bad request exits with the field named', async () => {
  const { dataset } = await datasetFromFolder(sample('node-b'));
  const req = path.join(tmp, 'req.json');
  await fs.writeFile(req, JSON.stringify({ auto: false, dataset_uuid: 'ds-b', dataset, tasks: [{ name: 'lighting_conditions' }, { name: 'odd_size' }] }));
  const run = await runCli(['--json', 'diagnose', '--request', req]);
  expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
  const response = JSON.parse(run.stdout);
  expect(response.dataset_uuid).toBe('ds-b');
  expect(response.tasks.map((t: { name: string }) => t.name)).toEqual(['lighting_conditions', 'odd_size']);
  expect(Object.keys(response.tasks[1].datasets.inliers.class_files)).toEqual(dataset.classes);
  await fs.writeFile(req, JSON.stringify({ auto: false, dataset_uuid: 'ds-b', dataset, tasks: [{ name: 'denoise' }] }));
  const bad = await runCli(['diagnose', '--request', req]);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/request\.tasks\[0\]\.name: unknown task "denoise"/);
}, 60_000);

test('--export-model: simulate diagnose and diagnose write the trained classifier and its labels file', async () => {
  const model = path.join(tmp, 'models', 'sim.onnx');
  const sim = await runCli(['simulate', 'diagnose', '--node', `node-a=${sample('node-a')}`, '--node', `node-c=${sample('node-c')}`, '--tasks', 'mislabeled_images', '--folds', '2', '--export-model', model]);
  expect({ code: sim.code, stderr: sim.code === 0 ? '' : sim.stderr }).toEqual({ code: 0, stderr: '' });
  expect(sim.stderr).toContain(`model written to ${model} (labels: ${path.join(tmp, 'models', 'sim.labels.txt')})`);
  // Without a TTY, progress is a few plain lines: one per phase start and per further 10 points.
  const progressLines = sim.stderr.split('\n').filter((l) => /^[a-z-]+ \d+%$/.test(l));
  expect(progressLines.filter((l) => l.startsWith('train ')).length).toBeLessThanOrEqual(11);
  expect(new Set(progressLines).size).toBe(progressLines.length);
  expect(sim.stderr).toMatch(/^Simulating 2 nodes \+ aggregator/m);
  const labels = (await fs.readFile(path.join(tmp, 'models', 'sim.labels.txt'), 'utf8')).trim().split('\n');
  expect(labels).toEqual((await fs.readdir(sample('node-a'))).sort());
  // An ONNX model (protobuf) carrying the exporter's doc string.
  expect((await fs.readFile(model)).includes('flame-sdk classifier')).toBe(true);

  const { dataset } = await datasetFromFolder(sample('node-b'));
  const req = path.join(tmp, 'req-model.json');
  await fs.writeFile(req, JSON.stringify({ auto: false, dataset_uuid: 'ds-b', dataset, tasks: [{ name: 'mislabeled_images' }] }));
  const one = await runCli(['--json', 'diagnose', '--request', req, '--folds', '2', '--export-model', path.join(tmp, 'one.onnx')]);
  expect({ code: one.code, stderr: one.code === 0 ? '' : one.stderr }).toEqual({ code: 0, stderr: '' });
  const response = JSON.parse(one.stdout);
  expect(typeof response.model_result_id).toBe('string');
  expect(response.model_labels).toEqual(dataset.classes);
  expect((await fs.readFile(path.join(tmp, 'one.labels.txt'), 'utf8')).trim().split('\n')).toEqual(dataset.classes);
  expect((await fs.stat(path.join(tmp, 'one.onnx'))).size).toBeGreaterThan(10_000);
  // Without the task that trains a model there is nothing to export: the run is refused, the option named.
  const none = await runCli(['simulate', 'diagnose', '--node', `node-a=${sample('node-a')}`, '--tasks', 'blurry', '--export-model', path.join(tmp, 'none.onnx')]);
  expect(none.code).not.toBe(0);
  expect(none.stderr).toMatch(/model export \(modelResult, --export-model\): a classifier is only trained for the mislabeled_images task/);
}, 90_000);

test('diagnose --folder makes the seed-000 request from a folder (and --write-request keeps it)', async () => {
  const req = path.join(tmp, 'made-request.json');
  const run = await runCli(['--json', 'diagnose', '--folder', sample('node-b'), '--write-request', req, '--folds', '2']);
  expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
  const made = JSON.parse(await fs.readFile(req, 'utf8')) as { auto: boolean; dataset_uuid: string; dataset: { classes: string[] }; tasks: Array<{ name: string }> };
  const { dataset } = await datasetFromFolder(sample('node-b'));
  expect(made).toMatchObject({ auto: true, dataset_uuid: 'node-b' });
  expect(made.dataset).toEqual(dataset);
  expect(made.tasks.map((t) => t.name)).toEqual(['mislabeled_images', 'lighting_conditions', 'blurry', 'odd_size', 'duplicates']);
  const response = JSON.parse(run.stdout) as { tasks: Array<{ name: string }> };
  expect(response.tasks.map((t) => t.name)).toEqual(made.tasks.map((t) => t.name));
  // the written request is a valid --request
  const again = await runCli(['--json', 'diagnose', '--request', req, '--folds', '2']);
  expect(again.code).toBe(0);
  const neither = await runCli(['diagnose']);
  expect([neither.code, neither.stderr]).toEqual([2, 'flame: bad request: flame diagnose: give --request FILE or --folder DIR (one of them)\n']);
}, 120_000);
