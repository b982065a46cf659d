/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * One validator for the seed-000 diagnosis request: the job API (`startDiagnosisJob`) and
 * `flame diagnose --request FILE` (a child process, as a user runs it) give the same verdict and
 * the same error text for the same request text.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Dataset } from '../../src/images/index.js';
import { FlameError } from '../../src/errors.js';
import { startDiagnosisJob } from '../../apps/jobs/index.js';
import { runCli } from '../cli/run-cli.js';
import { sampleDataset } from './fixture.js';

let dataset: Dataset;
let cwd: string;
beforeAll(async () => {
  dataset = await sampleDataset(1);
  cwd = await mkdtemp(path.join(os.tmpdir(), 'flame-agreement-'));
});

type Req = Record<string, unknown>;
const good = (): Req => ({ auto: false, dataset_uuid: 'agree', dataset: structuredClone(dataset), tasks: [{ name: 'lighting_conditions' }, { name: 'odd_size' }] });
const firstFile = (r: Req): Req => {
  const ds = r.dataset as Dataset;
  return Object.values(ds.class_files[ds.classes[0]])[0] as unknown as Req;
};

/** Each bad request as text (what the platform passes and what the file holds), with the message both must give. */
const BAD: Array<[string, () => string, string]> = [
  ['not JSON', () => '{"auto": false,\n "dataset_uuid" "x"}', 'request is not valid JSON at position 32 (line 2, column 17'],
  ['an array', () => '[1]', 'request: expected a JSON object {auto, dataset_uuid, dataset, tasks}, got an array'],
  // flame diagnose used to default a missing auto to false; a seed-000 request names it
  ['auto missing', () => JSON.stringify({ ...good(), auto: undefined }), 'request.auto: missing (true or false)'],
  ['dataset_uuid empty', () => JSON.stringify({ ...good(), dataset_uuid: '' }), 'request.dataset_uuid: expected a non-empty string, got string ""'],
  ['dataset missing', () => JSON.stringify({ ...good(), dataset: undefined }), 'request.dataset: missing (an object {classes, mean, std_dev, class_files})'],
  ['class not in classes', () => { const r = good(); (r.dataset as Dataset).class_files.Nope = {}; return JSON.stringify(r); }, 'request.dataset.class_files["Nope"]: class "Nope" is not in request.dataset.classes'],
  // flame diagnose used to accept channels 5 and mean/std_dev of the wrong length
  ['channels 5', () => { const r = good(); firstFile(r).channels = 5; return JSON.stringify(r); }, '.channels: expected an integer from 1 to 4, got number 5'],
  ['mean per channel', () => { const r = good(); firstFile(r).mean = [0.1, 0.2, 0.3, 0.4]; return JSON.stringify(r); }, '.mean: expected 1 value(s) (one per channel), got 4'],
  ['uuid twice', () => { const r = good(); const ds = r.dataset as Dataset; const [a, b] = ds.classes; const f = Object.values(ds.class_files[a])[0]; ds.class_files[b] = { '/elsewhere/x.png': { ...f } }; return JSON.stringify(r); }, '.uuid: "'],
  ['tasks a string', () => JSON.stringify({ ...good(), tasks: 'blurry' }), 'request.tasks: expected an array of {"name": ...}, got string "blurry"'],
  ['task unknown', () => JSON.stringify({ ...good(), tasks: [{ name: 'sharpen' }] }), 'request.tasks[0].name: unknown task "sharpen" (known: mislabeled_images'],
  ['task twice', () => JSON.stringify({ ...good(), tasks: [{ name: 'blurry' }, { name: 'blurry' }] }), 'request.tasks[1].name: task "blurry" is listed twice'],
  ['no tasks without auto', () => JSON.stringify({ ...good(), tasks: [] }), 'request.tasks: missing or empty: list tasks, or set "auto": true to run every task'],
];

async function jobVerdict(text: string): Promise<{ ok: true; output: Req } | { ok: false; kind: string; message: string }> {
  try {
    return { ok: true, output: JSON.parse(await startDiagnosisJob('agree-user', text, '', { jobId: 'agree' })) as Req };
  } catch (e) {
    return { ok: false, kind: (e as FlameError).kind, message: (e as Error).message };
  }
}

test.each(BAD)('bad request, %s: the same error from the job and from flame diagnose', async (name, text, message) => {
  const file = `${name.replace(/\W+/g, '-')}.json`;
  await writeFile(path.join(cwd, file), text());
  const job = await jobVerdict(text());
  expect(job).toEqual({ ok: false, kind: 'bad_request', message: expect.stringContaining(message) });
  const cli = await runCli(['diagnose', '--request', file], {}, cwd);
  expect(cli.code).toBe(2);
  expect(cli.stderr).toContain(`flame: bad request: --request ${file}: ${(job as { message: string }).message}`);
}, 30_000);

test('too many classes: the same cap and message from both (--max-classes / limits.maxClasses)', async () => {
  await writeFile(path.join(cwd, 'cap.json'), JSON.stringify(good()));
  let jobMessage = '';
  await startDiagnosisJob('u', JSON.stringify(good()), '', { limits: { maxClasses: 1 } }).catch((e: Error) => (jobMessage = e.message));
  expect(jobMessage).toMatch(/^request\.dataset\.classes has too many classes/);
  const cli = await runCli(['diagnose', '--request', 'cap.json', '--max-classes', '1'], {}, cwd);
  expect(cli.code).toBe(2);
  expect(cli.stderr).toContain(`--request cap.json: ${jobMessage}`);
}, 30_000);

test.each<[string, () => Req]>([
  ['auto false with tasks', good],
  ['auto true with a task named', () => ({ ...good(), auto: true, tasks: [{ name: 'odd_size' }] })],
])('good request, %s: both run it, with the same tasks', async (_name, make) => {
  const text = JSON.stringify(make());
  await writeFile(path.join(cwd, 'good.json'), text);
  const job = await jobVerdict(text);
  expect(job).toMatchObject({ ok: true });
  const cli = await runCli(['--json', 'diagnose', '--request', 'good.json'], {}, cwd);
  expect(cli.code).toBe(0);
  const out = JSON.parse(cli.stdout) as Req;
  const tasks = (r: Req): unknown => (r.tasks as Array<{ name: string }>).map((t) => t.name);
  expect(out.dataset_uuid).toBe('agree');
  expect(tasks(out)).toEqual(tasks((job as { output: Req }).output));
}, 120_000);
