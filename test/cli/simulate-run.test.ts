/** `flame simulate run FILE --node id=DIR …`: a user's own analysis over simulated nodes, from the CLI. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from './run-cli.js';

const example = (n: string) => path.resolve('data/example', n);
const ages = (n: string) => readFileSync(path.join(example(n), 'ages.csv'), 'utf8').trim().split('\n').slice(1).map(Number);

test('the federated mean over two simulated nodes equals the pooled mean of their files', async () => {
  const run = await runCli(['simulate', 'run', path.resolve('analyses/federated-mean/index.ts'), '--node', `a=${example('node-a')}`, '--node', `b=${example('node-b')}`, '--min-count', '1']);
  expect(run.code).toBe(0);
  const out = JSON.parse(run.stdout) as { contributors: string[]; result: { count: number; mean: number } };
  const pooled = [...ages('node-a'), ...ages('node-b')];
  expect(out.contributors.sort()).toEqual(['a', 'b']);
  expect(out.result.count).toBe(pooled.length);
  expect(out.result.mean).toBeCloseTo(pooled.reduce((x, y) => x + y, 0) / pooled.length, 9);
}, 60_000);

test('a bad --node or a module without an analysis is a usage error naming it', async () => {
  const bad = await runCli(['simulate', 'run', 'x.js', '--node', 'just-a-dir']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--node "just-a-dir": expected ID=DIR/);
  const notAnalysis = await runCli(['simulate', 'run', path.resolve('apps/cli/output.ts'), '--node', `a=${example('node-a')}`]);
  expect(notAnalysis.code).toBe(2);
  expect(notAnalysis.stderr).toMatch(/output\.ts: export "default" is not an analysis/);
}, 60_000);
