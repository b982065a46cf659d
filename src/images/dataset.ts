/**
 * Build the seed-000 `dataset` object (classes, pooled mean/std, files per class with uuid and
 * metadata) from the places images live: a local folder of class sub-folders, an IDX pair, a file
 * data source (S3 prefix or folder with class sub-prefixes) or a FHIR server.
 *
 * Every source ends in the same assembly: files are decoded a few at a time, a file that fails is
 * reported (in `skipped` and through the logger) and left out, and never stops the others.
 */
import type { Dirent } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import type { FhirDataClient, FhirResource, FileDataClient } from '../data/port.js';
import { BadRequestError, NotFoundError } from '../errors.js';
import { mapConcurrent } from './concurrency.js';
import { readIdxImageSet } from './idx.js';
import { imageStats, imageStatsFromBuffer, imageStatsFromPixels, metadataFromStats } from './metadata.js';
import { meanStd, mergeSums } from './pooling.js';
import type { ChannelSums, ClassFiles, Dataset, ImageStats } from './types.js';
import { fileUuid } from './uuid.js';

/** A file left out of a dataset, and why. */
export interface SkippedFile {
  path: string;
  error: string;
}

/** What every dataset builder returns. */
export interface DatasetBuild {
  /** The seed-000 dataset of every file that could be read. */
  dataset: Dataset;
  /** The pooled per-channel sums behind `dataset.mean`/`std_dev`: what a node sends for merging. */
  sums: ChannelSums;
  /** Files that could not be read (missing, empty, not an image, corrupt, unlabelled). */
  skipped: SkippedFile[];
}

/** Where skipped files are logged; the SDK's `Logger` fits. */
export interface SkipLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** Options shared by every dataset builder. */
export interface DatasetOptions {
  /** Images decoded at once (default 4, the size of libuv's thread pool sharp runs on). */
  concurrency?: number;
  /** Called after each file, read or skipped. */
  onProgress?: (done: number, total: number) => void;
  /** Logs each skipped file (default: one line on stderr). */
  logger?: SkipLogger;
  /**
   * Part of every file uuid, e.g. the node or source id, so two sources whose paths coincide
   * (relative S3 keys on two nodes) do not share ids. Default none: the uuid depends on the path only.
   */
  uuidScope?: string;
}

/** File extensions read as images in folder and S3 sources (lower case). Others are ignored. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.png',
  '.jpg',
  '.jpeg',
  '.webp',
  '.tif',
  '.tiff',
  '.gif',
  '.avif',
  '.heic',
]);

const DEFAULT_CONCURRENCY = 4;

const stderrLogger: SkipLogger = {
  warn: (msg, fields) => process.stderr.write(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}\n`),
};

function isImageName(name: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(name).toLowerCase()) && !basename(name).startsWith('.');
}

function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A file to put in a dataset: its path (the key in `class_files`), its class and how to read it. */
export interface DatasetEntry {
  path: string;
  label: string;
  /** Decode the file and return its sums; throw to have it skipped. */
  read: () => Promise<ImageStats>;
}

/**
 * Assemble a dataset from entries: decode them `concurrency` at a time, skip the ones that fail,
 * pool the rest. `classes` lists every class (in order) even if empty; labels not in it are added
 * in sorted order. Files appear in `class_files` sorted by path, whatever order they finished in.
 */
export async function assembleDataset(
  classes: readonly string[],
  entries: readonly DatasetEntry[],
  options: DatasetOptions = {},
): Promise<DatasetBuild> {
  const logger = options.logger ?? stderrLogger;
  const results = await mapConcurrent(
    entries,
    options.concurrency ?? DEFAULT_CONCURRENCY,
    (e) => e.read(),
    options.onProgress,
  );
  const skipped: SkippedFile[] = [];
  const kept: Array<{ entry: DatasetEntry; stats: ImageStats }> = [];
  const seen = new Set<string>();
  const order = entries.map((_, i) => i).sort((a, b) => byString(entries[a].path, entries[b].path));
  for (const i of order) {
    const entry = entries[i];
    const r = results[i];
    let error: string | undefined;
    if (!r.ok) error = r.error instanceof Error ? r.error.message : String(r.error);
    else if (seen.has(entry.path)) error = `Duplicate path ${entry.path}: kept the first one`;
    if (error !== undefined || !r.ok) {
      skipped.push({ path: entry.path, error: error ?? 'unreadable' });
      logger.warn('Skipped an image that could not be read', { path: entry.path, error });
      continue;
    }
    seen.add(entry.path);
    kept.push({ entry, stats: r.value });
  }
  // Classes that only failed files carried (e.g. an unnamed IDX label) are not added.
  const extra = [...new Set(kept.map((k) => k.entry.label))].filter((l) => !classes.includes(l)).sort(byString);
  const allClasses = [...classes, ...extra];
  const classFiles: Record<string, ClassFiles> = {};
  for (const c of allClasses) classFiles[c] = {};
  for (const { entry, stats } of kept) {
    classFiles[entry.label][entry.path] = { uuid: fileUuid(entry.path, options.uuidScope), ...metadataFromStats(stats) };
  }
  const sums = mergeSums(kept.map((k) => k.stats));
  const { mean, std_dev } = meanStd(sums);
  return { dataset: { classes: allClasses, mean, std_dev, class_files: classFiles }, sums, skipped };
}

// ---------------------------------------------------------------------------------------------
// (a) A local folder: <root>/<class>/**/<image>

/**
 * Dataset of a folder whose sub-folders are the classes (`root/cat/1.png`, `root/dog/a/2.jpg`).
 * Class names are the sub-folder names, sorted; empty class folders are kept as empty classes.
 * Paths (the keys of `class_files`) are absolute. Files directly in `root`, hidden files and files
 * without an image extension ({@link IMAGE_EXTENSIONS}) are ignored; image files that cannot be
 * decoded are skipped and reported.
 * @throws NotFoundError if `root` does not exist; BadRequestError if it is not a folder.
 */
export async function datasetFromFolder(root: string, options: DatasetOptions = {}): Promise<DatasetBuild> {
  const abs = resolve(root);
  const info = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new NotFoundError(`Dataset folder ${abs} does not exist`, { cause: err });
    throw err;
  });
  if (!info.isDirectory()) throw new BadRequestError(`Dataset folder ${abs} is not a folder`);
  const top = await readdir(abs, { withFileTypes: true });
  const classes = top
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort(byString);
  const entries: DatasetEntry[] = [];
  for (const label of classes) {
    const files = await listImageFiles(join(abs, label));
    for (const path of files) entries.push({ path, label, read: () => imageStats(path) });
  }
  return assembleDataset(classes, entries, options);
}

async function listImageFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const items: Dirent[] = await readdir(d, { withFileTypes: true });
    for (const it of items) {
      if (it.name.startsWith('.')) continue;
      const p = join(d, it.name);
      if (it.isDirectory()) await walk(p);
      else if ((it.isFile() || it.isSymbolicLink()) && isImageName(it.name)) out.push(p);
    }
  };
  await walk(dir);
  return out.sort(byString);
}

// ---------------------------------------------------------------------------------------------
// (b) An IDX pair (MNIST format)

/** Where the images and labels of an IDX dataset are, and what to call its classes. */
export interface IdxDatasetSource {
  /** IDX images file (count x rows x cols, ubyte), gzipped or not. */
  images: string;
  /** IDX labels file (count, ubyte), gzipped or not. */
  labels: string;
  /** Class name per label value (e.g. {@link FASHION_MNIST_CLASSES}); default the label as text. */
  classNames?: readonly string[];
  /**
   * Write each image as a PNG to `outDir/<class>/<index>.png` and key the dataset by those paths,
   * for consumers that open files. Class folder names replace `/` and `\` with `-`.
   */
  outDir?: string;
}

/** Separator between an IDX file and an image index in virtual paths: `train-images.gz#41`. */
export const IDX_PATH_SEPARATOR = '#';

/**
 * Parse a virtual IDX path made by {@link datasetFromIdx}: the images file and the image index,
 * or undefined if `path` is not one.
 */
export function parseIdxPath(path: string): { file: string; index: number } | undefined {
  const at = path.lastIndexOf(IDX_PATH_SEPARATOR);
  if (at < 0) return undefined;
  const index = path.slice(at + 1);
  if (!/^\d+$/.test(index)) return undefined;
  return { file: path.slice(0, at), index: Number(index) };
}

/** A class name as a folder name: no path separators, not a dot name. */
export function classFolderName(name: string): string {
  const safe = name.replace(/[/\\]/g, '-');
  return safe === '.' || safe === '..' || safe === '' ? `class-${safe.length}` : safe;
}

/**
 * Dataset of an IDX images/labels pair. seed 000 keys files by path and IDX files hold many images,
 * so each image gets a virtual path `<absolute images file>#<index>` (see {@link parseIdxPath}): no
 * copies, stable across runs, and the pixels are found again from the path. With `outDir` the
 * images are written as PNGs instead and keyed by those files' paths.
 * An image whose label has no class name is skipped and reported.
 * @throws NotFoundError / BadRequestError naming the IDX file when a file is missing or invalid.
 */
export async function datasetFromIdx(source: IdxDatasetSource, options: DatasetOptions = {}): Promise<DatasetBuild> {
  const imagesPath = resolve(source.images);
  const set = await readIdxImageSet(imagesPath, resolve(source.labels));
  const size = set.rows * set.cols;
  const names = source.classNames;
  const nameOf = (label: number): string | undefined => (names ? names[label] : String(label));
  const classes = names
    ? [...names]
    : [...new Set(set.labels)].sort((a, b) => a - b).map(String);
  const outDir = source.outDir === undefined ? undefined : resolve(source.outDir);
  if (outDir) {
    for (const c of classes) await mkdir(join(outDir, classFolderName(c)), { recursive: true });
  }
  const entries: DatasetEntry[] = [];
  for (let i = 0; i < set.count; i++) {
    const pixels = set.images.subarray(i * size, (i + 1) * size);
    const label = nameOf(set.labels[i]);
    const virtual = `${imagesPath}${IDX_PATH_SEPARATOR}${i}`;
    if (label === undefined) {
      const error = `Image ${i} of ${imagesPath} has label ${set.labels[i]}, which has no class name (${names?.length} given)`;
      entries.push({ path: virtual, label: '', read: () => Promise.reject(new BadRequestError(error)) });
      continue;
    }
    const path = outDir ? join(outDir, classFolderName(label), `${i}.png`) : virtual;
    entries.push({
      path,
      label,
      read: async () => {
        if (outDir) {
          await sharp(pixels, { raw: { width: set.cols, height: set.rows, channels: 1 } })
            .toColourspace('b-w')
            .png()
            .toFile(path);
        }
        return imageStatsFromPixels(pixels, set.cols, set.rows, 1, 255);
      },
    });
  }
  return assembleDataset(classes, entries, options);
}

// ---------------------------------------------------------------------------------------------
// (c) A file data source (S3 prefix or folder) with class sub-prefixes

/** Which part of a file data source holds the dataset. */
export interface FileSourceDataset {
  /** Key prefix of the dataset ("folder"), e.g. `"train/"`; classes are the next key segment. */
  prefix?: string;
  /** The key in `class_files` for an object key; default the key itself. */
  pathOf?: (key: string) => string;
}

/**
 * Dataset of a file data source laid out as `<prefix>/<class>/.../<image>` (S3 objects or folder
 * files). Keys directly below the prefix and keys without an image extension are ignored.
 * Classes are the class segments found, sorted (S3 has no empty folders).
 */
export async function datasetFromFiles(
  client: FileDataClient,
  where: FileSourceDataset = {},
  options: DatasetOptions = {},
): Promise<DatasetBuild> {
  // A dataset prefix is a folder: "train" and "train/" both mean the keys below "train/".
  const trimmed = (where.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const base = trimmed ? `${trimmed}/` : '';
  const listed = await client.list(base);
  const entries: DatasetEntry[] = [];
  for (const { key } of listed) {
    const rest = key.slice(base.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || !isImageName(rest)) continue;
    const label = rest.slice(0, slash);
    entries.push({
      path: where.pathOf ? where.pathOf(key) : key,
      label,
      read: async () => imageStatsFromBuffer(await client.getBytes(key), key),
    });
  }
  const classes = [...new Set(entries.map((e) => e.label))].sort(byString);
  return assembleDataset(classes, entries, options);
}

// ---------------------------------------------------------------------------------------------
// (d) A FHIR server: Media or DocumentReference resources

/** Which FHIR resources hold the images and how their labels are found. */
export interface FhirSourceDataset {
  /** Default `Media`. */
  resourceType?: 'Media' | 'DocumentReference';
  /** Search parameters (e.g. `{ subject: 'Group/study-1' }`). */
  params?: Record<string, string | number>;
  /** The class of a resource; default {@link defaultFhirLabel}. Return undefined to skip it. */
  labelOf?: (resource: FhirResource) => string | undefined;
}

interface CodeableConcept {
  text?: string;
  coding?: Array<{ code?: string; display?: string }>;
}

function conceptLabel(value: unknown): string | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const cc = value as CodeableConcept;
  if (typeof cc.text === 'string' && cc.text.trim()) return cc.text.trim();
  for (const c of cc.coding ?? []) {
    const v = c.display ?? c.code;
    if (typeof v === 'string' && v.trim()) return v.trim();
  }
  return undefined;
}

/**
 * Default label of an image resource: the text of its `code`, else of its `type` (DocumentReference
 * type, or Media type when it is not the generic `image`), else the first coding's display or code.
 */
export function defaultFhirLabel(resource: FhirResource): string | undefined {
  const fromCode = conceptLabel(resource.code);
  if (fromCode) return fromCode;
  const fromType = conceptLabel(resource.type);
  if (fromType && !(resource.resourceType === 'Media' && fromType.toLowerCase() === 'image')) return fromType;
  return undefined;
}

/** The image attachment of a Media (`content`) or DocumentReference (`content[0].attachment`). */
export function fhirImageAttachment(resource: FhirResource): { data?: string; url?: string; contentType?: string } | undefined {
  const content = resource.content;
  const att = Array.isArray(content)
    ? (content as Array<{ attachment?: unknown }>).map((c) => c.attachment).find((a) => a && typeof a === 'object')
    : content;
  if (!att || typeof att !== 'object') return undefined;
  const a = att as { data?: unknown; url?: unknown; contentType?: unknown };
  if (typeof a.data !== 'string' && typeof a.url !== 'string') return undefined;
  return {
    data: typeof a.data === 'string' ? a.data : undefined,
    url: typeof a.url === 'string' ? a.url : undefined,
    contentType: typeof a.contentType === 'string' ? a.contentType : undefined,
  };
}

/**
 * Dataset of the image resources of a FHIR server: each resource's attachment is the image and its
 * label the class. Paths are resource references (`Media/123`). Resources without an attachment or
 * a label are skipped and reported.
 */
export async function datasetFromFhir(
  client: FhirDataClient,
  where: FhirSourceDataset = {},
  options: DatasetOptions = {},
): Promise<DatasetBuild> {
  const type = where.resourceType ?? 'Media';
  const labelOf = where.labelOf ?? defaultFhirLabel;
  const entries: DatasetEntry[] = [];
  for await (const resource of client.searchAll(type, where.params)) {
    if (resource.resourceType !== type) continue; // included resources, OperationOutcomes
    const ref = `${type}/${resource.id ?? '?'}`;
    const label = labelOf(resource);
    const attachment = fhirImageAttachment(resource);
    let problem: string | undefined;
    if (!label) problem = `${ref} has no label (no code or type text)`;
    else if (!attachment) problem = `${ref} has no image attachment (data or url)`;
    entries.push({
      path: ref,
      label: label ?? '',
      read: problem
        ? () => Promise.reject(new BadRequestError(problem))
        : async () => imageStatsFromBuffer(await client.attachmentBytes(attachment!), ref),
    });
  }
  const classes = [...new Set(entries.map((e) => e.label))].filter((l) => l !== '').sort(byString);
  return assembleDataset(classes, entries, options);
}
