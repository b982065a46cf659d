/**
 * Writing a cleaned copy of a dataset: the kept and the corrected images copied into class
 * sub-folders of a new folder (relabelled ones into their new class), plus a `manifest.json`. The
 * source files are only read: nothing is deleted, moved or overwritten.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { BadRequestError, ConflictError, NotFoundError } from '../../src/errors.js';
import { classFolderName, parseIdxPath, readIdx } from '../../src/images/index.js';
import type { ClassFiles, CleaningResponse, Dataset, DatasetFile } from '../../src/images/types.js';
import { sourcePath } from './clean.js';
import { buildDataset } from './pooled.js';
import { validateDataset } from './request.js';

/** Name of the manifest written beside the class folders. */
export const MANIFEST_FILE = 'manifest.json';

/** One image of the cleaned copy. */
export interface ManifestFile {
  /** Path of the copy, relative to the output folder (`Coat/12.png`). */
  path: string;
  /** The source file's key (its path, or an IDX virtual path `images.idx#12`). */
  source: string;
  uuid: string;
  /** The class it is filed under in the copy. */
  class: string;
  /** The class it had in the source. */
  original_class: string;
  action: 'kept' | 'corrected';
}

/** `manifest.json`: what was copied where, what was left out, and the copy as a seed-000 dataset. */
export interface CleaningManifest {
  dataset_uuid: string;
  counts: { source: number; kept: number; corrected: number; removed: number; not_in_source: number };
  files: ManifestFile[];
  /** Source files not copied (the cleaning removed them). */
  removed: Array<{ source: string; uuid: string; class: string }>;
  /** Files of the cleaning response that the source does not hold (e.g. another node's). */
  not_in_source: Array<{ key: string; uuid: string }>;
  /** The copy: keys are the absolute paths of the copies, mean/std pooled over them. */
  dataset: Dataset;
}

/** What {@link applyCleaning} returns. */
export interface ApplyResult {
  outDir: string;
  manifestPath: string;
  manifest: CleaningManifest;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** `p` with symbolic links resolved, also when its last parts do not exist yet. */
async function realPathLoose(p: string): Promise<string> {
  const abs = resolve(p);
  let head = abs;
  const tail: string[] = [];
  while (!(await exists(head))) {
    const up = dirname(head);
    if (up === head) break;
    tail.unshift(basename(head));
    head = up;
  }
  return join(await realpath(head).catch(() => head), ...tail);
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}

/** A source file's bytes on disk, or an image of an IDX file to encode. */
type Source = { kind: 'file'; path: string } | { kind: 'idx'; file: string; index: number };

async function locate(key: string): Promise<Source> {
  const abs = resolve(key);
  const info = await stat(abs).catch(() => undefined);
  if (info?.isFile()) return { kind: 'file', path: abs };
  const idx = parseIdxPath(key);
  if (idx && (await stat(resolve(idx.file)).catch(() => undefined))?.isFile()) return { kind: 'idx', file: resolve(idx.file), index: idx.index };
  throw new NotFoundError(`Source file ${key} does not exist (or is not a file): cannot copy it`);
}

/**
 * The folder a source file's dataset lives in: the parent of its class folder (`root` of
 * `root/<class>/x.png`), or the folder of an IDX file.
 */
async function sourceRoot(src: Source): Promise<string> {
  const real = await realPathLoose(src.kind === 'file' ? src.path : src.file);
  return src.kind === 'file' ? dirname(dirname(real)) : dirname(real);
}

async function checkOutDir(outDir: string, roots: Set<string>): Promise<string> {
  const real = await realPathLoose(outDir);
  for (const root of roots) {
    if (isInside(real, root)) {
      throw new BadRequestError(`Output folder ${outDir} is inside the source folder ${root}: choose a folder outside the dataset`);
    }
  }
  const info = await stat(real).catch(() => undefined);
  if (info && !info.isDirectory()) throw new BadRequestError(`Output folder ${outDir} exists and is not a folder`);
  if (info && (await readdir(real)).length > 0) throw new ConflictError(`Output folder ${outDir} is not empty: give a new or empty folder`);
  return real;
}

function indexResponse(ds: Dataset, where: string): Map<string, { key: string; cls: string; file: DatasetFile }> {
  const out = new Map<string, { key: string; cls: string; file: DatasetFile }>();
  for (const [cls, files] of Object.entries(validateDataset(ds, where).class_files)) {
    for (const [key, file] of Object.entries(files)) out.set(file.uuid, { key, cls, file });
  }
  return out;
}

/**
 * Write the cleaned copy of `sourceDataset` into `outDir`: every source file the cleaning did not
 * remove is copied to `outDir/<class>/<file name>` — corrected files into the folder of their new
 * class (`current_class`) — and `manifest.json` lists each copy, each removed file and the copy as a
 * seed-000 dataset. Response files are matched to source files by `uuid`, else by resolved path (a
 * file's `path` field, else its key).
 * Kept files are copied first; a file whose name is taken in its class folder (a relabelled file
 * meeting a namesake, or namesakes from two source folders) gets the first 8 characters of its uuid
 * appended to its name. Images held in IDX files (virtual paths `file#index`) are written as PNGs.
 *
 * Nothing is written until every check passed; source files are only read.
 * @param sourceDataset the dataset that was diagnosed, keyed by readable paths (e.g. from
 *   `datasetFromFolder`, or `requestSource` of the cleaning request)
 * @throws BadRequestError if `outDir` is inside a source folder (the parent of a class folder) or is
 *   a file; ConflictError if it is not empty; NotFoundError if a source file to copy is missing;
 *   BadRequestError if no file of a non-empty response is in the source (another dataset)
 */
export async function applyCleaning(response: CleaningResponse, sourceDataset: Dataset, outDir: string): Promise<ApplyResult> {
  const source = validateDataset(sourceDataset, 'source dataset');
  const corrected = indexResponse(response.corrected, 'response.corrected');
  const removed = indexResponse(response.removed, 'response.removed');
  const byPath = new Map<string, string>();
  for (const m of [corrected, removed]) for (const [uuid, r] of m) byPath.set(resolve(sourcePath(r.key, r.file)), uuid);

  type Planned = { key: string; uuid: string; from: string; to: string; file: DatasetFile; action: 'kept' | 'corrected' | 'removed'; src?: Source };
  const planned: Planned[] = [];
  const matched = new Set<string>();
  for (const from of source.classes) {
    const files = source.class_files[from] ?? {};
    for (const key of Object.keys(files).sort()) {
      const file = files[key];
      const id = corrected.has(file.uuid) || removed.has(file.uuid) ? file.uuid : byPath.get(resolve(key));
      if (id !== undefined) matched.add(id);
      const fix = id === undefined ? undefined : corrected.get(id);
      const action = id !== undefined && removed.has(id) ? 'removed' : fix ? 'corrected' : 'kept';
      const to = action === 'corrected' ? (fix!.file.current_class ?? fix!.cls) : from;
      planned.push({ key, uuid: file.uuid, from, to, file, action });
    }
  }
  const notInSource = [...corrected, ...removed].filter(([uuid]) => !matched.has(uuid)).map(([uuid, r]) => ({ key: r.key, uuid }));
  if (corrected.size + removed.size > 0 && matched.size === 0 && planned.length > 0) {
    throw new BadRequestError('None of the cleaning response\'s files is in the source dataset (by uuid or path): is it the dataset that was diagnosed?');
  }

  // kept files first, so a relabelled file never takes the name of a file already in its new class
  const copies = [...planned.filter((p) => p.action === 'kept'), ...planned.filter((p) => p.action === 'corrected')];
  const roots = new Set<string>();
  for (const p of copies) {
    p.src = await locate(p.key);
    roots.add(await sourceRoot(p.src));
  }
  const out = await checkOutDir(outDir, roots);

  const classes = [...source.classes];
  for (const p of copies) if (!classes.includes(p.to)) classes.push(p.to);
  const taken = new Set<string>();
  const files: ManifestFile[] = [];
  const copyFiles: Record<string, ClassFiles> = {};
  await mkdir(out, { recursive: true });
  for (const c of classes) await mkdir(join(out, classFolderName(c)), { recursive: true });
  const idxCache = new Map<string, Awaited<ReturnType<typeof readIdx>>>();
  for (const p of copies) {
    const src = p.src!;
    let name = src.kind === 'file' ? basename(src.path) : `${basename(src.file)}-${src.index}.png`;
    let rel = join(classFolderName(p.to), name);
    if (taken.has(rel)) {
      const ext = extname(name);
      name = `${name.slice(0, name.length - ext.length)}-${p.uuid.slice(0, 8)}${ext}`;
      rel = join(classFolderName(p.to), name);
    }
    taken.add(rel);
    const dest = join(out, rel);
    if (src.kind === 'file') {
      await copyFile(src.path, dest, constants.COPYFILE_EXCL);
    } else {
      let idx = idxCache.get(src.file);
      if (!idx) idxCache.set(src.file, (idx = await readIdx(src.file)));
      const [count, rows, cols] = idx.dims;
      if (idx.dims.length !== 3 || src.index >= count) throw new NotFoundError(`Source file ${p.key}: ${src.file} has no image ${src.index}`);
      const px = Uint8Array.from(idx.data.subarray(src.index * rows * cols, (src.index + 1) * rows * cols));
      await sharp(px, { raw: { width: cols, height: rows, channels: 1 } }).toColourspace('b-w').png().toFile(dest);
    }
    const action = p.action === 'corrected' ? 'corrected' : 'kept';
    files.push({ path: rel.split(sep).join('/'), source: p.key, uuid: p.uuid, class: p.to, original_class: p.from, action });
    const entry: DatasetFile = { ...p.file, current_class: p.to, original_class: p.from };
    (copyFiles[p.to] ??= {})[dest] = entry;
  }
  const manifest: CleaningManifest = {
    dataset_uuid: response.dataset_uuid,
    counts: {
      source: planned.length,
      kept: files.filter((f) => f.action === 'kept').length,
      corrected: files.filter((f) => f.action === 'corrected').length,
      removed: planned.length - copies.length,
      not_in_source: notInSource.length,
    },
    files,
    removed: planned.filter((p) => p.action === 'removed').map((p) => ({ source: p.key, uuid: p.uuid, class: p.from })),
    not_in_source: notInSource,
    dataset: buildDataset(classes, copyFiles),
  };
  const manifestPath = join(out, MANIFEST_FILE);
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n', { flag: 'wx' });
  return { outDir: out, manifestPath, manifest };
}
