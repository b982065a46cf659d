/**
 * IDX files, the format of MNIST and Fashion-MNIST: a 4-byte magic (0, 0, element type, number of
 * dimensions), big-endian 32-bit dimension sizes, then the elements, big-endian. Gzipped files
 * (`.gz`, recognised by their content) are inflated transparently.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';
import { BadRequestError, NotFoundError } from '../errors.js';

const gunzip = promisify(gunzipCb);
const gzip = promisify(gzipCb);

/** Element types of IDX, by their type byte. */
export type IdxType = 'ubyte' | 'byte' | 'short' | 'int' | 'float' | 'double';

/** Typed array of an IDX file's elements. */
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A parsed IDX file: element type, dimension sizes (outermost first) and the elements, row-major. */
export interface IdxArray {
  /** Element type, from the magic number. */
  type: IdxType;
  /** Size of each dimension, outermost first. */
  dims: number[];
  /** The elements, row-major. */
  data: IdxData;
}

const TYPES: Record<number, { type: IdxType; size: number }> = {
  0x08: { type: 'ubyte', size: 1 },
  0x09: { type: 'byte', size: 1 },
  0x0b: { type: 'short', size: 2 },
  0x0c: { type: 'int', size: 4 },
  0x0d: { type: 'float', size: 4 },
  0x0e: { type: 'double', size: 8 },
};

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parse IDX bytes (already inflated). `name` labels the input in errors.
 * @throws BadRequestError on a bad magic, an unknown type, or a size that does not match the dims.
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  if (bytes.length < 4) throw new BadRequestError(`IDX file ${name} is too short (${bytes.length} bytes) for a header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new BadRequestError(`IDX file ${name} has a bad magic number (first two bytes must be 0)`);
  }
  const kind = TYPES[bytes[2]];
  if (!kind) throw new BadRequestError(`IDX file ${name} has unknown element type 0x${bytes[2].toString(16)}`);
  const ndims = bytes[3];
  if (ndims === 0) throw new BadRequestError(`IDX file ${name} declares 0 dimensions`);
  const header = 4 + 4 * ndims;
  if (bytes.length < header) {
    throw new BadRequestError(`IDX file ${name} is truncated inside its header (${ndims} dimensions declared)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const expected = header + count * kind.size;
  if (bytes.length !== expected) {
    const what = bytes.length < expected ? 'truncated' : 'longer than its header says';
    throw new BadRequestError(
      `IDX file ${name} is ${what}: dims ${dims.join('x')} of ${kind.type} need ${expected} bytes, found ${bytes.length}`,
    );
  }
  return { type: kind.type, dims, data: readElements(view, header, count, kind.type) };
}

function readElements(view: DataView, at: number, count: number, type: IdxType): IdxData {
  switch (type) {
    case 'ubyte':
      return new Uint8Array(view.buffer, view.byteOffset + at, count).slice();
    case 'byte':
      return new Int8Array(view.buffer, view.byteOffset + at, count).slice();
    case 'short': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(at + 2 * i, false);
      return out;
    }
    case 'int': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(at + 4 * i, false);
      return out;
    }
    case 'float': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i, false);
      return out;
    }
    case 'double': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(at + 8 * i, false);
      return out;
    }
  }
}

/**
 * Read an IDX file, gzipped or not.
 * @throws NotFoundError if it does not exist; BadRequestError if it is not valid (gzip or IDX).
 */
export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`IDX file ${path} does not exist`, { cause: err });
    }
    throw new BadRequestError(`Cannot read IDX file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (isGzip(bytes)) {
    try {
      bytes = await gunzip(bytes);
    } catch (err) {
      throw new BadRequestError(`IDX file ${path} is a corrupt gzip stream: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return parseIdx(bytes, path);
}

/** Encode unsigned bytes as IDX (type ubyte) with the given dimension sizes. */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (dims.length === 0 || dims.length > 255 || count !== data.length) {
    throw new BadRequestError(`IDX dims ${dims.join('x')} do not match ${data.length} elements`);
  }
  const out = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Write unsigned bytes as an IDX file; gzipped when `gzip` is true. */
export async function writeIdx(path: string, dims: number[], data: Uint8Array, options: { gzip?: boolean } = {}): Promise<void> {
  const raw = encodeIdx(dims, data);
  await writeFile(path, options.gzip ? await gzip(raw) : raw);
}

/** An IDX images/labels pair (MNIST layout): `count` grey images of `rows` x `cols`. */
export interface IdxImageSet {
  /** Number of images (and labels). */
  count: number;
  /** Image height in pixels. */
  rows: number;
  /** Image width in pixels. */
  cols: number;
  /** count × rows × cols grey bytes. */
  images: Uint8Array;
  /** One label byte per image. */
  labels: Uint8Array;
}

/**
 * Read and cross-check an MNIST-style pair: images must be 3-D ubyte, labels 1-D ubyte, same count.
 * @throws BadRequestError naming the offending file.
 */
export async function readIdxImageSet(imagesPath: string, labelsPath: string): Promise<IdxImageSet> {
  const [images, labels] = await Promise.all([readIdx(imagesPath), readIdx(labelsPath)]);
  if (images.type !== 'ubyte' || images.dims.length !== 3) {
    throw new BadRequestError(
      `IDX images file ${imagesPath} must hold 3-D ubyte data (count x rows x cols); it holds ${images.dims.length}-D ${images.type}`,
    );
  }
  if (labels.type !== 'ubyte' || labels.dims.length !== 1) {
    throw new BadRequestError(
      `IDX labels file ${labelsPath} must hold 1-D ubyte data; it holds ${labels.dims.length}-D ${labels.type}`,
    );
  }
  if (labels.dims[0] !== images.dims[0]) {
    throw new BadRequestError(
      `IDX labels file ${labelsPath} has ${labels.dims[0]} labels but ${imagesPath} has ${images.dims[0]} images`,
    );
  }
  const [count, rows, cols] = images.dims;
  return { count, rows, cols, images: images.data as Uint8Array, labels: labels.data as Uint8Array };
}

/** The ten class names of Fashion-MNIST, by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
