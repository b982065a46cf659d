/** The CLI's conventions: --version, one-line usage errors with a hint, grouped help, an example per command, quiet EPIPE. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { commandsWithoutExamples } from '../../apps/cli/help.js';
import { buildProgram } from '../../apps/cli/program.js';
import { REPO_ROOT, runCli, TSX_LOADER } from './run-cli.js';

const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('--version and -V print the package version; a command\'s own --version option stays its own', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await runCli([flag]);
    expect([r.code, r.stdout]).toEqual([0, `${version}\n`]);
  }
  const sign = await runCli(['roster', 'sign', '--version', '2', '--aggregator', 'agg', 'token'], { FLAME_ANALYSIS_ID: '' });
  expect(sign.stdout).not.toContain(version);
  expect(sign.code).not.toBe(0);
});

test('a usage error is one line and a hint, with exit code 2, not the whole help', async () => {
  for (const args of [['bogus'], ['run'], ['diagnose', '--no-such-flag']]) {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[1]).toMatch(/flame <command> --help/);
    expect(r.stderr).not.toContain('Usage:');
  }
});

test('the help groups the commands, lists the exit codes, and every command has an example', async () => {
  const r = await runCli(['--help']);
  expect(r.code).toBe(0);
  for (const heading of ['Try it and analyse on this machine:', 'Run on a node of a federation:', 'Set up a federation (operators):', 'Write an analysis:', 'Interfaces for other programs:']) {
    expect(r.stdout).toContain(heading);
  }
  expect(r.stdout).not.toMatch(/^Commands:/m);
  expect(r.stdout).toMatch(/Exit codes: 0 success, .*2 bad request.*7 excluded.*130 interrupted/);
  expect(commandsWithoutExamples(buildProgram())).toEqual([]);
  const help = await runCli(['datasets', 'upload', '--help']);
  expect(help.stdout).toMatch(/Examples:\n {2}\$ flame datasets upload /);
});

test('output cut short by the reader (flame --help | head -1) ends quietly', () => {
  const r = spawnSync('sh', ['-c', `"${process.execPath}" --import "${TSX_LOADER}" "${path.join(REPO_ROOT, 'apps/cli/main.ts')}" --help | head -1`], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  expect(r.stdout).toMatch(/^Usage: flame/);
  expect(r.stderr).not.toMatch(/EPIPE|Unhandled/);
});
