/**
 * Child processes whose cost is measured by the kernel, for the resource-exhaustion tests: each runs
 * under GNU time (`/usr/bin/time -f %M`, the peak resident set size), and a watchdog kills it when
 * its RSS passes a ceiling or its time runs out, so an attack that works on the code under test fails
 * the test with a figure instead of exhausting the machine.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WorkerClient } from '../../apps/protocol/client.js';

/** Root of this repository. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSX_LOADER = pathToFileURL(path.join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const CLI = path.join(REPO, 'apps', 'cli', 'main.ts');

/** One MiB. */
export const MiB = 1024 * 1024;

/** How a measured run ended. */
export interface MeasuredRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak resident set size of the child, in bytes (from GNU time). */
  peakRss: number;
  elapsedMs: number;
  /** Set when the watchdog killed the child: why. */
  killed?: string;
}

/** Ceilings of the watchdog. */
export interface Watch {
  /** Kill the child when its RSS passes this many bytes (default 1.5 GiB). */
  rssLimit?: number;
  /** Kill the child after this many ms (default 120 s). */
  timeoutMs?: number;
}

/** The environment of a child: this one's without FLAME_* (so the tests set their own), plus `env`. */
function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLAME_')));
  return { ...base, ...env, NODE_NO_WARNINGS: '1' };
}

/** `node --import tsx <file> args…` under GNU time (the package's names resolving to its sources, as under npm): the command and its arguments. */
function timed(statsFile: string, file: string, args: readonly string[]): [string, string[]] {
  return ['/usr/bin/time', ['-f', '%M', '-o', statsFile, process.execPath, '--conditions=flame-source', '--import', TSX_LOADER, file, ...args]];
}

/** The peak RSS GNU time wrote (KiB on its last line), in bytes. */
function readPeak(statsFile: string): number {
  const lines = readFileSync(statsFile, 'utf8').trim().split('\n');
  return Number(lines[lines.length - 1]) * 1024;
}

/** The RSS of a process in bytes, or undefined once it is gone. */
function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The node process GNU time started (its only child). */
function childOf(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Watches the process GNU time (`timePid`) started: kills it when its RSS passes the ceiling or
 * time runs out. Returns a stop function and the reason, once it killed.
 */
function watchdog(timePid: number, watch: Watch): { stop: () => void; reason: () => string | undefined } {
  const rssLimit = watch.rssLimit ?? 1536 * MiB;
  const deadline = Date.now() + (watch.timeoutMs ?? 120_000);
  let reason: string | undefined;
  const kill = (why: string): void => {
    reason ??= why;
    const pid = childOf(timePid);
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  };
  const timer = setInterval(() => {
    const pid = childOf(timePid);
    const rss = pid === undefined ? undefined : rssOf(pid);
    if (rss !== undefined && rss > rssLimit) kill(`RSS ${Math.round(rss / MiB)} MiB passed the ${Math.round(rssLimit / MiB)} MiB ceiling`);
    else if (Date.now() > deadline) kill(`still running after ${watch.timeoutMs ?? 120_000} ms`);
  }, 25);
  return { stop: () => clearInterval(timer), reason: () => reason };
}

/** A temporary file for GNU time's figures. */
function statsFile(): string {
  return path.join(mkdtempSync(path.join(os.tmpdir(), 'flame-rss-')), 'time.txt');
}

/** Runs `node --import tsx <script> args…` (the CLI by default) measured and watched. */
export function runMeasured(args: readonly string[], options: Watch & { env?: NodeJS.ProcessEnv; cwd?: string; script?: string } = {}): Promise<MeasuredRun> {
  const stats = statsFile();
  const [command, argv] = timed(stats, options.script ?? CLI, args);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: options.cwd ?? REPO, env: childEnv(options.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    const dog = watchdog(child.pid!, options);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      dog.stop();
      const killed = dog.reason();
      resolve({ code, stdout, stderr, peakRss: readPeak(stats), elapsedMs: Date.now() - started, ...(killed ? { killed } : {}) });
    });
  });
}

/** A `flame worker` under GNU time and the watchdog; {@link MeasuredWorker.finish} closes it and reads its peak RSS. */
export interface MeasuredWorker {
  client: WorkerClient;
  /** Closes stdin, waits for the exit, and returns the exit code, peak RSS and the watchdog's reason. */
  finish(): Promise<{ code: number | null; peakRss: number; killed?: string }>;
}

/** Starts `flame worker <args>` measured and watched, in a fresh temporary working directory. */
export function measuredWorker(args: readonly string[], options: Watch & { env?: NodeJS.ProcessEnv } = {}): MeasuredWorker {
  const stats = statsFile();
  const [command, argv] = timed(stats, CLI, ['worker', ...args]);
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'flame-worker-cwd-'));
  const client = WorkerClient.spawn(command, argv, { cwd, env: childEnv(options.env ?? {}) });
  const dog = watchdog(client.pid!, options);
  return {
    client,
    async finish() {
      const code = await client.close(60_000);
      dog.stop();
      const killed = dog.reason();
      return { code, peakRss: readPeak(stats), ...(killed ? { killed } : {}) };
    },
  };
}

/** Bytes as MiB with one decimal, for the figures the tests print. */
export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
