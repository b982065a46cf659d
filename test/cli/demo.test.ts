/** `flame demo` (what `npm start` runs) as a child process: the sample diagnosis and the mean example. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './run-cli.js';

/** `flame ...args` in `cwd`; rejects (like execFile) when it exits non-zero. */
async function flame(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  const r = await runCli(args, {}, cwd);
  if (r.code !== 0) throw Object.assign(new Error(`flame ${args.join(' ')} exited ${r.code}`), r);
  return r;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flame-demo-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

test('the diagnosis demo finds the planted faults and writes the result and report', async () => {
  const { stdout } = await flame(['--json', 'demo', '--out', path.join(dir, 'out')], dir);
  const out = JSON.parse(stdout) as { rows: Record<string, number | string>[]; result: string; report: string };
  const row = (task: string) => out.rows.find((r) => r.task === task)!;
  expect(out.rows.map((r) => r.task)).toEqual(['mislabeled_images', 'lighting_conditions', 'blurry', 'odd_size', 'duplicates']);
  // Every flagged image is counted on the node that holds it.
  for (const r of out.rows) expect(Number(r['node-a']) + Number(r['node-b']) + Number(r['node-c'])).toBe(r.flagged);
  expect(row('lighting_conditions')).toMatchObject({ planted: 15, precision: '1.00', recall: '1.00' });
  expect(Number(row('mislabeled_images').recall)).toBeGreaterThanOrEqual(0.66);
  const result = JSON.parse(await readFile(out.result, 'utf8'));
  expect(result.dataset_uuid).toBe('fashion-mnist-sample');
  const html = await readFile(out.report, 'utf8');
  expect(html).toContain('<svg');
  expect(html).toContain('Fashion-MNIST sample');
  // Thumbnails of flagged images come from each hospital's own folder (this run is local).
  expect((html.match(/src="data:image\/png;base64,/g) ?? []).length).toBeGreaterThanOrEqual(60);
  // The report scores the run against the planted faults as the terminal does.
  const cell = (task: string, col: number) => html.match(new RegExp(`<tr data-task="${task}">(?:<t[hd][^>]*>[^<]*</t[hd]>){${col}}<td class="num">([^<]*)</td>`))?.[1];
  expect(Number(cell('lighting_conditions', 8)).toFixed(2)).toBe(row('lighting_conditions').precision);
  expect(Number(cell('mislabeled_images', 9)).toFixed(2)).toBe(row('mislabeled_images').recall);
}, 120_000);

test('the mean example prints the pooled mean of the three nodes', async () => {
  const { stdout } = await flame(['--json', 'demo', '--analysis', 'mean'], dir);
  const r = JSON.parse(stdout);
  expect(r).toMatchObject({ count: 350, rounds: 2, perNode: { 'node-a': 120, 'node-b': 80, 'node-c': 150 } });
  expect(r.std).toBeGreaterThan(0);
}, 60_000);

test('an unknown demo is refused with the usage exit code', async () => {
  const err = await flame(['demo', '--analysis', 'nope'], dir).catch((e: { code: number; stderr: string }) => e);
  expect(err).toMatchObject({ code: 2 });
  expect((err as { stderr: string }).stderr).toMatch(/--analysis: expected "diagnosis" or "mean", got "nope"/);
});
