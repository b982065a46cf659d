/**
 * `flame worker` on Fashion-MNIST PNGs: infer throughput through the worker process (packets over
 * pipes) against the same model called in-process, and the accuracy of the worker trained with
 * `load-samples` on a training folder and inferring on a separate test folder.
 *
 *   npx tsx bench/worker.ts [trainPerClass=1000] [testCount=2000] [repeats=3]
 *
 * Needs `apt-get install dataset-fashion-mnist`. PNGs are written once to a cache folder in /tmp.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { WorkerClient } from '../apps/protocol/client.js';
import { ConvSoftmaxModel, argmaxRows } from '../apps/protocol/model.js';
import { listImageFiles, readImageBatch } from '../apps/protocol/samples.js';
import { FASHION_MNIST_CLASSES, loadFashionMnist } from './fashion-mnist.js';
import { fmt, printTable } from './stats.js';

const trainPerClass = Number(process.argv[2] ?? 1000);
const testCount = Number(process.argv[3] ?? 2000);
const repeats = Number(process.argv[4] ?? 3);
const IMAGE_SIZE = 28;
const CHUNK = 256;
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(os.tmpdir(), `flame-bench-worker-fmnist-${trainPerClass}-${testCount}`);

/** Folder names cannot hold "T-shirt/top"; labels keep the real names. */
const folderName = (label: string): string => label.replace(/[^A-Za-z0-9-]+/g, '_');

async function writePng(file: string, pixels: Float32Array, offset: number): Promise<void> {
  const px = Buffer.alloc(IMAGE_SIZE * IMAGE_SIZE);
  for (let i = 0; i < px.length; i++) px[i] = Math.round(pixels[offset + i] * 255);
  await sharp(px, { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 1 } }).png().toFile(file);
}

/** Writes train/<class>/*.png and test/*.png (true labels in test-labels.json), once. */
async function prepareFolders(): Promise<{ train: string; test: string; truth: Record<string, string> }> {
  const train = path.join(CACHE, 'train');
  const test = path.join(CACHE, 'test');
  const truthFile = path.join(CACHE, 'test-labels.json');
  if (!existsSync(path.join(CACHE, 'done'))) {
    await rm(CACHE, { recursive: true, force: true });
    const size = IMAGE_SIZE * IMAGE_SIZE;
    const tr = loadFashionMnist('train');
    const perClass = new Array<number>(10).fill(0);
    for (const c of FASHION_MNIST_CLASSES) await mkdir(path.join(train, folderName(c)), { recursive: true });
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < tr.count && perClass.some((n) => n < trainPerClass); i++) {
      const y = tr.labels[i];
      if (perClass[y] >= trainPerClass) continue;
      perClass[y]++;
      jobs.push(writePng(path.join(train, folderName(FASHION_MNIST_CLASSES[y]), `${i}.png`), tr.images, i * size));
      if (jobs.length >= 64) await Promise.all(jobs.splice(0));
    }
    const te = loadFashionMnist('t10k');
    await mkdir(test, { recursive: true });
    const truth: Record<string, string> = {};
    for (let i = 0; i < Math.min(testCount, te.count); i++) {
      const file = path.join(test, `${String(i).padStart(5, '0')}.png`);
      truth[file] = FASHION_MNIST_CLASSES[te.labels[i]];
      jobs.push(writePng(file, te.images, i * size));
      if (jobs.length >= 64) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
    await writeFile(truthFile, JSON.stringify(truth));
    await writeFile(path.join(CACHE, 'done'), '');
  }
  return { train, test, truth: JSON.parse(await readFile(truthFile, 'utf8')) as Record<string, string> };
}

function accuracy(result: Record<string, string>, truth: Record<string, string>): number {
  const files = Object.keys(truth);
  return files.filter((f) => result[f] === truth[f]).length / files.length;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { train, test, truth } = await prepareFolders();
  const testFiles = Object.keys(truth).sort();
  console.log(`Fashion-MNIST: ${trainPerClass} training images per class, ${testFiles.length} test images, ${os.cpus().length} CPUs`);

  // ---------------------------------------------------------------- through the worker process
  const worker = WorkerClient.spawn(
    process.execPath,
    ['--import', 'tsx', path.join(REPO, 'apps/cli/main.ts'), 'worker', '--classes', FASHION_MNIST_CLASSES.join(','), '--image-size', String(IMAGE_SIZE), '--chunk-size', String(CHUNK)],
    { cwd: REPO },
  );
  await worker.request('ping', { message: 'ready?' });
  let t = performance.now();
  for (const c of FASHION_MNIST_CLASSES) {
    const out = await worker.request('load-samples', { path: path.join(train, folderName(c)), label: c }, 600_000);
    if (out.error) throw new Error(`load-samples ${c}: ${out.error.data.etc}\n${worker.stderr}`);
  }
  const loadSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  await worker.request('infer', { input_path: testFiles[0], output_path: '' }, 600_000); // trains
  const trainSeconds = (performance.now() - t) / 1000;

  const output = path.join(CACHE, 'worker-result.json');
  const workerRates: number[] = [];
  let workerAccuracy = 0;
  async function workerRun(): Promise<void> {
    const t0 = performance.now();
    const out = await worker.request('infer', { input_path: test, output_path: output }, 600_000);
    if (out.error) throw new Error(`infer: ${out.error.data.etc}`);
    workerRates.push(testFiles.length / ((performance.now() - t0) / 1000));
    workerAccuracy = accuracy(JSON.parse(await readFile(output, 'utf8')) as Record<string, string>, truth);
  }

  // ---------------------------------------------------------------- the same model in-process
  const model = await ConvSoftmaxModel.create({ classes: FASHION_MNIST_CLASSES, input: { channels: 1, height: IMAGE_SIZE, width: IMAGE_SIZE } });
  const features: Float32Array[] = [];
  const labels: number[] = [];
  for (const [k, c] of FASHION_MNIST_CLASSES.entries()) {
    const files = await listImageFiles(path.join(train, folderName(c)));
    for (let s = 0; s < files.length; s += CHUNK) {
      const chunk = files.slice(s, s + CHUNK);
      features.push(await model.features(await readImageBatch(chunk, model.input)));
      for (let i = 0; i < chunk.length; i++) labels.push(k);
    }
  }
  const all = new Float32Array(labels.length * model.featureDim);
  let off = 0;
  for (const f of features) {
    all.set(f, off);
    off += f.length;
  }
  const predictor = await model.fit(all, Int32Array.from(labels));
  const directRates: number[] = [];
  let directAccuracy = 0;
  async function directRun(): Promise<void> {
    const t0 = performance.now();
    const files = await listImageFiles(test);
    const result: Record<string, string> = {};
    for (let s = 0; s < files.length; s += CHUNK) {
      const chunk = files.slice(s, s + CHUNK);
      const best = argmaxRows(await predictor.scores(await readImageBatch(chunk, model.input)), FASHION_MNIST_CLASSES.length);
      chunk.forEach((f, i) => (result[f] = FASHION_MNIST_CLASSES[best[i]]));
    }
    await writeFile(path.join(CACHE, 'direct-result.json'), JSON.stringify(result, null, 2) + '\n');
    directRates.push(files.length / ((performance.now() - t0) / 1000));
    directAccuracy = accuracy(result, truth);
  }

  // Alternating runs, so load from other processes on the machine hits both sides alike.
  for (let r = 0; r < repeats; r++) {
    await workerRun();
    await directRun();
  }

  // One infer per file (inference-result packets), 16 in flight.
  const perFile = testFiles.slice(0, Math.min(1000, testFiles.length));
  t = performance.now();
  let next = 0;
  let perFileCorrect = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < perFile.length) {
        const file = perFile[next++];
        const out = await worker.request('infer', { input_path: file, output_path: '' });
        if (out.label === truth[file]) perFileCorrect++;
      }
    }),
  );
  const perFileRate = perFile.length / ((performance.now() - t) / 1000);
  await worker.close();
  const trained = /trained on .*/.exec(worker.stderr)?.[0] ?? '';
  await predictor.release();
  await model.release();

  const w = median(workerRates);
  const d = median(directRates);
  printTable([
    { path: 'worker process, infer folder → file', 'images/s': fmt(w, 0), accuracy: fmt(workerAccuracy, 4) },
    { path: 'in-process, same model and steps', 'images/s': fmt(d, 0), accuracy: fmt(directAccuracy, 4) },
    { path: 'worker process, one infer per file ×16', 'images/s': fmt(perFileRate, 0), accuracy: fmt(perFileCorrect / perFile.length, 4) },
  ]);
  console.log(`worker / in-process throughput: ${fmt(w / d, 3)} (target ≥ 0.8; medians of ${repeats} alternating runs; per run ${workerRates.map((x, i) => fmt(x / directRates[i], 2)).join(', ')})`);
  console.log(`load average during the run: ${os.loadavg().map((x) => fmt(x, 1)).join(' ')}`);
  console.log(`load-samples: ${labels.length} images in ${fmt(loadSeconds, 1)} s (${fmt(labels.length / loadSeconds, 0)} images/s); first infer incl. training ${fmt(trainSeconds, 1)} s`);
  console.log(`worker log: ${trained}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
