/**
 * Per-image statistics over a folder of images: our `imageStats` (metadata + one raw decode + one
 * pass over the pixels) against bare sharp doing a raw decode of the same files, and against
 * sharp's `.stats()`, with the same concurrency in the same run. Also the whole
 * `datasetFromFolder` (listing, stats, uuids, pooling). Prints images/s and ratios to the bare decode
 * (target for imageStats: >= 0.8).
 *
 * Set 1: Fashion-MNIST test images (grey 28x28 PNG) written from Debian's `dataset-fashion-mnist`
 * IDX files, or generated grey images of the same size if the package is missing.
 * Set 2: generated RGB 512x384 JPEGs (larger images, where the pixel loop matters more).
 *
 *   npx tsx bench/images.ts [--count 5000] [--large 200] [--concurrency 4] [--rounds 3]
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { mapConcurrent } from '../src/images/concurrency.js';
import { classFolderName, datasetFromFolder } from '../src/images/dataset.js';
import { FASHION_MNIST_CLASSES, readIdxImageSet } from '../src/images/idx.js';
import { imageStats } from '../src/images/metadata.js';

const FMNIST = '/usr/share/datasets/fashion-mnist';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: expected a positive integer, got ${process.argv[i + 1]}`);
  return n;
}

const COUNT = arg('count', 5000);
const LARGE = arg('large', 200);
const CONCURRENCY = arg('concurrency', 4);
const ROUNDS = arg('rounds', 3);

/** Write `count` grey 28x28 PNGs into `root/<class>/<i>.png`; Fashion-MNIST if installed. */
async function writeSmallSet(root: string, count: number): Promise<{ files: string[]; source: string }> {
  const files: string[] = [];
  const images = join(FMNIST, 't10k-images-idx3-ubyte.gz');
  let source: string;
  let pixelsOf: (i: number) => Uint8Array;
  let classOf: (i: number) => string;
  if (existsSync(images)) {
    const set = await readIdxImageSet(images, join(FMNIST, 't10k-labels-idx1-ubyte.gz'));
    source = `Fashion-MNIST t10k (${FMNIST})`;
    pixelsOf = (i) => set.images.subarray((i % set.count) * 784, ((i % set.count) + 1) * 784);
    classOf = (i) => classFolderName(FASHION_MNIST_CLASSES[set.labels[i % set.count]]);
  } else {
    source = 'generated grey 28x28 (dataset-fashion-mnist not installed)';
    pixelsOf = (i) => Uint8Array.from({ length: 784 }, (_, j) => ((j % 28) * (i % 13) + (j >> 5) * 7 + i) % 256);
    classOf = (i) => `class-${i % 10}`;
  }
  for (let i = 0; i < count; i++) {
    const dir = join(root, classOf(i));
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${i}.png`);
    await sharp(pixelsOf(i), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toFile(file);
    files.push(file);
  }
  return { files, source };
}

/** Write `count` RGB 512x384 JPEGs (smooth gradients with noise) into `root/<class>/`. */
async function writeLargeSet(root: string, count: number): Promise<string[]> {
  const w = 512;
  const h = 384;
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const px = new Uint8Array(w * h * 3);
    for (let p = 0, k = 0; p < w * h; p++) {
      const x = p % w;
      const y = (p / w) | 0;
      px[k++] = (x + i * 3) & 255;
      px[k++] = (y + i * 5) & 255;
      px[k++] = ((x ^ y) + i) & 255;
    }
    const dir = join(root, `class-${i % 4}`);
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${i}.jpg`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 85 }).toFile(file);
    files.push(file);
  }
  return files;
}

type Variant = { name: string; run: (files: string[]) => Promise<unknown> };

const each = (fn: (f: string) => Promise<unknown>) => async (files: string[]) => {
  const r = await mapConcurrent(files, CONCURRENCY, fn);
  const failed = r.filter((x) => !x.ok).length;
  if (failed) throw new Error(`${failed} files failed`);
};

function variants(root: string): Variant[] {
  return [
    { name: 'bare sharp raw decode', run: each((f) => sharp(f).raw().toBuffer({ resolveWithObject: true })) },
    { name: 'imageStats (ours)', run: each((f) => imageStats(f)) },
    { name: 'sharp .stats()', run: each((f) => sharp(f).stats()) },
    {
      name: 'datasetFromFolder (ours)',
      run: async () => {
        const b = await datasetFromFolder(root, { concurrency: CONCURRENCY });
        if (b.skipped.length) throw new Error(`${b.skipped.length} skipped`);
      },
    },
  ];
}

/** Run every variant `ROUNDS` times, interleaved, after one warm-up; best round per variant. */
async function measure(label: string, root: string, files: string[]): Promise<void> {
  const vs = variants(root);
  for (const v of vs) await v.run(files.slice(0, Math.min(200, files.length)));
  const best = new Map<string, number>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of vs) {
      const t0 = performance.now();
      await v.run(files);
      const ms = performance.now() - t0;
      best.set(v.name, Math.min(best.get(v.name) ?? Infinity, ms));
    }
  }
  const bare = best.get(vs[0].name)!;
  console.log(`\n${label}: ${files.length} images, concurrency ${CONCURRENCY}, best of ${ROUNDS} rounds`);
  const rows = vs.map((v) => {
    const ms = best.get(v.name)!;
    return [v.name, (files.length / (ms / 1000)).toFixed(0), ms.toFixed(0), (bare / ms).toFixed(2)];
  });
  const head = ['variant', 'images/s', 'ms', 'ratio vs bare raw decode'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'flame-bench-images-'));
  try {
    console.log(`sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}, sharp.concurrency() = ${sharp.concurrency()}, UV_THREADPOOL_SIZE = ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`);
    const small = join(tmp, 'small');
    const { files, source } = await writeSmallSet(small, COUNT);
    await measure(`Set 1: ${source}, grey 28x28 PNG`, small, files);
    const large = join(tmp, 'large');
    const big = await writeLargeSet(large, LARGE);
    await measure('Set 2: generated RGB 512x384 JPEG', large, big);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
