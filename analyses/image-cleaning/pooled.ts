/**
 * Dataset-level mean/std recomputed from the files a dataset holds, without their pixels.
 *
 * A file with per-channel mean m and population std s over n = width × height pixels has the sums
 * Σx = n·m and Σx² = n·(s² + m²). Summing those over the files and applying
 * `meanStd` of src/images gives the pooled mean and population std of every pixel of every file —
 * exact up to floating-point rounding, the same as decoding the files again. Files with differing
 * channel counts pool as src/images/pooling.ts documents (grey counts in R, G and B; no alpha is
 * opaque).
 */
import { meanStd, mergeSums } from 'flame-sdk/images';
import type { ChannelSums, ClassFiles, Dataset, DatasetFile } from 'flame-sdk/images';

/** The channel sums of one file from its mean, std and pixel count (width × height). */
export function fileSums(f: Pick<DatasetFile, 'channels' | 'width' | 'height' | 'mean' | 'std_dev'>): ChannelSums {
  const n = f.width * f.height;
  return {
    channels: f.channels,
    pixel_count: n,
    sum: f.mean.map((m) => n * m),
    sum_sq: f.mean.map((m, c) => n * (f.std_dev[c] * f.std_dev[c] + m * m)),
  };
}

/**
 * Pooled per-channel mean/std of the files of `classFiles` (empty arrays when there are none).
 *
 * @property __type.mean Per-channel mean over every pixel of every file, 0–1 scale.
 * @property __type.std_dev Per-channel population standard deviation, 0–1 scale.
 */
export function pooledStats(classFiles: Record<string, ClassFiles>): { mean: number[]; std_dev: number[] } {
  const sums: ChannelSums[] = [];
  for (const files of Object.values(classFiles)) for (const f of Object.values(files)) sums.push(fileSums(f));
  return meanStd(mergeSums(sums));
}

/** A seed-000 dataset of `classes` (each with an entry, possibly empty) and files, stats pooled. */
export function buildDataset(classes: readonly string[], classFiles: Record<string, ClassFiles>): Dataset {
  const out: Record<string, ClassFiles> = {};
  for (const c of classes) out[c] = classFiles[c] ?? {};
  return { classes: [...classes], ...pooledStats(out), class_files: out };
}
