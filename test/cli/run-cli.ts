/**
 * Runs the `flame` CLI from source in a child process (as a user would), capturing its output and exit
 * code. tsx is loaded by absolute URL, so the CLI can run from any working directory (a temporary one
 * keeps whatever a command writes out of the repository).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Root of this repository. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** tsx's ESM loader as a file URL, for `node --import` from any working directory. */
export const TSX_LOADER = pathToFileURL(path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

/** What one CLI run printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `flame ...args` with `env` added to this process's environment (FLAME_* from the test process are dropped; Node's own warnings are off unless `env` sets NODE_NO_WARNINGS). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd: string = REPO_ROOT): Promise<CliRun> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLAME_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, path.join(REPO_ROOT, 'apps', 'cli', 'main.ts'), ...args], {
      cwd,
      env: { ...base, NODE_NO_WARNINGS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
