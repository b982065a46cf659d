/**
 * What the worker reads from disk and keeps: image files below a path, decoded to a model's input
 * shape, and the training set of labelled samples (one feature vector per file path).
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { mapConcurrent } from '../../src/images/concurrency.js';
import { IMAGE_EXTENSIONS } from '../../src/images/dataset.js';
import { decodeImage } from '../../src/images/decode.js';
import { type ImageBatch, type ImageShape, fitBatch } from '../../src/ml/pixels.js';

/** Whether a folder entry is read as an image: a known image extension, not a hidden file. */
export function isImageFileName(name: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(name).toLowerCase()) && !basename(name).startsWith('.');
}

/**
 * Image files at any depth below `dir`, sorted by path. Symlinks are followed to files but not
 * into directories (no cycles). Files without an image extension and hidden files are left out.
 */
export async function listImageFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    const entries: Dirent[] = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!e.name.startsWith('.')) await walk(p);
      } else if (isImageFileName(e.name)) {
        if (e.isFile() || (e.isSymbolicLink() && (await stat(p).then((s) => s.isFile(), () => false)))) out.push(p);
      }
    }
  }
  await walk(dir);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Decodes one image file to planar 0–1 floats of `shape` (channels converted, bilinear resize).
 * An image over `maxPixels` (width × height from its header) is refused before decoding.
 */
export async function readImageAs(path: string, shape: ImageShape, maxPixels?: number): Promise<Float32Array> {
  const img = await decodeImage(path, undefined, { maxPixels });
  // Alpha is dropped: grey+alpha → grey, RGBA → RGB.
  const channels = img.channels === 2 ? 1 : img.channels === 4 ? 3 : img.channels;
  const plane = img.width * img.height;
  const data = new Float32Array(channels * plane);
  const scale = 1 / img.maxValue;
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < plane; p++) data[c * plane + p] = img.pixels[p * img.channels + c] * scale;
  }
  return fitBatch({ count: 1, channels, height: img.height, width: img.width, data }, shape).data;
}

/** Decodes files into one batch of `shape`, `concurrency` at a time; the first failure rejects. */
export async function readImageBatch(paths: readonly string[], shape: ImageShape, concurrency = 4, maxPixels?: number): Promise<ImageBatch> {
  const size = shape.channels * shape.height * shape.width;
  const data = new Float32Array(paths.length * size);
  const results = await mapConcurrent(paths, concurrency, async (p, i) => data.set(await readImageAs(p, shape, maxPixels), i * size));
  const failed = results.find((r) => !r.ok);
  if (failed && !failed.ok) throw failed.error;
  return { count: paths.length, ...shape, data };
}

/** A labelled sample as the training set keeps it. */
export interface Sample {
  /** Index into the model's classes. */
  label: number;
  features: Float32Array;
}

/**
 * The worker's training set, keyed by absolute file path: loading a file again replaces its label
 * and features. `version` changes with every change, so a model knows when it is stale.
 */
export class SampleStore {
  private readonly samples = new Map<string, Sample>();
  private changes = 0;

  /** Number of samples. */
  get size(): number {
    return this.samples.size;
  }

  /** Increases with every {@link addAll}; equal versions mean equal training sets. */
  get version(): number {
    return this.changes;
  }

  /** Adds (or replaces) samples all at once, so a failed request leaves nothing behind. */
  addAll(entries: Iterable<[string, Sample]>): void {
    for (const [path, sample] of entries) this.samples.set(path, sample);
    this.changes++;
  }

  /** Every sample as one row-major `n × dim` feature matrix and its labels, in insertion order. */
  snapshot(dim: number): { features: Float32Array; labels: Int32Array; version: number } {
    const features = new Float32Array(this.samples.size * dim);
    const labels = new Int32Array(this.samples.size);
    let i = 0;
    for (const s of this.samples.values()) {
      features.set(s.features, i * dim);
      labels[i++] = s.label;
    }
    return { features, labels, version: this.changes };
  }

  /** Sample count per class index. */
  countsPerClass(classes: number): number[] {
    const counts = new Array<number>(classes).fill(0);
    for (const s of this.samples.values()) counts[s.label]++;
    return counts;
  }
}
