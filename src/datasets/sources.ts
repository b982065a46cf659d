/**
 * What a local dataset becomes in hub storage: its kind (image folder, IDX pair, CSV file), what to
 * upload (single objects with a way to stream their bytes again, or for an image folder one object
 * per image below a prefix), details for the manifest and a fingerprint of the source, so a resumed
 * upload can tell whether the source is still the same.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BadRequestError, NotFoundError } from '../errors.js';
import { checkDataKey } from '../data/keys.js';
import { compareKeys } from '../results/keys.js';
import type { LocalObject } from './object-set.js';

/** The dataset kinds `flame datasets upload` understands. */
export type DatasetKind = 'image_folder' | 'idx' | 'csv';

/** What a stored object of a dataset holds. */
export type DatasetFileRole = 'images' | 'labels' | 'table';

/** One object to upload: its name beside the manifest, its size and how to read its bytes. */
export interface PlannedObject {
  layout: 'object';
  name: string;
  role: DatasetFileRole;
  format: 'idx' | 'idx.gz' | 'csv';
  size: number;
  /** A fresh stream of exactly `size` bytes, the same bytes every time while the source is unchanged. */
  open(): Readable;
}

/** Files that become one object each below a prefix beside the manifest (an image folder's `images/`). */
export interface PlannedObjectSet {
  layout: 'prefix';
  /** The prefix below the dataset, ending in `/`. */
  name: string;
  role: DatasetFileRole;
  format: 'objects';
  /** Total bytes of the files. */
  size: number;
  /** The files in upload order, keyed `<class>/<file>`. */
  files: LocalObject[];
}

/** What one entry of a dataset's manifest becomes in storage. */
export type PlannedFile = PlannedObject | PlannedObjectSet;

/** A local dataset, ready to upload. */
export interface DatasetPlan {
  kind: DatasetKind;
  /** Absolute path of the source (the folder, the IDX images file or the CSV file). */
  sourcePath: string;
  /** sha-256 over the kind and every source file's relative path, size and mtime. */
  fingerprint: string;
  files: PlannedFile[];
  /** Kind-specific facts for the manifest (classes and counts, IDX shapes, CSV columns and rows). */
  details: Record<string, unknown>;
}

/** File name extensions taken as images in an image folder. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.gif', '.bmp', '.tif', '.tiff', '.webp'];

/** Longest image path inside the folder: S3 keys hold 1024 bytes, the dataset's prefix takes the rest. */
const MAX_IMAGE_KEY_BYTES = 900;

interface SourceFile {
  rel: string;
  abs: string;
  size: number;
  mtimeMs: number;
}

async function statOrNotFound(p: string, what: string): Promise<fs.Stats> {
  try {
    return await fsp.stat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${what} ${p} does not exist`);
    throw new BadRequestError(`cannot read ${what} ${p}: ${(e as Error).message}`);
  }
}

function fingerprint(kind: DatasetKind, files: SourceFile[]): string {
  const h = createHash('sha256').update(kind);
  for (const f of files) h.update(`\n${f.rel}\t${f.size}\t${Math.floor(f.mtimeMs)}`);
  return h.digest('hex');
}

function isImage(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

async function sortedEntries(dir: string): Promise<fs.Dirent[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  return entries.filter((e) => !e.name.startsWith('.')).sort((a, b) => compareKeys(a.name, b.name));
}

async function collectImages(root: string, dir: string, out: SourceFile[]): Promise<void> {
  for (const e of await sortedEntries(dir)) {
    const abs = path.join(dir, e.name);
    const st = await fsp.stat(abs);
    if (st.isDirectory()) await collectImages(root, abs, out);
    else if (st.isFile() && isImage(e.name)) {
      const rel = path.relative(root, abs).split(path.sep).join('/');
      // each image becomes an object key the data API must read back
      checkDataKey(rel, `image folder ${root}`);
      if (Buffer.byteLength(rel) > MAX_IMAGE_KEY_BYTES) throw new BadRequestError(`image folder ${root}: path ${rel} is longer than ${MAX_IMAGE_KEY_BYTES} bytes`);
      out.push({ rel, abs, size: st.size, mtimeMs: st.mtimeMs });
    }
  }
}

/**
 * An image folder: one sub-folder per class (nested folders inside a class are kept), uploaded as
 * one object per image, `images/<class>/<file>`: the S3 data source reads that prefix as the same
 * labelled image collection as the local folder. Hidden files and non-image files are left out.
 */
async function planImageFolder(dir: string): Promise<DatasetPlan> {
  const files: SourceFile[] = [];
  const classes: Record<string, number> = {};
  for (const e of await sortedEntries(dir)) {
    const abs = path.join(dir, e.name);
    const st = await fsp.stat(abs);
    if (st.isDirectory()) {
      const before = files.length;
      await collectImages(dir, abs, files);
      if (files.length > before) classes[e.name] = files.length - before;
    } else if (st.isFile() && isImage(e.name)) {
      throw new BadRequestError(`image folder ${dir}: ${e.name} is not inside a class sub-folder (expected ${dir}/<class>/${e.name})`);
    }
  }
  if (files.length === 0) {
    throw new BadRequestError(`image folder ${dir} has no images in class sub-folders (extensions ${IMAGE_EXTENSIONS.join(' ')})`);
  }
  const bytes = files.reduce((a, f) => a + f.size, 0);
  return {
    kind: 'image_folder',
    sourcePath: dir,
    fingerprint: fingerprint('image_folder', files),
    files: [{ layout: 'prefix', name: 'images/', role: 'images', format: 'objects', size: bytes, files: files.map((f) => ({ key: f.rel, source: f.abs, size: f.size })) }],
    details: { classes, images: files.length, bytes },
  };
}

/** Element types of IDX by type byte, as in images/idx.ts. */
const IDX_TYPES: Record<number, string> = { 0x08: 'ubyte', 0x09: 'byte', 0x0b: 'short', 0x0c: 'int', 0x0d: 'float', 0x0e: 'double' };

/** The first `n` bytes of a file, inflated first when it is gzipped. */
async function headBytes(file: string, n: number, gzipped: boolean): Promise<Buffer> {
  const stream = gzipped ? fs.createReadStream(file).pipe(createGunzip()) : fs.createReadStream(file, { end: n - 1 });
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const c of stream) {
      chunks.push(c as Buffer);
      got += (c as Buffer).length;
      if (got >= n) break;
    }
  } catch (e) {
    throw new BadRequestError(`cannot read ${file}: ${(e as Error).message}`);
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

async function isGzipped(file: string): Promise<boolean> {
  const b = await headBytes(file, 2, false);
  return b.length === 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Type and dimensions from an IDX header; the error names the file. */
async function idxHeader(file: string, gzipped: boolean): Promise<{ type: string; dims: number[] }> {
  const first = await headBytes(file, 4, gzipped);
  const type = IDX_TYPES[first[2]];
  if (first.length < 4 || first[0] !== 0 || first[1] !== 0 || !type || first[3] === 0) {
    throw new BadRequestError(`${file} is not an IDX file (bad magic number)`);
  }
  const ndims = first[3];
  const head = await headBytes(file, 4 + 4 * ndims, gzipped);
  if (head.length < 4 + 4 * ndims) throw new BadRequestError(`IDX file ${file} is truncated inside its header`);
  const dims = Array.from({ length: ndims }, (_, i) => head.readUInt32BE(4 + 4 * i));
  return { type, dims };
}

async function sourceFile(abs: string, what: string): Promise<SourceFile> {
  const st = await statOrNotFound(abs, what);
  if (!st.isFile()) throw new BadRequestError(`${what} ${abs} is not a file`);
  return { rel: path.basename(abs), abs, size: st.size, mtimeMs: st.mtimeMs };
}

function fileStream(f: SourceFile): () => Readable {
  return () => fs.createReadStream(f.abs);
}

/** An IDX pair (MNIST format): images (N×…) and labels (N), each stored as it is. */
async function planIdx(imagesPath: string, labelsPath: string): Promise<DatasetPlan> {
  const images = await sourceFile(imagesPath, 'IDX images file');
  const labels = await sourceFile(labelsPath, 'IDX labels file');
  const [imgGz, lblGz] = await Promise.all([isGzipped(images.abs), isGzipped(labels.abs)]);
  const [imgHead, lblHead] = await Promise.all([idxHeader(images.abs, imgGz), idxHeader(labels.abs, lblGz)]);
  if (lblHead.dims.length !== 1) {
    throw new BadRequestError(`IDX labels file ${labels.abs} must have one dimension, has ${lblHead.dims.length} (${lblHead.dims.join('x')})`);
  }
  if (imgHead.dims[0] !== lblHead.dims[0]) {
    throw new BadRequestError(`IDX pair does not match: ${images.abs} has ${imgHead.dims[0]} items, ${labels.abs} has ${lblHead.dims[0]} labels`);
  }
  const file = (f: SourceFile, role: DatasetFileRole, gz: boolean): PlannedObject => ({
    layout: 'object',
    name: `${role}.idx${gz ? '.gz' : ''}`,
    role,
    format: gz ? 'idx.gz' : 'idx',
    size: f.size,
    open: fileStream(f),
  });
  return {
    kind: 'idx',
    sourcePath: images.abs,
    fingerprint: fingerprint('idx', [
      { ...images, rel: 'images' },
      { ...labels, rel: 'labels' },
    ]),
    files: [file(images, 'images', imgGz), file(labels, 'labels', lblGz)],
    details: { items: imgHead.dims[0], item_shape: imgHead.dims.slice(1), image_type: imgHead.type, label_type: lblHead.type },
  };
}

/** A CSV file with a header line: stored as it is; the manifest names its columns and counts its rows. */
async function planCsv(csvPath: string): Promise<DatasetPlan> {
  const csv = await sourceFile(csvPath, 'CSV file');
  let columns: string[] | undefined;
  let rows = 0;
  const lines = readline.createInterface({ input: fs.createReadStream(csv.abs), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    if (columns === undefined) columns = line.replace(/^\uFEFF/, '').split(',').map((c) => c.trim());
    else rows++;
  }
  if (columns === undefined) throw new BadRequestError(`CSV file ${csv.abs} is empty (a header line is required)`);
  return {
    kind: 'csv',
    sourcePath: csv.abs,
    fingerprint: fingerprint('csv', [csv]),
    files: [{ layout: 'object', name: 'data.csv', role: 'table', format: 'csv', size: csv.size, open: fileStream(csv) }],
    details: { columns, rows },
  };
}

/**
 * Looks at `source` and plans its upload: a folder is an image folder, a file with `labels` an IDX
 * pair, a `.csv` file a CSV dataset. Throws NotFoundError for a missing path, BadRequestError for
 * anything else it cannot take, naming the path.
 */
export async function planDataset(source: string, options: { labels?: string } = {}): Promise<DatasetPlan> {
  const abs = path.resolve(source);
  const st = await statOrNotFound(abs, 'dataset path');
  if (st.isDirectory()) {
    if (options.labels) throw new BadRequestError(`--labels is for IDX files, but ${abs} is a folder (an image folder needs no labels file)`);
    return planImageFolder(abs);
  }
  if (options.labels) return planIdx(abs, path.resolve(options.labels));
  if (path.extname(abs).toLowerCase() === '.csv') return planCsv(abs);
  const gz = await isGzipped(abs);
  const magic = await headBytes(abs, 4, gz);
  if (magic.length === 4 && magic[0] === 0 && magic[1] === 0 && IDX_TYPES[magic[2]]) {
    throw new BadRequestError(`${abs} looks like an IDX file: give its labels file with --labels`);
  }
  throw new BadRequestError(`cannot tell what dataset ${abs} is: expected an image folder, an IDX file with --labels, or a .csv file`);
}
