/**
 * Make the shipped sample dataset `data/sample/` from Debian's `dataset-fashion-mnist` package:
 * 300 training images (30 per class) split over three nodes, with known label flips and lighting
 * faults, so the diagnosis analyses have a ground truth (`data/sample/truth.json`) to be checked
 * against. Deterministic: a fixed seed, so rerunning gives the same files.
 *
 *   apt-get install dataset-fashion-mnist && npx tsx scripts/make-sample.ts [outDir]
 *
 * Only this script needs the Debian files; the repo and its tests use the committed output.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { classFolderName } from '../src/images/dataset.js';
import { FASHION_MNIST_CLASSES, readIdxImageSet } from '../src/images/idx.js';
import { SeededRandom } from '../src/ml/random.js';

const SOURCE = '/usr/share/datasets/fashion-mnist';
// SAMPLE_SEED draws another sample the same way (scripts/measure-cleaning.ts measures on such held-out ones)
const SEED = Number(process.env.SAMPLE_SEED ?? 20_26_11_25);
const PER_CLASS = 30;
const NODES = ['node-a', 'node-b', 'node-c'];
const FLIP_RATE = 0.08;
const LIGHTING_RATE = 0.05;

/** Uniform numbers in [0, 1) from a seed (the SDK's mulberry32), so the sample does not depend on Math.random. */
function prng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

function shuffle<T>(items: T[], rnd: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

interface Pick {
  index: number;
  trueClass: number;
  givenClass: number;
  node: string;
  lighting?: 'darkened' | 'brightened';
}

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? 'data/sample');
  const set = await readIdxImageSet(join(SOURCE, 'train-images-idx3-ubyte.gz'), join(SOURCE, 'train-labels-idx1-ubyte.gz'));
  const rnd = prng(SEED);
  // Folder names double as class names: no '/' (T-shirt/top) and no spaces (Ankle boot), for shells.
  const classes = FASHION_MNIST_CLASSES.map((c) => classFolderName(c).replace(/\s+/g, '-'));

  // 30 random images per class, 10 of each class to each node.
  const picks: Pick[] = [];
  for (let c = 0; c < classes.length; c++) {
    const ofClass = [];
    for (let i = 0; i < set.count; i++) if (set.labels[i] === c) ofClass.push(i);
    shuffle(ofClass, rnd)
      .slice(0, PER_CLASS)
      .sort((a, b) => a - b)
      .forEach((index, k) => picks.push({ index, trueClass: c, givenClass: c, node: NODES[k % NODES.length] }));
  }

  // Disjoint faults: the first ~8% of a shuffled order get a wrong label, the next ~5% bad lighting.
  const order = shuffle(picks, rnd);
  const flips = Math.round(picks.length * FLIP_RATE);
  const lit = Math.round(picks.length * LIGHTING_RATE);
  order.slice(0, flips).forEach((p) => {
    p.givenClass = (p.trueClass + 1 + Math.floor(rnd() * (classes.length - 1))) % classes.length;
  });
  order.slice(flips, flips + lit).forEach((p, k) => (p.lighting = k % 2 === 0 ? 'darkened' : 'brightened'));

  for (const node of NODES) await rm(join(out, node), { recursive: true, force: true });
  const size = set.rows * set.cols;
  const truth = {
    source: 'Fashion-MNIST training set (Debian package dataset-fashion-mnist), train-images-idx3-ubyte.gz',
    seed: SEED,
    classes,
    nodes: Object.fromEntries(NODES.map((n) => [n, picks.filter((p) => p.node === n).length])),
    files: picks.length,
    flipped: [] as Array<{ path: string; true_class: string; labelled_class: string }>,
    darkened: [] as string[],
    brightened: [] as string[],
  };
  for (const p of picks) {
    const rel = `${p.node}/${classes[p.givenClass]}/${p.index}.png`;
    const px = Uint8Array.from(set.images.subarray(p.index * size, (p.index + 1) * size));
    // Darkened: 30% of the light. Brightened: lifted to a grey floor of 150 (a washed-out exposure).
    if (p.lighting === 'darkened') for (let i = 0; i < size; i++) px[i] = Math.round(px[i] * 0.3);
    if (p.lighting === 'brightened') for (let i = 0; i < size; i++) px[i] = Math.round(150 + px[i] * (105 / 255));
    await mkdir(join(out, p.node, classes[p.givenClass]), { recursive: true });
    await sharp(px, { raw: { width: set.cols, height: set.rows, channels: 1 } })
      .toColourspace('b-w')
      .png({ compressionLevel: 9 })
      .toFile(join(out, rel));
    if (p.givenClass !== p.trueClass) {
      truth.flipped.push({ path: rel, true_class: classes[p.trueClass], labelled_class: classes[p.givenClass] });
    }
    if (p.lighting) truth[p.lighting].push(rel);
  }
  const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  truth.flipped.sort((a, b) => byPath(a.path, b.path));
  truth.darkened.sort(byPath);
  truth.brightened.sort(byPath);
  await writeFile(join(out, 'truth.json'), JSON.stringify(truth, null, 2) + '\n');
  process.stdout.write(
    `Wrote ${picks.length} images to ${out}: ${truth.flipped.length} flipped, ` +
      `${truth.darkened.length} darkened, ${truth.brightened.length} brightened\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
