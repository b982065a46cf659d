/**
 * Creates a new analysis repository from `templates/analysis/` (shipped in the npm package).
 * Template files named `_gitignore` and `_npmrc` become `.gitignore` and `.npmrc`, because npm
 * leaves dotfiles of those names out of a package; `{{name}}` and `{{sdkDependency}}` are filled in.
 *
 * By default the new repository depends on a packed copy of the flame-sdk it was created with
 * (`vendor/flame-sdk-<version>.tgz`, `file:` dependency), so `npm install` and the container build
 * need no registry that has flame-sdk; `registry: true` depends on `^<version>` from a registry instead.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { BadRequestError, ConflictError, InternalError, NotFoundError } from '../errors.js';
import { packagePath } from '../package-root.js';

/** Options of {@link scaffoldAnalysis}. */
export interface ScaffoldOptions {
  /** npm package name of the new analysis, also its folder name. */
  name: string;
  /** Folder to create it in (default: the current directory). */
  parent?: string;
  /** Template folder (default: this package's `templates/analysis`). */
  templateDir?: string;
  /** flame-sdk version the new package depends on (default: this package's version). */
  sdkVersion?: string;
  /** Depend on `^version` from an npm registry instead of a packed copy in `vendor/` (default false). */
  registry?: boolean;
}

/** What {@link scaffoldAnalysis} created. */
export interface ScaffoldResult {
  dir: string;
  /** Created files, relative to `dir`, sorted. */
  files: string[];
  /** What the new package.json says for flame-sdk (`file:vendor/…` or `^version`). */
  sdkDependency: string;
}

/**
 * Drops what only a checkout needs from a packed tarball: the `prepare` script (it builds dist/; npm
 * runs it for a `file:` dependency, where dist/ is already built, and asks each user to approve it)
 * and the exports' `flame-source` condition (it names TypeScript sources the package does not ship).
 */
async function withoutCheckoutParts(tarball: string): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(path.dirname(tarball), '.unpack-'));
  try {
    await promisify(execFile)('tar', ['-xzf', tarball, '-C', tmp]);
    const file = path.join(tmp, 'package', 'package.json');
    const pkg = JSON.parse(await fs.readFile(file, 'utf8')) as { scripts?: Record<string, string>; exports?: Record<string, unknown> };
    if (pkg.scripts) delete pkg.scripts.prepare;
    for (const target of Object.values(pkg.exports ?? {})) {
      if (target !== null && typeof target === 'object') delete (target as Record<string, unknown>)['flame-source'];
    }
    await fs.writeFile(file, `${JSON.stringify(pkg, null, 2)}\n`);
    await promisify(execFile)('tar', ['-czf', tarball, '-C', tmp, 'package']);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Packs this package (as installed, or this repository with its built dist/) into `dest` without
 * running its scripts; returns the tarball's file name.
 */
async function packSdk(dest: string): Promise<string> {
  const root = packagePath();
  try {
    await fs.access(path.join(root, 'dist', 'src', 'index.js'));
  } catch {
    throw new NotFoundError(`flame-sdk at ${root} has no dist/ to pack (run npm run build there), or use --registry`);
  }
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
  try {
    const { stdout } = await promisify(execFile)('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], { cwd: root, env, maxBuffer: 64 * 1024 * 1024 });
    const [{ filename }] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[];
    await withoutCheckoutParts(path.join(dest, path.basename(filename)));
    return path.basename(filename);
  } catch (e) {
    throw new InternalError(`could not pack flame-sdk from ${root} for vendor/: ${(e as Error).message}`, { cause: e });
  }
}

/** Template file names that npm would drop from a package, and what they become. */
const RENAMES: Record<string, string> = { _gitignore: '.gitignore', _npmrc: '.npmrc' };

/** Files that must be executable in the new repository. */
const EXECUTABLE = new Set(['.ci/run']);

/** npm's rules for a package name without a scope: lowercase, URL-safe, not starting with '.' or '_'. */
const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,213}$/;

async function sdkVersionOf(): Promise<string> {
  const pkg = JSON.parse(await fs.readFile(packagePath('package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(dir, r)));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/**
 * Copies the template into `<parent>/<name>`. BadRequestError for a name npm would refuse,
 * ConflictError when the folder exists and is not empty.
 */
export async function scaffoldAnalysis(options: ScaffoldOptions): Promise<ScaffoldResult> {
  const { name } = options;
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new BadRequestError(`analysis name ${JSON.stringify(name)}: expected an npm package name (lowercase letters, digits, '-', '.', '_'; starting with a letter or digit)`);
  }
  const templateDir = options.templateDir ?? packagePath('templates', 'analysis');
  try {
    await fs.access(path.join(templateDir, 'package.json'));
  } catch {
    throw new NotFoundError(`template folder ${templateDir} has no package.json`);
  }
  const dir = path.resolve(options.parent ?? '.', name);
  const existing = await fs.readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw new BadRequestError(`cannot use ${dir}: ${e.message}`);
  });
  if (existing.length > 0) throw new ConflictError(`${dir} already exists and is not empty`);

  const version = options.sdkVersion ?? (await sdkVersionOf());
  const files: string[] = [];
  let sdkDependency = `^${version}`;
  if (!options.registry) {
    const vendor = path.join(dir, 'vendor');
    await fs.mkdir(vendor, { recursive: true });
    const tarball = await packSdk(vendor);
    sdkDependency = `file:vendor/${tarball}`;
    files.push(`vendor/${tarball}`);
  }
  const values: Record<string, string> = { name, sdkVersion: version, sdkDependency };
  for (const rel of await walk(templateDir)) {
    const base = path.posix.basename(rel);
    const target = path.posix.join(path.posix.dirname(rel), RENAMES[base] ?? base);
    const text = await fs.readFile(path.join(templateDir, rel), 'utf8');
    const filled = text.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => values[key] ?? whole);
    const out = path.join(dir, target);
    await fs.mkdir(path.dirname(out), { recursive: true });
    await fs.writeFile(out, filled, { mode: EXECUTABLE.has(target) ? 0o755 : 0o644 });
    files.push(target);
  }
  return { dir, files: files.sort(), sdkDependency };
}
