/**
 * `flame job diagnose|clean|metadata` in a child process (from a temporary working directory, tsx
 * loaded by absolute URL so nothing is written into the repository), with a real socket listener.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DiagnosisJobResult } from '../../apps/jobs/index.js';
import { runCli } from '../cli/run-cli.js';
import { sampleDataset } from './fixture.js';
import { listen } from './listener.js';

const flame = (args: string[], cwd: string) => runCli(args, {}, cwd);

let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), 'flame-job-cli-'));
});

test('job diagnose: --out gets the response, --sock the events', async () => {
  const dataset = await sampleDataset(1);
  await writeFile(path.join(cwd, 'diag.json'), JSON.stringify({ auto: false, dataset_uuid: 'cli-ds', dataset, tasks: [{ name: 'lighting_conditions' }, { name: 'odd_size' }] }));
  const listener = await listen();
  try {
    const run = await flame(['job', 'diagnose', '--user', 'u-cli', '--request', 'diag.json', '--sock', listener.path, '--out', 'result.json', '--job-id', 'cli-1'], cwd);
    expect(run.stderr).toContain('result written to result.json');
    expect(run.code).toBe(0);
    await listener.closed;
    const result = JSON.parse(await readFile(path.join(cwd, 'result.json'), 'utf8')) as DiagnosisJobResult;
    expect(result.dataset_uuid).toBe('cli-ds');
    expect(result.tasks.map((t) => t.name)).toEqual(['lighting_conditions', 'odd_size']);
    const types = listener.events.map((e) => `${e.type}:${e.task}`);
    expect(types[0]).toBe('started:job');
    expect(types.filter((t) => t.startsWith('task_result'))).toEqual(['task_result:lighting_conditions', 'task_result:odd_size']);
    expect(types[types.length - 1]).toBe('finished:job');
    expect(listener.events.every((e) => e.job === 'cli-1' && e.user === 'u-cli')).toBe(true);
    expect(listener.events[listener.events.length - 1].result).toEqual(result);
  } finally {
    await listener.stop();
  }
}, 30_000);

test('job metadata: the seed-000 object on stdout; no socket needed', async () => {
  const dataset = await sampleDataset(1);
  const image = Object.keys(dataset.class_files.Bag)[0];
  await writeFile(path.join(cwd, 'meta.json'), JSON.stringify({ path: image }));
  const run = await flame(['job', 'metadata', '--user', 'u', '--request', 'meta.json', '--sock', path.join(cwd, 'nobody.sock')], cwd);
  expect(run.code).toBe(0);
  expect(Object.keys(JSON.parse(run.stdout) as object)).toEqual(['channels', 'height', 'width', 'mean', 'std_dev']);
  expect(run.stderr).toContain('nobody.sock');
}, 30_000);

test('job clean / metadata errors: exit 2 naming the field, 3 for a missing file', async () => {
  await writeFile(path.join(cwd, 'clean.json'), '{"auto": true, "dataset_uuid": "d", "tasks": {}}');
  const bad = await flame(['job', 'clean', '--user', 'u', '--request', 'clean.json'], cwd);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--request clean.json: request.tasks: missing');
  const gone = await flame(['job', 'metadata', '--user', 'u', '--request', 'nope.json'], cwd);
  expect(gone.code).toBe(3);
  expect(gone.stderr).toContain('--request nope.json does not exist');
  await writeFile(path.join(cwd, 'm404.json'), '{"path": "/nonexistent/x.png"}');
  const noImage = await flame(['job', 'metadata', '--user', 'u', '--request', 'm404.json'], cwd);
  expect(noImage.code).toBe(3);
  expect(noImage.stderr).toContain('request.path: /nonexistent/x.png does not exist');
}, 30_000);
