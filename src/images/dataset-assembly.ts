/**
 * The assembly every dataset source ends in: files are decoded a few at a time, a file that fails is
 * reported (in `skipped` and through the logger) and left out, and never stops the others.
 */
import { basename, extname } from 'node:path';
import { mapConcurrent } from './concurrency.js';
import { metadataFromStats } from './metadata.js';
import { meanStd, mergeSums } from './pooling.js';
import type { ChannelSums, ClassFiles, Dataset, ImageStats } from './types.js';
import { fileUuid } from './uuid.js';

/** A file left out of a dataset, and why. */
export interface SkippedFile {
  /** The file's path (or virtual IDX path) as the builder named it. */
  path: string;
  /** Why it could not be read. */
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
  /** Logs one skipped file: a message and structured fields (path, error). */
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
  /**
   * Most pixels (width × height, read from the header before decoding) of one image (default
   * `DEFAULT_LIMITS.maxImagePixels`); a larger image is skipped with the cap as its reason.
   */
  maxImagePixels?: number;
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

/** Whether a file name is read as an image: a known extension, not a hidden file. */
export function isImageName(name: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(name).toLowerCase()) && !basename(name).startsWith('.');
}

/** Orders strings by code unit, the same on every machine (no locale). */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A file to put in a dataset: its path (the key in `class_files`), its class and how to read it. */
export interface DatasetEntry {
  /** Its key in `class_files`. */
  path: string;
  /** The class it is filed under. */
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
