/** `flame check` end to end: tables, JSON, warnings and exit codes. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './run-cli.js';

let tmp: string;
const files = (cls: string, keys: string[]) => Object.fromEntries(keys.map((k) => [k, { uuid: k, current_class: cls }]));
const ds = (byClass: Record<string, string[]>) => ({
  classes: Object.keys(byClass),
  mean: [0.5],
  std_dev: [0.1],
  class_files: Object.fromEntries(Object.entries(byClass).map(([c, keys]) => [c, files(c, keys)])),
});

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-cli-check-'));
  await fs.writeFile(
    path.join(tmp, 'truth.json'),
    JSON.stringify({ flipped: [{ path: 'node-a/cat/1.png', true_class: 'dog', labelled_class: 'cat' }], darkened: ['node-a/dog/2.png'], brightened: [], files: 4 }),
  );
  await fs.writeFile(
    path.join(tmp, 'diagnosis.json'),
    JSON.stringify({
      dataset_uuid: 'x',
      tasks: [
        { name: 'mislabeled_images', datasets: { outliers: ds({ cat: ['cat/1.png', 'cat/3.png'] }), inliers: ds({ dog: ['dog/2.png', 'dog/4.png'] }) } },
        { name: 'lighting_conditions', datasets: { outliers: ds({ dog: ['dog/2.png'] }), inliers: ds({ cat: ['cat/1.png', 'cat/3.png'], dog: ['dog/4.png'] }) } },
      ],
    }),
  );
  await fs.writeFile(path.join(tmp, 'broken.json'), '{"tasks": [');
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

test('a table per task, and the same numbers as JSON', async () => {
  const run = await runCli(['check', '--reference', path.join(tmp, 'truth.json'), path.join(tmp, 'diagnosis.json')]);
  expect(run.code).toBe(0);
  const lines = run.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^task\s+files\s+flagged\s+faults\s+tp\s+fp\s+fn\s+tn\s+precision\s+recall\s+f1\s+accuracy\s+relabel$/);
  expect(lines[2]).toMatch(/^mislabeled_images\s+4\s+2\s+1\s+1\s+1\s+0\s+2\s+0\.500\s+1\.000\s+0\.667\s+0\.750\s+-$/);
  expect(lines[3]).toMatch(/^lighting_conditions\s+4\s+1\s+1\s+1\s+0\s+0\s+3\s+1\.000\s+1\.000\s+1\.000\s+1\.000\s+-$/);

  const json = await runCli(['--json', 'check', '-r', path.join(tmp, 'truth.json'), path.join(tmp, 'diagnosis.json')]);
  const report = JSON.parse(json.stdout) as { kind: string; rows: { task: string; f1: number }[] };
  expect(report.kind).toBe('diagnosis');
  expect(report.rows.map((r) => r.task)).toEqual(['mislabeled_images', 'lighting_conditions']);
  expect(report.rows[0].f1).toBeCloseTo(2 / 3);
}, 30000);

test('errors: a missing file is not found, broken JSON a bad request, a missing --reference a usage error', async () => {
  const missing = await runCli(['check', '-r', path.join(tmp, 'nope.json'), path.join(tmp, 'diagnosis.json')]);
  expect(missing.code).toBe(3);
  expect(missing.stderr).toMatch(/reference .*nope\.json does not exist/);
  const broken = await runCli(['check', '-r', path.join(tmp, 'truth.json'), path.join(tmp, 'broken.json')]);
  expect(broken.code).toBe(2);
  expect(broken.stderr).toMatch(/broken\.json is not valid JSON/);
  const usage = await runCli(['check', path.join(tmp, 'diagnosis.json')]);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toMatch(/--reference/);
}, 30000);
