/**
 * Attack: a request that declares 10,000 classes. Memory of the diagnosis grows with the classes
 * (softmax weights per class, the classes × classes confident joint, one probability per image and
 * class): before the cap it was at 11 GB and still training after 300 s. Every entry point now counts
 * the classes first and refuses more than `maxClasses` in milliseconds, naming the cap and how to
 * raise it: the job API, `flame diagnose`, the cleaning request and the worker.
 */
import { jest } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCleaningRequest } from '../../analyses/image-cleaning/index.js';
import { diagnose, parseDiagnosisRequest } from '../../analyses/image-diagnosis/index.js';
import { checkDiagnosisRequest } from '../../apps/jobs/request.js';
import { datasetFromFolder, type Dataset } from '../../src/images/index.js';
import { tempDir, writeStripeSet } from '../protocol/worker-harness.js';
import { measuredWorker, mib, MiB, runMeasured } from './measure.js';

jest.setTimeout(240_000);

const CLASSES = 10_000;
/** What a refusal may cost a child process; the attack ran to gigabytes. */
const WATCH = { rssLimit: 1024 * MiB, timeoutMs: 90_000 };
/**
 * The refusal itself takes milliseconds (measured in-process below); a CLI run is mostly starting node
 * with tsx, 5–15 s on a loaded 2-core machine, against minutes and gigabytes before the cap.
 */
const CLI_BUDGET_MS = 60_000;
/** A refused run stays at the size of a started CLI (about 140 MiB), far below the attack's gigabytes. */
const RSS_BUDGET = 400 * MiB;

let dir: string;
/** A real dataset of 8 images in classes h and v, declared with 10,000 classes. */
let dataset: Dataset;
const names = Array.from({ length: CLASSES }, (_, i) => (i === 0 ? 'h' : i === 1 ? 'v' : `class-${i}`));

beforeAll(async () => {
  dir = await tempDir('flame-many-classes-');
  await writeStripeSet(path.join(dir, 'data'), 4, 3);
  const built = await datasetFromFolder(path.join(dir, 'data'), { logger: { warn: () => undefined } });
  dataset = { ...built.dataset, classes: names, class_files: { ...Object.fromEntries(names.map((n) => [n, {}])), ...built.dataset.class_files } };
});

function capMessage(text: string): void {
  expect(text).toContain(`${CLASSES}`);
  expect(text).toContain('over the limit of 1000');
  expect(text).toContain('maxClasses');
  expect(text).toContain('--max-classes');
  expect(text).toContain('FLAME_MAX_CLASSES');
}

/** Runs `fn`, expecting it to throw; returns the message and how long it took. */
function refusal(fn: () => unknown): { message: string; ms: number } {
  const started = performance.now();
  try {
    fn();
  } catch (e) {
    return { message: (e as Error).message, ms: performance.now() - started };
  }
  throw new Error('expected a refusal, the request was accepted');
}

function diagnosisRequest(): Record<string, unknown> {
  return { auto: true, dataset_uuid: 'many', dataset, tasks: [] };
}

function cleaningRequest(): Record<string, unknown> {
  return { auto: true, dataset_uuid: 'many', tasks: [{ name: 'lighting_conditions', datasets: { outliers: dataset, inliers: dataset } }] };
}

test('the request checks refuse it in milliseconds: job API, diagnosis, cleaning', () => {
  for (const [what, check] of [
    ['checkDiagnosisRequest', () => checkDiagnosisRequest(diagnosisRequest())],
    ['parseDiagnosisRequest', () => parseDiagnosisRequest(diagnosisRequest())],
    ['parseCleaningRequest', () => parseCleaningRequest(cleaningRequest())],
  ] as const) {
    const { message, ms } = refusal(check);
    process.stdout.write(`${what}: refused in ${ms.toFixed(1)} ms\n`);
    capMessage(message);
    expect(ms).toBeLessThan(1000);
  }
  // The cap is a setting: raised, the same request passes the check.
  expect(checkDiagnosisRequest(diagnosisRequest(), { maxClasses: CLASSES }).dataset?.classes).toHaveLength(CLASSES);
  expect(parseCleaningRequest(cleaningRequest(), 'request', { maxClasses: CLASSES }).tasks).toHaveLength(1);
});

test('a cleaning request cannot pass the cap by spreading classes over many tasks', () => {
  const part = (from: number): Dataset => ({ ...dataset, classes: names.slice(from, from + 600), class_files: {} });
  const request = { auto: true, dataset_uuid: 'many', tasks: [0, 600].map((from, i) => ({ name: `task-${i}`, datasets: { outliers: part(from) } })) };
  const { message } = refusal(() => parseCleaningRequest(request));
  expect(message).toContain('1200');
  expect(message).toContain('over the limit of 1000');
});

test('classes that come from the data, not the request: a node\'s folder, and the union over the nodes', async () => {
  // Two classes h and v in one folder, over a cap of 1: the node refuses before decoding.
  const started = Date.now();
  await expect(diagnose({ dataset_uuid: 'x', auto: true }, { nodes: [{ id: 'a', data: { folder: path.join(dir, 'data') } }], limits: { maxClasses: 1 } })).rejects.toThrow(
    'node "a": its images have too many classes: 2 is over the limit of 1 (maxClasses; raise it with --max-classes or FLAME_MAX_CLASSES)',
  );
  process.stdout.write(`folder with too many classes: refused in ${Date.now() - started} ms\n`);
  // One class per node passes each node; the aggregator refuses their union.
  const one = (cls: string): Dataset => ({ ...dataset, classes: [cls], class_files: { [cls]: dataset.class_files[cls] } });
  await expect(
    diagnose({ dataset_uuid: 'x', auto: true, tasks: [] }, { nodes: [{ id: 'a', data: { dataset: one('h') } }, { id: 'b', data: { dataset: one('v') } }], limits: { maxClasses: 1 } }),
  ).rejects.toThrow('diagnosis: the nodes hold images of too many classes: 2 is over the limit of 1');
});

test('flame job diagnose and flame job clean refuse it fast (exit 2)', async () => {
  const diagnosis = path.join(dir, 'diagnosis.json');
  await writeFile(diagnosis, JSON.stringify(diagnosisRequest()));
  const cleaning = path.join(dir, 'cleaning.json');
  await writeFile(cleaning, JSON.stringify(cleaningRequest()));
  for (const args of [
    ['job', 'diagnose', '--user', 'u-1', '--request', diagnosis],
    ['job', 'clean', '--user', 'u-1', '--request', cleaning],
  ]) {
    const run = await runMeasured(args, WATCH);
    process.stdout.write(`flame ${args.slice(0, 2).join(' ')}: exit ${run.code} in ${run.elapsedMs} ms, peak RSS ${mib(run.peakRss)}${run.killed ? ` (killed: ${run.killed})` : ''}\n`);
    expect(run.killed).toBeUndefined();
    expect(run.code).toBe(2);
    capMessage(run.stderr);
    expect(run.elapsedMs).toBeLessThan(CLI_BUDGET_MS);
    expect(run.peakRss).toBeLessThan(RSS_BUDGET);
  }
});

test('flame diagnose refuses it fast (exit 2); --max-classes lowers the cap, FLAME_MAX_CLASSES too', async () => {
  const request = path.join(dir, 'diagnose.json');
  await writeFile(request, JSON.stringify(diagnosisRequest()));
  const run = await runMeasured(['diagnose', '--request', request], WATCH);
  process.stdout.write(`flame diagnose: exit ${run.code} in ${run.elapsedMs} ms, peak RSS ${mib(run.peakRss)}${run.killed ? ` (killed: ${run.killed})` : ''}\n`);
  expect(run.killed).toBeUndefined();
  expect(run.code).toBe(2);
  capMessage(run.stderr);
  expect(run.elapsedMs).toBeLessThan(CLI_BUDGET_MS);
  expect(run.peakRss).toBeLessThan(RSS_BUDGET);

  const small = path.join(dir, 'small.json');
  await writeFile(small, JSON.stringify({ auto: true, dataset_uuid: 'few', dataset: { ...dataset, classes: ['h', 'v', 'x'], class_files: { h: dataset.class_files.h, v: dataset.class_files.v } }, tasks: [] }));
  const flag = await runMeasured(['diagnose', '--request', small, '--max-classes', '2'], WATCH);
  expect(flag.code).toBe(2);
  expect(flag.stderr).toContain('3 is over the limit of 2');
  const env = await runMeasured(['diagnose', '--request', small], { ...WATCH, env: { FLAME_MAX_CLASSES: '2' } });
  expect(env.code).toBe(2);
  expect(env.stderr).toContain('3 is over the limit of 2');
});

test('flame worker refuses 10,000 --classes or --labels before loading anything (exit 2)', async () => {
  const labels = path.join(dir, 'labels.txt');
  await writeFile(labels, names.join('\n') + '\n');
  for (const args of [
    ['--classes', names.join(',')],
    // The model file does not exist: the labels are counted before it is opened.
    ['--model', path.join(dir, 'missing.onnx'), '--labels', labels],
  ]) {
    const w = measuredWorker(args, WATCH);
    const started = Date.now();
    const end = await w.finish();
    process.stdout.write(`flame worker ${args[0]}: exit ${end.code} in ${Date.now() - started} ms, peak RSS ${mib(end.peakRss)}${end.killed ? ` (killed: ${end.killed})` : ''}\n`);
    expect(end.killed).toBeUndefined();
    expect(end.code).toBe(2);
    expect(end.peakRss).toBeLessThan(RSS_BUDGET);
    capMessage(w.client.stderr);
  }
});

test('flame worker starts with more classes when the cap is raised, and honours a lowered one', async () => {
  // 1500 names, not 10,000: onnxruntime-node crashes (SIGSEGV) on any argument of about 30 KB.
  const some = names.slice(0, 1500).join(',');
  const refused = measuredWorker(['--classes', some], WATCH);
  expect((await refused.finish()).code).toBe(2);
  expect(refused.client.stderr).toContain('1500 is over the limit of 1000');
  const raised = measuredWorker(['--classes', some, '--max-classes', '1500'], WATCH);
  const pong = await raised.client.request('ping', { message: 'many' });
  expect(pong.packets.map((p) => p.type)).toEqual(['pong']);
  expect((await raised.finish()).code).toBe(0);
  const lowered = measuredWorker(['--classes', 'a,b,c'], { ...WATCH, env: { FLAME_MAX_CLASSES: '2' } });
  expect((await lowered.finish()).code).toBe(2);
  expect(lowered.client.stderr).toContain('3 is over the limit of 2');
});
