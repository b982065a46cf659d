/**
 * Node processes for the chaos tests: `flame run` from the compiled package (what a container runs),
 * started, killed with SIGKILL and started again. The build is brought up to date first, so the
 * processes run the code under test.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve('.');
const CLI = path.join(ROOT, 'dist/apps/cli/main.js');

function newest(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? fs.statSync(p).mtimeMs : 0);
  }
  return t;
}

/** Compiles src/ and analyses/ into dist/ when dist/ is older than them (npm ci builds it once). */
export function ensureBuilt(): void {
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
  const sources = Math.max(...['src', 'analyses', 'apps'].map((d) => newest(path.join(ROOT, d))));
  if (built >= sources && fs.existsSync(CLI)) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  // tsc leaves an unchanged file's mtime alone: mark the build as current.
  const now = new Date();
  fs.utimesSync(CLI, now, now);
}

/** A `flame run` process and what it printed. */
export interface NodeProcess {
  name: string;
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (null when killed) once the process ended. */
  exited: Promise<number | null>;
  /** True once it was killed. */
  killed: boolean;
}

/** Starts `flame run <module> ...args` with `env` (over a minimal environment). */
export function startNode(name: string, module: string, args: string[], env: Record<string, string>): NodeProcess {
  const child = spawn(process.execPath, [CLI, 'run', module, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: NodeProcess = { name, child, stdout: '', stderr: '', killed: false, exited: Promise.resolve(null) };
  child.stdout!.on('data', (c: Buffer) => (p.stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (p.stderr += c.toString()));
  p.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  return p;
}

/** SIGKILL: no shutdown, no flush, no goodbye. */
export async function killHard(p: NodeProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.killed = true;
  p.child.kill('SIGKILL');
  await p.exited;
}

/** The JSON line `flame run` prints at the end. */
export function outcomeOf(p: NodeProcess): Record<string, unknown> | undefined {
  const line = p.stdout.trim().split('\n').filter(Boolean).pop();
  if (!line) return undefined;
  try {
    return JSON.parse(p.stdout) as Record<string, unknown>;
  } catch {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }
}
