/**
 * The progress bar on a real terminal: `flame simulate diagnose` run under `script` (util-linux), which
 * gives it a pseudo-terminal, as a person at a terminal runs it. The bar is redrawn in place on its own
 * line; the banner stays above it and the table starts on a fresh line below it, never inside it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, TSX_LOADER } from './run-cli.js';

const exec = promisify(execFile);
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

test('on a TTY: one bar redrawn in place, the banner above it and the table below it on lines of their own', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-tty-'));
  try {
    const sample = (n: string): string => path.join(REPO_ROOT, 'data', 'sample', n);
    const cli = [process.execPath, '--import', TSX_LOADER, path.join(REPO_ROOT, 'apps', 'cli', 'main.ts'), 'simulate', 'diagnose', '--node', `a=${sample('node-a')}`, '--node', `b=${sample('node-b')}`, '--tasks', 'lighting_conditions'];
    const typescript = path.join(dir, 'typescript');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLAME_')));
    // -e: script exits with the command's code; -f: flush as it goes; the transcript holds every byte the terminal got.
    await exec('script', ['-qefc', cli.map(quote).join(' '), typescript], { cwd: dir, env: { ...env, NODE_NO_WARNINGS: '1', TERM: 'xterm' }, timeout: 90_000 });
    const raw = await fs.readFile(typescript, 'utf8');
    const out = raw.slice(raw.indexOf('\n') + 1, raw.lastIndexOf('\nScript done')); // script's own header and footer lines
    const renders = [...out.matchAll(/diagnosis \[[█░]+\] (\d+)% \| (\w+)/g)];
    expect(renders.length).toBeGreaterThanOrEqual(3);
    expect(renders.map((r) => Number(r[1]))).toEqual([...renders.map((r) => Number(r[1]))].sort((x, y) => x - y));
    expect(renders[renders.length - 1].slice(1)).toEqual(['100', 'done']);
    const first = renders[0].index!;
    const last = renders[renders.length - 1].index!;
    // The banner is a line of its own before the bar, and the bar is redrawn in place: no line break between renders.
    expect(out.slice(0, first)).toMatch(/^Simulating 2 nodes \+ aggregator with the embedded broker and storage…\r\n/);
    expect(out.slice(first, last)).not.toMatch(/\n/);
    // No plain progress lines (those are for pipes), and the table begins on a fresh line after the last render.
    expect(out).not.toMatch(/^(load|features|pca|done) \d+%/m);
    const table = out.indexOf('task ');
    expect(table).toBeGreaterThan(last);
    expect(out.slice(last, table)).toMatch(/\r?\n$/);
    expect(out.slice(table)).toMatch(/^task\s+node\s+class\s+outliers\s+files\r\n/);
    expect(out.slice(table)).not.toMatch(/diagnosis \[/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}, 120_000);
