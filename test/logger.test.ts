/** Logs: JSON lines for machines, readable lines for a person at a terminal. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLogger, logFormat, prettyLogLine } from '../src/logger.js';

test('the format is FLAME_LOG_FORMAT, else readable on a terminal and JSON lines otherwise', () => {
  expect(logFormat({}, true)).toBe('pretty');
  expect(logFormat({}, false)).toBe('json');
  expect(logFormat({ FLAME_LOG_FORMAT: 'json' }, true)).toBe('json');
  expect(logFormat({ FLAME_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
});

test('a readable line has the clock, the level, the node, the message and the fields', () => {
  const lines: string[] = [];
  createLogger('info', { node: 'node-a', analysis: 'a1' }, (l) => lines.push(l)).warn('heartbeat failed', { error: new Error('no route'), attempt: 2 });
  expect(JSON.parse(lines[0])).toMatchObject({ level: 'warn', msg: 'heartbeat failed', node: 'node-a', error: 'no route', attempt: 2 });
  expect(prettyLogLine(lines[0])).toMatch(/^\d\d:\d\d:\d\d WARN {2}\[node-a\] heartbeat failed error="no route" attempt=2$/);
  expect(prettyLogLine('not json')).toBe('not json');
});

test('the default sink writes what FLAME_LOG_FORMAT asks for', () => {
  const tsx = pathToFileURL(path.resolve('node_modules/tsx/dist/loader.mjs')).href;
  const code = `import { createLogger } from ${JSON.stringify(pathToFileURL(path.resolve('src/logger.ts')).href)}; createLogger('info', { node: 'n' }).info('hello', { k: 1 });`;
  const run = (format: string) => spawnSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, FLAME_LOG_FORMAT: format, NODE_NO_WARNINGS: '1' } }).stderr.trim();
  expect(JSON.parse(run('json'))).toMatchObject({ msg: 'hello', node: 'n', k: 1 });
  expect(run('pretty')).toMatch(/^\d\d:\d\d:\d\d info {2}\[n\] hello k=1$/);
});
