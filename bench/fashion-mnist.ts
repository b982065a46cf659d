/**
 * Fashion-MNIST from Debian's `dataset-fashion-mnist` package (gzip'd IDX files), for benchmarks
 * only: `apt-get install dataset-fashion-mnist`. Tests make their own data instead.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { NotFoundError } from '../src/errors.js';

/** Where the Debian package puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Class names in label order. */
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function readIdx(path: string): { dims: number[]; data: Uint8Array } {
  let raw: Buffer;
  try {
    raw = gunzipSync(readFileSync(path));
  } catch (e) {
    throw new NotFoundError(`${path} cannot be read: apt-get install dataset-fashion-mnist`, { cause: e });
  }
  const rank = raw[3];
  const dims = Array.from({ length: rank }, (_, i) => raw.readUInt32BE(4 + 4 * i));
  return { dims, data: new Uint8Array(raw.buffer, raw.byteOffset + 4 + 4 * rank) };
}

/** The 60k training images as 0–1 floats (N×1×28×28) with their labels. */
export function loadFashionMnist(split: 'train' | 't10k' = 'train'): { images: Float32Array; labels: Int32Array; count: number } {
  const img = readIdx(`${FASHION_MNIST_DIR}/${split}-images-idx3-ubyte.gz`);
  const lab = readIdx(`${FASHION_MNIST_DIR}/${split}-labels-idx1-ubyte.gz`);
  const count = img.dims[0];
  const images = new Float32Array(count * 28 * 28);
  for (let i = 0; i < images.length; i++) images[i] = img.data[i] / 255;
  return { images, labels: Int32Array.from(lab.data.subarray(0, count)), count };
}
