/**
 * `flame init` end to end: scaffold a repository, install this package into it from a real
 * `npm pack` tarball (whose `prepare` builds dist/), give it the dev tools by linking this repo's
 * node_modules (offline and fast; the template's devDependencies use the same ranges as this repo),
 * then run the new repository's own test, lint, type-check and build.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
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
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

test('a new analysis repository installs this package from npm pack and passes its own test, lint, type-check and build', async () => {
  const created = await runCli(['init', 'my-analysis', '--dir', tmp]);
  expect(created.code).toBe(0);
  const dir = path.join(tmp, 'my-analysis');
  expect(created.stdout).toContain(`created my-analysis in ${dir}`);
  for (const f of ['package.json', 'tsconfig.json', '.eslintrc.cjs', '.prettierrc.json', '.gitignore', '.npmrc', 'Dockerfile', '.ci/run', 'README.md', 'src/main.ts', 'test/main.test.ts']) {
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
  expect(pkg.dependencies['flame-sdk']).toBe(`^${ours.version}`);
  // linking our node_modules stands for installing the template's dev tools only if the ranges agree
  for (const [dep, range] of Object.entries(pkg.devDependencies)) expect([dep, ours.devDependencies[dep]]).toEqual([dep, range]);

  // install flame-sdk from a real tarball: npm pack runs `prepare` (tsc) and applies package.json "files"
  const packed = await npm(['pack', '--json', '--pack-destination', tmp], REPO_ROOT);
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string }[];
  const modules = path.join(dir, 'node_modules');
  await fs.mkdir(path.join(modules, 'flame-sdk'), { recursive: true });
  await exec('tar', ['-xzf', path.join(tmp, filename), '-C', path.join(modules, 'flame-sdk'), '--strip-components=1']);
  await expect(fs.access(path.join(modules, 'flame-sdk', 'dist', 'src', 'index.d.ts'))).resolves.toBeUndefined();
  await expect(fs.access(path.join(modules, 'flame-sdk', 'templates', 'analysis', '_gitignore'))).resolves.toBeUndefined();
  for (const entry of await fs.readdir(path.join(REPO_ROOT, 'node_modules'))) {
    if (entry === 'flame-sdk' || entry === '.package-lock.json') continue;
    await fs.symlink(path.join(REPO_ROOT, 'node_modules', entry), path.join(modules, entry));
  }

  const tested = await npm(['test'], dir);
  expect(tested.stdout).toMatch(/# pass 2/);
  expect(tested.stdout).toMatch(/# fail 0/);
  await npm(['run', 'lint'], dir);
  await npm(['run', 'typecheck'], dir);
  await npm(['run', 'build'], dir);
  await expect(fs.access(path.join(dir, 'dist', 'src', 'main.js'))).resolves.toBeUndefined();

  // the built module loads against the installed package, as the Dockerfile's `flame run dist/src/main.js` loads it
  const probe = "import('./dist/src/main.js').then((m) => console.log(JSON.stringify([typeof m.default.analyze, typeof m.default.aggregate])))";
  const loaded = await exec(process.execPath, ['--input-type=module', '-e', probe], { cwd: dir });
  expect(JSON.parse(loaded.stdout)).toEqual(['function', 'function']);

  // every subpath the package exports resolves to a module of the packed tarball
  const subpaths = "Promise.all(['flame-sdk', 'flame-sdk/jobs', 'flame-sdk/image-diagnosis', 'flame-sdk/image-cleaning'].map((p) => import(p).then((m) => Object.keys(m).length))).then((n) => console.log(JSON.stringify(n)))";
  const resolved = await exec(process.execPath, ['--input-type=module', '-e', subpaths], { cwd: dir, env: { ...process.env, DIAGNOSIS_OPTIONS: '' } });
  for (const count of JSON.parse(resolved.stdout) as number[]) expect(count).toBeGreaterThan(0);
}, 240000);

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
