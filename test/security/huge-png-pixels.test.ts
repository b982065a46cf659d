/**
 * Attack: a 2 MB PNG whose header says 16383 × 16383 RGBA at 16 bits (2.1 GB of pixels, just inside
 * sharp's own default limit). Before the cap it cost 2.3 GB in `flame metadata` and 6.3 GB in the
 * worker. Every decode now checks width × height from the header against `maxImagePixels` first: the
 * CLI and the worker refuse the file naming it and the cap, a diagnosis skips it like any unreadable
 * file, and no child process gets anywhere near 512 MiB.
 */
import { jest } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { datasetFromFolder, type Dataset } from '../../src/images/index.js';
import { tempDir, writeStripeSet } from '../protocol/worker-harness.js';
import { measuredWorker, mib, MiB, REPO, runMeasured } from './measure.js';
import { ATTACK_SIDE, writeAttackPng } from './oversized-png.js';

jest.setTimeout(240_000);

/** Far below what decoding the image takes (2.1 GB of samples), well below 512 MiB. */
const RSS_BUDGET = 400 * MiB;

let dir: string;
let bomb: string;
let classes: { h: string; v: string };
/** The stripe images as a seed-000 dataset, built before the attack file joined them. */
let dataset: Dataset;

beforeAll(async () => {
  dir = await tempDir('flame-huge-png-');
  classes = await writeStripeSet(path.join(dir, 'data'), 4, 7);
  // In this process only the harmless files are ever decoded: the attack goes to child processes.
  dataset = (await datasetFromFolder(path.join(dir, 'data'), { logger: { warn: () => undefined } })).dataset;
  bomb = path.join(classes.h, 'zz-bomb.png');
  const size = await writeAttackPng(bomb);
  process.stdout.write(`attack PNG: ${ATTACK_SIDE}x${ATTACK_SIDE} RGBA16, ${(size / 1e6).toFixed(1)} MB on disk\n`);
});

function capMessage(text: string): void {
  expect(text).toContain('zz-bomb.png');
  expect(text).toContain(`${ATTACK_SIDE * ATTACK_SIDE}`);
  expect(text).toContain('maxImagePixels');
  expect(text).toContain('--max-image-pixels');
  expect(text).toContain('FLAME_MAX_IMAGE_PIXELS');
}

test('flame metadata refuses it from the header (exit 2), naming the file and the cap', async () => {
  const run = await runMeasured(['metadata', bomb, '--json']);
  process.stdout.write(`flame metadata: exit ${run.code} in ${run.elapsedMs} ms, peak RSS ${mib(run.peakRss)}${run.killed ? ` (killed: ${run.killed})` : ''}\n`);
  expect(run.killed).toBeUndefined();
  expect(run.code).toBe(2);
  capMessage(run.stderr);
  expect(run.peakRss).toBeLessThan(RSS_BUDGET);
  expect(run.elapsedMs).toBeLessThan(30_000);
});

test('flame metadata reads it once the cap is raised past it (--max-image-pixels refuses lower ones too)', async () => {
  const small = path.join(classes.v, 'v000.png');
  const refused = await runMeasured(['metadata', small, '--json', '--max-image-pixels', '100']);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('576 pixels is over the limit of 100');
  const env = await runMeasured(['metadata', small, '--json'], { env: { FLAME_MAX_IMAGE_PIXELS: '100' } });
  expect(env.code).toBe(2);
  expect(env.stderr).toContain('over the limit of 100');
  const allowed = await runMeasured(['metadata', small, '--json'], { env: { FLAME_MAX_IMAGE_PIXELS: '576' } });
  expect(allowed.code).toBe(0);
  expect(JSON.parse(allowed.stdout)).toMatchObject({ width: 24, height: 24 });
});

test('flame job metadata fails the job with the cap in the message', async () => {
  const request = path.join(dir, 'metadata-request.json');
  await writeFile(request, JSON.stringify({ path: bomb }));
  const run = await runMeasured(['job', 'metadata', '--user', 'u-1', '--request', request]);
  process.stdout.write(`flame job metadata: exit ${run.code} in ${run.elapsedMs} ms, peak RSS ${mib(run.peakRss)}${run.killed ? ` (killed: ${run.killed})` : ''}\n`);
  expect(run.killed).toBeUndefined();
  expect(run.code).toBe(2);
  capMessage(run.stderr);
  expect(run.peakRss).toBeLessThan(RSS_BUDGET);
});

test('the worker refuses it in load-samples and infer, keeps its samples, and keeps serving', async () => {
  const w = measuredWorker(['--classes', 'h,v']);
  try {
    const load = await w.client.request('load-samples', { path: bomb, label: 'h' }, 60_000);
    // Failed after the ack, like any file that cannot be decoded: `bug`, the reason on stderr.
    expect(load.packets.map((p) => p.type)).toEqual(['ack', 'error']);
    expect(load.error?.data.code).toBe('bug');
    for (const label of ['h', 'v'] as const) {
      const ok = await w.client.request('load-samples', { path: label === 'h' ? path.join(classes.h, 'h000.png') : classes.v, label }, 60_000);
      expect(ok.error).toBeUndefined();
    }
    const folder = await w.client.request('infer', { input_path: classes.h, output_path: path.join(dir, 'out.json') }, 60_000);
    expect(folder.error?.data.code).toBe('bug');
    const single = await w.client.request('infer', { input_path: bomb, output_path: '' }, 60_000);
    expect(single.error?.data.code).toBe('bug');
    const good = await w.client.request('infer', { input_path: path.join(classes.v, 'v001.png'), output_path: '' }, 60_000);
    expect(good.error).toBeUndefined();
    const pong = await w.client.request('ping', { message: 'still here' });
    expect(pong.packets.map((p) => p.type)).toEqual(['pong']);
    capMessage(w.client.stderr);
  } finally {
    const end = await w.finish();
    process.stdout.write(`worker: exit ${end.code}, peak RSS ${mib(end.peakRss)}${end.killed ? ` (killed: ${end.killed})` : ''}\n`);
    expect(end.killed).toBeUndefined();
    expect(end.code).toBe(0);
    expect(end.peakRss).toBeLessThan(RSS_BUDGET);
  }
});

test('a diagnosis skips it with its reason and diagnoses the rest', async () => {
  dataset.class_files.h[bomb] = { uuid: 'bomb-uuid', channels: 4, width: ATTACK_SIDE, height: ATTACK_SIDE, mean: [0, 0, 0, 0], std_dev: [0, 0, 0, 0] };
  const request = path.join(dir, 'diagnosis-request.json');
  await writeFile(request, JSON.stringify({ auto: false, dataset_uuid: 'd-1', dataset, tasks: [{ name: 'lighting_conditions' }, { name: 'odd_size' }] }));
  const out = path.join(dir, 'diagnosis.json');
  const run = await runMeasured(['diagnose', '--request', request, '--out', out]);
  process.stdout.write(`flame diagnose: exit ${run.code} in ${run.elapsedMs} ms, peak RSS ${mib(run.peakRss)}${run.killed ? ` (killed: ${run.killed})` : ''}\n`);
  expect(run.killed).toBeUndefined();
  expect(run.code).toBe(0);
  const result = JSON.parse(await readFile(out, 'utf8')) as { skipped: Array<{ path: string; error: string }>; tasks: Array<{ datasets: { inliers: { class_files: Record<string, Record<string, unknown>> }; outliers: { class_files: Record<string, Record<string, unknown>> } } }> };
  expect(result.skipped.map((s) => s.path)).toEqual([bomb]);
  capMessage(result.skipped[0].error);
  const diagnosed = result.tasks[0].datasets;
  const files = [...Object.values(diagnosed.inliers.class_files), ...Object.values(diagnosed.outliers.class_files)].flatMap((f) => Object.keys(f));
  expect(files).toHaveLength(8);
  expect(run.peakRss).toBeLessThan(RSS_BUDGET);
});

test('building a dataset from the folder skips it with its reason', async () => {
  const script = path.join(dir, 'build-dataset.mts');
  const images = path.join(REPO, 'src/images/index.ts');
  await writeFile(
    script,
    `import { datasetFromFolder } from ${JSON.stringify(images)};\n` +
      `const b = await datasetFromFolder(process.argv[2], { logger: { warn: () => undefined } });\n` +
      `process.stdout.write(JSON.stringify({ skipped: b.skipped, files: Object.values(b.dataset.class_files).reduce((n, f) => n + Object.keys(f).length, 0) }));\n`,
  );
  const run = await runMeasured([path.join(dir, 'data')], { script });
  process.stdout.write(`datasetFromFolder: exit ${run.code} in ${run.elapsedMs} ms, peak RSS ${mib(run.peakRss)}${run.killed ? ` (killed: ${run.killed})` : ''}\n`);
  expect(run.killed).toBeUndefined();
  expect(run.code).toBe(0);
  const built = JSON.parse(run.stdout) as { skipped: Array<{ path: string; error: string }>; files: number };
  expect(built.files).toBe(8);
  expect(built.skipped.map((s) => s.path)).toEqual([bomb]);
  capMessage(built.skipped[0].error);
  expect(run.peakRss).toBeLessThan(RSS_BUDGET);
});
