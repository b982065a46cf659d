/** The README's 20-line example is real code: extract it, point its import at this package, run it. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

test('the README example runs on one node and prints the mean of its CSV', async () => {
  const readme = await readFile('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('## A federated analysis in 20 lines'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)![1];
  expect(code.split('\n').filter((l) => l.trim() !== '').length).toBeLessThanOrEqual(25);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flame-readme-'));
  try {
    const file = path.join(dir, 'example.mts'); // ESM: the example uses top-level await
    const index = pathToFileURL(path.resolve('src/index.ts')).href;
    await writeFile(file, code.replace("from 'flame-sdk'", `from '${index}'`) + '\nconsole.log(JSON.stringify(result));\n');
    const tsx = pathToFileURL(path.resolve('node_modules/tsx/dist/loader.mjs')).href;
    const { stdout } = await run(process.execPath, ['--import', tsx, file], {
      cwd: dir,
      env: {
        ...process.env,
        FLAME_LOG_LEVEL: 'silent',
        FLAME_DATA_SOURCES: JSON.stringify([{ id: 'values', type: 'folder', path: path.resolve('data/example/node-a') }]),
      },
    });
    const csv = (await readFile('data/example/node-a/ages.csv', 'utf8')).split('\n').slice(1).filter(Boolean).map(Number);
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result.count).toBe(csv.length);
    expect(result.mean).toBeCloseTo(csv.reduce((a, b) => a + b, 0) / csv.length, 10);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);
