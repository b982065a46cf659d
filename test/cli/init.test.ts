/**
 * `flame init` end to end: scaffold a repository (with flame-sdk packed into its vendor/ folder, as
 * a user gets it), install it with a real `npm install` — flame-sdk from the tarball, which no
 * registry has; the dev tools from the npm registry — then run the new repository's own test, lint,
 * type-check and build, and load every entry point of the package.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureBuilt } from '../chaos/node-process.js';
import { REPO_ROOT, runCli } from './run-cli.js';

const exec = promisify(execFile);
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-init-'));
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

async function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLAME_') && !k.startsWith('npm_')));
  try {
    return await exec('npm', args, { cwd, env: { ...env, NODE_NO_WARNINGS: '1' }, maxBuffer: 32 * 1024 * 1024 });
  } catch (e) {
    const err = e as Error & { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`, { cause: e });
  }
}

test('a new analysis repository installs flame-sdk from its vendor/ copy and passes its own test, lint, type-check and build', async () => {
  // The scaffold packs the package as built: bring dist/ up to date first (a no-op after npm ci's
  // prepare; never a rebuild under the chaos tests' running node processes when nothing changed).
  ensureBuilt();
  const created = await runCli(['init', 'my-analysis', '--dir', tmp]);
  expect(created.code).toBe(0);
  const dir = path.join(tmp, 'my-analysis');
  expect(created.stdout).toContain(`created my-analysis in ${dir}`);
  for (const f of ['package.json', 'tsconfig.json', 'eslint.config.js', '.prettierrc.json', '.gitignore', '.npmrc', 'Dockerfile', '.ci/run', 'README.md', 'src/main.ts', 'test/main.test.ts', 'vendor/README.md']) {
    await expect(fs.access(path.join(dir, f))).resolves.toBeUndefined();
  }
  expect((await fs.stat(path.join(dir, '.ci', 'run'))).mode & 0o111).toBe(0o111);
  const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as {
    name: string;
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  const ours = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
  expect(pkg.name).toBe('my-analysis');
  expect(pkg.dependencies['flame-sdk']).toBe(`file:vendor/flame-sdk-${ours.version}.tgz`);
  for (const [dep, range] of Object.entries(pkg.devDependencies)) expect([dep, ours.devDependencies[dep]]).toEqual([dep, range]);
  // The Dockerfile copies vendor/ before it installs.
  expect(await fs.readFile(path.join(dir, 'Dockerfile'), 'utf8')).toMatch(/COPY vendor \.\/vendor\nRUN npm ci/);

  const installed = await npm(['install'], dir);
  expect(`${installed.stdout}${installed.stderr}`).not.toMatch(/npm warn/i);
  const lock = JSON.parse(await fs.readFile(path.join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string; version?: string }> };
  expect(lock.packages['node_modules/flame-sdk'].resolved).toBe(`file:vendor/flame-sdk-${ours.version}.tgz`);
  const modules = path.join(dir, 'node_modules');
  await expect(fs.access(path.join(modules, 'flame-sdk', 'dist', 'src', 'index.d.ts'))).resolves.toBeUndefined();
  await expect(fs.access(path.join(modules, 'flame-sdk', 'templates', 'analysis', '_gitignore'))).resolves.toBeUndefined();

  const tested = await npm(['test'], dir);
  // node's test runner: TAP lines (Node 20 off a terminal) or its spec reporter's (Node 24)
  expect(tested.stdout).toMatch(/^[#ℹ] pass 2$/m);
  expect(tested.stdout).toMatch(/^[#ℹ] fail 0$/m);
  await npm(['run', 'lint'], dir);
  await npm(['run', 'typecheck'], dir);
  await npm(['run', 'build'], dir);
  await expect(fs.access(path.join(dir, 'dist', 'src', 'main.js'))).resolves.toBeUndefined();

  // the built module loads against the installed package, as the Dockerfile's `flame run dist/src/main.js` loads it
  const probe = "import('./dist/src/main.js').then((m) => console.log(JSON.stringify([typeof m.default.analyze, typeof m.default.aggregate])))";
  const loaded = await exec(process.execPath, ['--input-type=module', '-e', probe], { cwd: dir });
  expect(JSON.parse(loaded.stdout)).toEqual(['function', 'function']);

  // the packed copy has no flame-source condition (it names sources a package does not ship), so a
  // process started with it, as npm scripts of a flame-sdk checkout start theirs, still loads dist/
  const vendored = JSON.parse(await fs.readFile(path.join(modules, 'flame-sdk', 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  expect(JSON.stringify(vendored.exports)).not.toMatch(/flame-source/);

  // every subpath the package exports resolves to a module of the packed tarball
  const subpaths = "Promise.all(['flame-sdk', 'flame-sdk/images', 'flame-sdk/ml', 'flame-sdk/testing', 'flame-sdk/jobs', 'flame-sdk/image-diagnosis', 'flame-sdk/image-cleaning'].map((p) => import(p).then((m) => Object.keys(m).length))).then((n) => console.log(JSON.stringify(n)))";
  const resolved = await exec(process.execPath, ['--input-type=module', '-e', subpaths], { cwd: dir, env: { ...process.env, DIAGNOSIS_OPTIONS: '', NODE_OPTIONS: '--conditions=flame-source' } });
  for (const count of JSON.parse(resolved.stdout) as number[]) expect(count).toBeGreaterThan(0);
}, 400_000);

test('refuses a bad name and a non-empty folder', async () => {
  const bad = await runCli(['init', 'Bad Name', '--dir', tmp]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/analysis name "Bad Name"/);
  await fs.mkdir(path.join(tmp, 'taken'));
  await fs.writeFile(path.join(tmp, 'taken', 'x'), '');
  const taken = await runCli(['init', 'taken', '--dir', tmp]);
  expect(taken.code).toBe(5);
  expect(taken.stderr).toMatch(/taken already exists and is not empty/);
}, 30000);

test('--registry depends on the registry version instead of a packed copy', async () => {
  const created = await runCli(['init', 'from-registry', '--dir', tmp, '--registry']);
  expect(created.code).toBe(0);
  const dir = path.join(tmp, 'from-registry');
  const ours = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  expect(pkg.dependencies['flame-sdk']).toBe(`^${ours.version}`);
  expect((await fs.readdir(path.join(dir, 'vendor'))).filter((f) => f.endsWith('.tgz'))).toEqual([]);
}, 60_000);
