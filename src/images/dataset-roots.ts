/**
 * Whether a file that untrusted input names (a diagnosis result's keys and `path` fields, a cleaning
 * response) may be read: only images inside the dataset roots the operator gave (a CLI flag or an
 * API option, never the input itself). A path is resolved with its symbolic links, so a link inside
 * a root cannot lead out; it must be a regular file whose first bytes carry an image signature,
 * whose header is within `maxImagePixels`, and which decodes. IDX virtual paths (`images.idx#12`)
 * are checked the same way, on the IDX file. Files are read through one open handle that does not
 * follow links, and callers use the bytes that were checked, not the path again.
 */
import { constants } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { BadRequestError, NotFoundError } from '../errors.js';
import { DEFAULT_LIMITS, overLimit, type Limits } from '../limits.js';
import { parseIdxPath } from './dataset.js';
import { readIdx, type IdxArray } from './idx.js';
import { IMAGE_SIGNATURE_BYTES, sniffImageFormat, type ImageFormat } from './sniff.js';

/** Why a named file was not read. */
export type RefusalReason = 'outside_roots' | 'not_a_file' | 'not_an_image' | 'over_pixel_cap';

/** How each {@link RefusalReason} reads in messages. */
export const REFUSAL_TEXT: Readonly<Record<RefusalReason, string>> = Object.freeze({
  outside_roots: 'outside the dataset roots',
  not_a_file: 'not a regular file',
  not_an_image: 'not an image',
  over_pixel_cap: 'over the pixel cap',
});

/** A file that may not be read; the message names the path and why (`File x refused: not an image (...)`). */
export class RefusedFileError extends BadRequestError {
  /** The path as the input named it. */
  readonly path: string;
  /** Which check refused it. */
  readonly reason: RefusalReason;
  /** What was found (e.g. `resolves to /etc/x; roots: /data`), without the path and reason. */
  readonly detail: string;
  constructor(path: string, reason: RefusalReason, detail: string) {
    super(`File ${path} refused: ${REFUSAL_TEXT[reason]}${detail ? ` (${detail})` : ''}`);
    this.path = path;
    this.reason = reason;
    this.detail = detail;
  }
}

/** Folders files may be read from: real paths (links resolved). Make it with {@link datasetRoots}. */
export interface DatasetRoots {
  /** The roots' real paths, each once. */
  readonly dirs: readonly string[];
}

/** The caps a read checks: `maxImagePixels` of src/limits.ts. */
export type RootLimits = Pick<Limits, 'maxImagePixels'>;

/**
 * Where a named file is: an image file (`kind: 'file'`, its `path`), or an image of an IDX file
 * (`kind: 'idx'`, the IDX `file` and the image's `index` in it). Paths are real paths.
 */
export type DatasetFileLocation = { kind: 'file'; path: string } | { kind: 'idx'; file: string; index: number };

/**
 * A file read and checked: an image file (`kind: 'file'`) with its real `path`, its `bytes` (to
 * copy or decode), the `format` its signature shows and its `width` × `height`; or an IDX image
 * (`kind: 'idx'`) with the IDX `file`, its `index` there, its grey `pixels` (row-major, one byte
 * each) and its `width` × `height`.
 */
export type DatasetFileContent =
  | { kind: 'file'; path: string; bytes: Buffer; format: ImageFormat; width: number; height: number }
  | { kind: 'idx'; file: string; index: number; pixels: Uint8Array; width: number; height: number };

/** Options of {@link locateDatasetFile} and {@link readDatasetFile}. */
export interface RootReadOptions {
  /** Folder relative paths are resolved from (default the working directory). */
  base?: string;
  /** Caps to check; default `DEFAULT_LIMITS`. */
  limits?: RootLimits;
  /** Parsed IDX files by real path, shared across calls (an IDX file holds many images). */
  idxCache?: Map<string, IdxArray>;
}

/** Bytes per pixel of the widest layout the diagnosis decodes (16-bit RGBA), and room for metadata. */
const BYTES_PER_PIXEL = 8;
const METADATA_BYTES = 1024 * 1024;

/** The largest file an image within `maxImagePixels` can be: anything bigger is refused unread. */
export function maxImageFileBytes(maxImagePixels: number): number {
  return maxImagePixels * BYTES_PER_PIXEL + METADATA_BYTES;
}

/**
 * The operator's folders as {@link DatasetRoots}. `label` names them in errors (e.g. `--root`).
 * @throws NotFoundError if a folder does not exist; BadRequestError if it is not a folder
 */
export async function datasetRoots(dirs: readonly string[], label = 'dataset root'): Promise<DatasetRoots> {
  const out: string[] = [];
  for (const d of dirs) {
    const real = await realpath(resolve(d)).catch((e: NodeJS.ErrnoException) => {
      throw new NotFoundError(`${label} ${d}: ${e.code === 'ENOENT' ? 'folder does not exist' : e.message}`, { cause: e });
    });
    if (!(await stat(real)).isDirectory()) throw new BadRequestError(`${label} ${d}: not a folder`);
    if (!out.includes(real)) out.push(real);
  }
  return { dirs: out };
}

/** `p` with symbolic links resolved, also when its last parts do not exist (yet). */
export async function realPathLoose(p: string): Promise<string> {
  let head = resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail);
    } catch {
      const up = dirname(head);
      if (up === head) return join(head, ...tail);
      tail.unshift(basename(head));
      head = up;
    }
  }
}

/** Whether `child` is `parent` or lies below it (both absolute, links resolved). */
export function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * The real path of the regular file `path` names, when it lies inside `roots`.
 * @throws RefusedFileError (`outside_roots`, `not_a_file`); NotFoundError when it is inside a root
 *   but does not exist
 */
export async function resolveInRoots(roots: DatasetRoots, path: string, options: Pick<RootReadOptions, 'base'> = {}): Promise<string> {
  const abs = resolve(options.base ?? process.cwd(), path);
  const real = await realPathLoose(abs);
  if (!roots.dirs.some((r) => isInside(real, r))) {
    const where = roots.dirs.length ? roots.dirs.join(', ') : 'none given';
    throw new RefusedFileError(path, 'outside_roots', `${real === path ? '' : `resolves to ${real}; `}roots: ${where}`);
  }
  const info = await stat(real).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new NotFoundError(`File ${path} does not exist`, { cause: e });
    throw new BadRequestError(`File ${path} cannot be read: ${e.message}`, { cause: e });
  });
  if (!info.isFile()) throw new RefusedFileError(path, 'not_a_file', info.isDirectory() ? 'a folder' : 'a device, pipe or socket');
  return real;
}

/**
 * Where the file `key` names lies, checked against `roots` without reading it: an image file, or
 * (for `file#index` when no file has that name) an image of an IDX file.
 * @throws RefusedFileError; NotFoundError when it is inside a root but missing
 */
export async function locateDatasetFile(roots: DatasetRoots, key: string, options: Pick<RootReadOptions, 'base'> = {}): Promise<DatasetFileLocation> {
  const idx = parseIdxPath(key);
  try {
    return { kind: 'file', path: await resolveInRoots(roots, key, options) };
  } catch (e) {
    if (!idx || !(e instanceof NotFoundError || (e instanceof RefusedFileError && e.reason === 'outside_roots'))) throw e;
  }
  try {
    return { kind: 'idx', file: await resolveInRoots(roots, idx.file, options), index: idx.index };
  } catch (e) {
    // name the key the input gave, not its IDX part
    if (e instanceof RefusedFileError) throw new RefusedFileError(key, e.reason, e.detail);
    throw e;
  }
}

async function readCapped(handle: FileHandle, path: string, cap: number, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, cap + 1 - total));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, total);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
    if (total > cap) throw tooLarge(path, `more than ${cap} bytes`, cap, limit);
  }
}

function tooLarge(path: string, size: string, cap: number, limit: number): RefusedFileError {
  return new RefusedFileError(path, 'over_pixel_cap', `${size}: larger than an image of ${limit} pixels can be (${cap} bytes; maxImagePixels, raise it with FLAME_MAX_IMAGE_PIXELS)`);
}

function pixelCap(path: string, width: number, height: number, limit: number): void {
  if (width * height > limit) {
    const over = overLimit(`${width}×${height} image`, `${width * height} pixels`, 'maxImagePixels', limit);
    throw new RefusedFileError(path, 'over_pixel_cap', over.message);
  }
}

async function readImageFile(path: string, real: string, limit: number): Promise<DatasetFileContent> {
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: the checked path must not have become a link; O_NONBLOCK: a pipe never blocks the open
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`File ${path} does not exist`, { cause: e });
    if (code === 'ELOOP') throw new RefusedFileError(path, 'not_a_file', 'it became a link while it was checked');
    throw new BadRequestError(`File ${path} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  let bytes: Buffer;
  let format: ImageFormat | undefined;
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new RefusedFileError(path, 'not_a_file', 'it changed while it was checked');
    const head = Buffer.alloc(IMAGE_SIGNATURE_BYTES);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    format = sniffImageFormat(head.subarray(0, bytesRead));
    if (!format) throw new RefusedFileError(path, 'not_an_image', 'no PNG, JPEG, WebP, GIF, TIFF or AVIF/HEIC signature');
    const cap = maxImageFileBytes(limit);
    // the size first, so an oversized file is refused unread; the capped read catches one that grows
    if (info.size > cap) throw tooLarge(path, `${info.size} bytes`, cap, limit);
    bytes = await readCapped(handle, path, cap, limit);
  } finally {
    await handle.close();
  }
  const input = { failOn: 'truncated' as const, limitInputPixels: limit };
  // the header alone, uncapped, so that an image over the cap is refused with the cap's own message
  const meta = await sharp(bytes, { limitInputPixels: false })
    .metadata()
    .catch((e: Error) => {
      throw new RefusedFileError(path, 'not_an_image', `its header does not parse: ${e.message}`);
    });
  if (meta.format !== format) throw new RefusedFileError(path, 'not_an_image', `its signature says ${format}, its header ${meta.format ?? 'nothing'}`);
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  pixelCap(path, width, height, limit);
  // the whole first frame decodes (streamed: statistics need no pixel buffer)
  await sharp(bytes, input)
    .stats()
    .catch((e: Error) => {
      throw new RefusedFileError(path, 'not_an_image', `it does not decode: ${e.message}`);
    });
  return { kind: 'file', path: real, bytes, format, width, height };
}

async function readIdxImage(key: string, file: string, index: number, limit: number, cache?: Map<string, IdxArray>): Promise<DatasetFileContent> {
  let idx = cache?.get(file);
  if (!idx) {
    idx = await readIdx(file).catch((e: Error) => {
      if (e instanceof NotFoundError) throw e;
      throw new RefusedFileError(key, 'not_an_image', e.message);
    });
    cache?.set(file, idx);
  }
  if (idx.type !== 'ubyte' || idx.dims.length !== 3) throw new RefusedFileError(key, 'not_an_image', `the IDX file holds ${idx.dims.length}-D ${idx.type} data, not images (3-D ubyte)`);
  const [count, rows, cols] = idx.dims;
  if (index >= count) throw new NotFoundError(`File ${key}: the IDX file has no image ${index} (${count} images)`);
  pixelCap(key, cols, rows, limit);
  const pixels = Uint8Array.from(idx.data.subarray(index * rows * cols, (index + 1) * rows * cols) as Uint8Array);
  return { kind: 'idx', file, index, pixels, width: cols, height: rows };
}

/**
 * Read the file `key` names when it is an image inside `roots`: its checked bytes (a file) or
 * grey pixels (an image of an IDX file). Non-images are refused after reading
 * {@link IMAGE_SIGNATURE_BYTES} of them; files larger than an image within the pixel cap can be are
 * refused unread past that cap; the header's pixel count is checked before decoding.
 * @throws RefusedFileError naming the path and why; NotFoundError when it is inside a root but missing
 */
export async function readDatasetFile(roots: DatasetRoots, key: string, options: RootReadOptions = {}): Promise<DatasetFileContent> {
  const limit = options.limits?.maxImagePixels ?? DEFAULT_LIMITS.maxImagePixels;
  const where = await locateDatasetFile(roots, key, options);
  return where.kind === 'file' ? readImageFile(key, where.path, limit) : readIdxImage(key, where.file, where.index, limit, options.idxCache);
}
