/** Dataset source (b): an IDX images/labels pair (MNIST format), with virtual paths per image. */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { BadRequestError } from '../errors.js';
import { DEFAULT_LIMITS } from '../limits.js';
import { assembleDataset, type DatasetBuild, type DatasetEntry, type DatasetOptions } from './dataset-assembly.js';
import { imageOverPixelLimit } from './decode.js';
import { readIdxImageSet } from './idx.js';
import { imageStatsFromPixels } from './metadata.js';

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
 * Parse a virtual IDX path made by {@link datasetFromIdx}: the images `file` and the image's
 * `index` in it, or undefined if `path` is not one.
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
  const maxPixels = options.maxImagePixels ?? DEFAULT_LIMITS.maxImagePixels;
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
        if (size > maxPixels) throw imageOverPixelLimit(virtual, set.cols, set.rows, maxPixels);
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
