/**
 * Shared by the protocol tests: a real `flame worker` child process, and images made with sharp
 * whose class is obvious (horizontal vs vertical stripes, dark vs bright).
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { WorkerClient, type WorkerClientOptions } from '../../apps/protocol/client.js';
import { SeededRandom } from '../../src/ml/random.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Starts `flame worker <args>` from the sources (node --import tsx). */
/** tsx's loader by absolute URL, so the worker can run from any working directory. */
const TSX_LOADER = pathToFileURL(path.join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;

/**
 * Starts `flame worker` in a fresh temporary working directory, so relative paths the tests (or the
 * fuzzer) send can never write into the repository.
 */
export function spawnWorker(args: readonly string[], options: WorkerClientOptions = {}): WorkerClient {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'flame-worker-cwd-'));
  return WorkerClient.spawn(process.execPath, ['--import', TSX_LOADER, path.join(REPO, 'apps/cli/main.ts'), 'worker', ...args], { cwd, ...options });
}

/** A fresh temporary directory. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Uniform numbers in [0, 1) from a seed (the SDK's mulberry32), so test data and fuzz input repeat exactly. */
export function seeded(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

/** Grey stripes with a random period, phase and contrast, plus noise: `h` horizontal, `v` vertical. */
export async function writeStripes(file: string, orientation: 'h' | 'v', rand: () => number, size = 24): Promise<void> {
  const period = 3 + Math.floor(rand() * 4);
  const phase = Math.floor(rand() * period);
  const low = 20 + rand() * 60;
  const high = 170 + rand() * 70;
  const px = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = orientation === 'h' ? y : x;
      const on = (t + phase) % period < period / 2;
      px[y * size + x] = Math.max(0, Math.min(255, Math.round((on ? high : low) + (rand() - 0.5) * 30)));
    }
  }
  await sharp(px, { raw: { width: size, height: size, channels: 1 } }).png().toFile(file);
}

/** A flat RGB image around `level` (0–255) with some noise. */
export async function writeFlat(file: string, level: number, rand: () => number, size = 16): Promise<void> {
  const px = Buffer.alloc(size * size * 3);
  for (let i = 0; i < px.length; i++) px[i] = Math.max(0, Math.min(255, Math.round(level + (rand() - 0.5) * 40)));
  await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toFile(file);
}

/** Writes `count` stripe images of each orientation under `dir/h` and `dir/v`; returns the folders. */
export async function writeStripeSet(dir: string, count: number, seed: number): Promise<{ h: string; v: string }> {
  const rand = seeded(seed);
  const out = { h: path.join(dir, 'h'), v: path.join(dir, 'v') };
  for (const o of ['h', 'v'] as const) {
    await mkdir(out[o], { recursive: true });
    for (let i = 0; i < count; i++) await writeStripes(path.join(out[o], `${o}${String(i).padStart(3, '0')}.png`), o, rand);
  }
  return out;
}

/** A file with a .png name that is not an image. */
export async function writeCorruptPng(file: string): Promise<void> {
  await writeFile(file, 'this is not a PNG file');
}

/**
 * The worker's stderr once it matches `pattern` (or after `timeoutMs`, for the assertion to show it):
 * stderr and stdout are separate pipes, so a log line may arrive after the packet it goes with.
 */
export async function stderrWhen(worker: { stderr: string }, pattern: string | RegExp, timeoutMs = 5000): Promise<string> {
  const matches = () => (typeof pattern === 'string' ? worker.stderr.includes(pattern) : pattern.test(worker.stderr));
  const deadline = Date.now() + timeoutMs;
  while (!matches() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return worker.stderr;
}
