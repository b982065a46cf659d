/**
 * Writing a cleaned copy of a dataset: the kept and the corrected images copied into class
 * sub-folders of a new folder (relabelled ones into their new class), plus a `manifest.json`. The
 * source files are only read: nothing is deleted, moved or overwritten. Only images inside the
 * dataset roots the caller gives are read (src/images/dataset-roots.ts); the response and the
 * source dataset come from a result, so their paths are never trusted.
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { BadRequestError, ConflictError } from 'flame-sdk';
import {
  classFolderName,
  datasetRoots,
  isInside,
  locateDatasetFile,
  readDatasetFile,
  realPathLoose,
  RefusedFileError,
  type DatasetFileLocation,
  type IdxArray,
  type RefusalReason,
  type RootLimits,
} from 'flame-sdk/images';
import type { ClassFiles, CleaningResponse, Dataset, DatasetFile } from 'flame-sdk/images';
import { DEFAULT_LIMITS } from 'flame-sdk';
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
  /** The file's uuid (the same as in the source and the response). */
  uuid: string;
  /** The class it is filed under in the copy. */
  class: string;
  /** The class it had in the source. */
  original_class: string;
  /** `kept` as it was, or `corrected`: copied into its new class. */
  action: 'kept' | 'corrected';
}

/** A file that was to be copied but was not read: outside the dataset roots, or not an image. */
export interface RefusedFile {
  /** The source file's key, as the source dataset names it. */
  source: string;
  /** The file's uuid. */
  uuid: string;
  /** The class it had in the source. */
  class: string;
  /** What the cleaning would have done with it. */
  action: 'kept' | 'corrected';
  /** Which check refused it. */
  reason: RefusalReason;
  /** The refusal, naming the path and why. */
  error: string;
}

/**
 * `manifest.json`: what was copied where, what was left out, and the copy as a seed-000 dataset.
 *
 * @property counts.__type.source Files of the source dataset.
 * @property counts.__type.kept Files copied unchanged.
 * @property counts.__type.corrected Files copied into their corrected class.
 * @property counts.__type.removed Source files not copied because the cleaning removed them.
 * @property counts.__type.not_in_source Files of the response that the source does not hold.
 * @property counts.__type.refused Files that were to be copied but were refused unread.
 */
export interface CleaningManifest {
  /** The cleaning response's `dataset_uuid`. */
  dataset_uuid: string;
  /** How many files went each way. */
  counts: { source: number; kept: number; corrected: number; removed: number; not_in_source: number; refused: number };
  /** Every image copied, with where it went. */
  files: ManifestFile[];
  /** Source files not copied (the cleaning removed them): their key (`source`), `uuid` and `class`. */
  removed: Array<{ source: string; uuid: string; class: string }>;
  /** Source files not read, so not copied: outside the dataset roots, not a file, not an image, over the pixel cap. */
  refused: RefusedFile[];
  /** Files of the cleaning response that the source does not hold (e.g. another node's): their response `key` and `uuid`. */
  not_in_source: Array<{ key: string; uuid: string }>;
  /** The copy: keys are the absolute paths of the copies, mean/std pooled over them. */
  dataset: Dataset;
}

/** What {@link applyCleaning} returns. */
export interface ApplyResult {
  /** The output folder's real path. */
  outDir: string;
  /** Path of the `manifest.json` written there. */
  manifestPath: string;
  /** What the manifest holds. */
  manifest: CleaningManifest;
}

/** Options of {@link applyCleaning}. */
export interface ApplyOptions {
  /**
   * The dataset folders source files may be read from, given by the operator (e.g. the `--source`
   * folder, `--root`), never taken from the response or the source dataset. Files elsewhere are
   * refused, not read.
   */
  roots: readonly string[];
  /** `maxImagePixels` and `maxClasses` (default src/limits.ts' defaults). */
  limits?: RootLimits & { maxClasses?: number };
  /** Folder relative keys are resolved from (default the working directory). */
  base?: string;
}

/**
 * The folder a source file's dataset lives in: the parent of its class folder (`root` of
 * `root/<class>/x.png`), or the folder of an IDX file.
 */
function sourceFolder(src: DatasetFileLocation): string {
  return src.kind === 'file' ? dirname(dirname(src.path)) : dirname(src.file);
}

async function checkOutDir(outDir: string, roots: Iterable<string>): Promise<string> {
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

function indexResponse(ds: Dataset, where: string, maxClasses: number): Map<string, { key: string; cls: string; file: DatasetFile }> {
  const out = new Map<string, { key: string; cls: string; file: DatasetFile }>();
  for (const [cls, files] of Object.entries(validateDataset(ds, where, maxClasses).class_files)) {
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
 * Only images inside `options.roots` are read (links resolved; a regular file that sniffs and
 * decodes as an image within `maxImagePixels`; an IDX file inside a root). Any other file to copy is
 * not read and not copied: it is listed in the manifest's `refused` with its reason, and the rest is
 * copied. The copies are the bytes that were checked.
 *
 * Nothing is written until every check that fails the whole run passed; source files are only read.
 * @param sourceDataset the dataset that was diagnosed, keyed by paths (e.g. from
 *   `datasetFromFolder`, or `requestSource` of the cleaning request)
 * @throws BadRequestError if `outDir` is inside a root or a source folder (the parent of a class
 *   folder) or is a file; ConflictError if it is not empty; NotFoundError if a root is missing or a
 *   source file to copy inside a root is missing; BadRequestError if no file of a non-empty
 *   response is in the source (another dataset)
 */
export async function applyCleaning(response: CleaningResponse, sourceDataset: Dataset, outDir: string, options: ApplyOptions): Promise<ApplyResult> {
  if (!options || !Array.isArray(options.roots)) throw new BadRequestError('applyCleaning: options.roots is missing (the dataset folders source files may be read from)');
  const roots = await datasetRoots(options.roots, 'dataset root');
  const limits = options.limits ?? DEFAULT_LIMITS;
  const maxClasses = options.limits?.maxClasses ?? DEFAULT_LIMITS.maxClasses;
  const source = validateDataset(sourceDataset, 'source dataset', maxClasses);
  const corrected = indexResponse(response.corrected, 'response.corrected', maxClasses);
  const removed = indexResponse(response.removed, 'response.removed', maxClasses);
  const byPath = new Map<string, string>();
  for (const m of [corrected, removed]) for (const [uuid, r] of m) byPath.set(resolve(sourcePath(r.key, r.file)), uuid);

  type Planned = { key: string; uuid: string; from: string; to: string; file: DatasetFile; action: 'kept' | 'corrected' | 'removed'; src?: DatasetFileLocation };
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
  const refused: RefusedFile[] = [];
  const refuse = (p: Planned, e: RefusedFileError) =>
    refused.push({ source: p.key, uuid: p.uuid, class: p.from, action: p.action === 'corrected' ? 'corrected' : 'kept', reason: e.reason, error: e.message });
  // where each file is, checked against the roots without reading it; missing files fail the run here
  const folders = new Set<string>(roots.dirs);
  for (const p of copies) {
    try {
      p.src = await locateDatasetFile(roots, p.key, { base: options.base });
      folders.add(sourceFolder(p.src));
    } catch (e) {
      if (!(e instanceof RefusedFileError)) throw e;
      refuse(p, e);
    }
  }
  const out = await checkOutDir(outDir, folders);

  const classes = [...source.classes];
  for (const p of copies) if (!classes.includes(p.to)) classes.push(p.to);
  const taken = new Set<string>();
  const files: ManifestFile[] = [];
  const copyFiles: Record<string, ClassFiles> = {};
  await mkdir(out, { recursive: true });
  for (const c of classes) await mkdir(join(out, classFolderName(c)), { recursive: true });
  const idxCache = new Map<string, IdxArray>();
  for (const p of copies) {
    if (!p.src) continue;
    let content;
    try {
      content = await readDatasetFile(roots, p.key, { base: options.base, limits, idxCache });
    } catch (e) {
      if (!(e instanceof RefusedFileError)) throw e;
      refuse(p, e);
      continue;
    }
    let name = content.kind === 'file' ? basename(content.path) : `${basename(content.file)}-${content.index}.png`;
    let rel = join(classFolderName(p.to), name);
    if (taken.has(rel)) {
      const ext = extname(name);
      name = `${name.slice(0, name.length - ext.length)}-${p.uuid.slice(0, 8)}${ext}`;
      rel = join(classFolderName(p.to), name);
    }
    taken.add(rel);
    const dest = join(out, rel);
    if (content.kind === 'file') {
      await writeFile(dest, content.bytes, { flag: 'wx' });
    } else {
      await sharp(content.pixels, { raw: { width: content.width, height: content.height, channels: 1 } }).toColourspace('b-w').png().toFile(dest);
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
      refused: refused.length,
    },
    files,
    removed: planned.filter((p) => p.action === 'removed').map((p) => ({ source: p.key, uuid: p.uuid, class: p.from })),
    refused,
    not_in_source: notInSource,
    dataset: buildDataset(classes, copyFiles),
  };
  const manifestPath = join(out, MANIFEST_FILE);
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n', { flag: 'wx' });
  return { outDir: out, manifestPath, manifest };
}
