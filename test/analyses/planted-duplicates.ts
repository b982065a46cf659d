/**
 * Planted near-duplicates on real Fashion-MNIST images (Debian's dataset-fashion-mnist): a slice of
 * distinct training images written as PNGs, plus copies of some of them made the ways copies arise
 * in practice — re-encoded as JPEG, resized, cropped by 1–2 px, brightened — each copy remembering
 * its original. Shared by the duplicates test and the measurement in EXPERIMENTS.md.
 */
import sharp from 'sharp';
import { FASHION_MNIST_CLASSES, readIdxImageSet } from '../../src/images/idx.js';

/** Where Debian's package puts Fashion-MNIST. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** How a copy was made. */
export type CopyKind = 'jpeg' | 'resize-up' | 'resize-down' | 'crop' | 'brighten';

/** The copy kinds, in the order {@link plantedSet} cycles through them. */
export const COPY_KINDS: readonly CopyKind[] = ['jpeg', 'resize-up', 'resize-down', 'crop', 'brighten'];

/** One image of the planted set, encoded. */
export interface PlantedImage {
  /** `<training index>` for originals, `<index>-<kind>` for copies. */
  name: string;
  /** Fashion-MNIST class name. */
  cls: string;
  /** PNG or JPEG bytes. */
  bytes: Buffer;
  /** File extension matching the bytes. */
  ext: 'png' | 'jpg';
  /** For a copy: the `name` of its original. */
  copyOf?: string;
  /** For a copy: how it was made. */
  kind?: CopyKind;
}

/** A copy of one 28×28 grey image, made as `kind` says. */
async function makeCopy(px: Buffer, kind: CopyKind, variant: number): Promise<{ bytes: Buffer; ext: 'png' | 'jpg' }> {
  const img = () => sharp(px, { raw: { width: 28, height: 28, channels: 1 } });
  switch (kind) {
    case 'jpeg':
      return { bytes: await img().jpeg({ quality: 75 + (variant % 3) * 10 }).toBuffer(), ext: 'jpg' };
    case 'resize-up':
      return { bytes: await img().resize(42 + (variant % 3) * 7, 42 + (variant % 3) * 7).png().toBuffer(), ext: 'png' };
    case 'resize-down':
      return { bytes: await img().resize(24 - (variant % 2) * 2, 24 - (variant % 2) * 2).png().toBuffer(), ext: 'png' };
    case 'crop': {
      const c = 1 + (variant % 2); // 1 or 2 px
      const left = variant % 4 < 2 ? c : 0;
      const top = variant % 3 === 0 ? c : 0;
      return { bytes: await img().extract({ left, top, width: 28 - c, height: 28 - c }).png().toBuffer(), ext: 'png' };
    }
    case 'brighten':
      return { bytes: await img().linear(1.1, 12 + (variant % 3) * 6).png().toBuffer(), ext: 'png' };
  }
}

/**
 * `originals` distinct training images starting at `offset` (all classes, in file order) and one
 * copy of every `copyEvery`-th of them, the copy kinds cycling through {@link COPY_KINDS}.
 */
export async function plantedSet(options: { offset: number; originals: number; copyEvery: number }): Promise<PlantedImage[]> {
  const set = await readIdxImageSet(`${FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`, `${FASHION_MNIST_DIR}/train-labels-idx1-ubyte.gz`);
  const out: PlantedImage[] = [];
  const copies: PlantedImage[] = [];
  for (let k = 0; k < options.originals; k++) {
    const index = options.offset + k;
    const px = Buffer.from(set.images.subarray(index * 784, (index + 1) * 784));
    const cls = FASHION_MNIST_CLASSES[set.labels[index]];
    const name = String(index);
    out.push({ name, cls, bytes: await sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer(), ext: 'png' });
    if (k % options.copyEvery === 0) {
      const copyNo = copies.length;
      const kind = COPY_KINDS[copyNo % COPY_KINDS.length];
      const c = await makeCopy(px, kind, Math.floor(copyNo / COPY_KINDS.length));
      copies.push({ name: `${name}-${kind}`, cls, ...c, copyOf: name, kind });
    }
  }
  return [...out, ...copies];
}
