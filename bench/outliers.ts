/**
 * The `outliers` task of the federated diagnosis on held-out Fashion-MNIST: `--n` images of the
 * training split (from `--offset`; the planted test, test/analyses/image-diagnosis-checks.test.ts,
 * uses the t10k split) spread round-robin over 3 simulated nodes, with `--plants` out-of-distribution
 * images of each kind planted among them:
 *
 *   uniform   uniform noise
 *   gaussian  Gaussian noise around mid-grey
 *   gradient  a linear grey ramp in a random direction
 *   checker   a checkerboard of random cell size
 *   text      a rendered word (DejaVu Sans, via sharp's SVG), white on black or black on white
 *   inverted  a Fashion-MNIST image of the split (not otherwise used), inverted (255 − v)
 *
 * Prints precision and recall over every plant and the recall per kind, and, unless `--no-pooled`,
 * whether the federated run (minimum count 1) flags the same files as the pooled one.
 *
 *   npx tsx bench/outliers.ts [--n 3000] [--plants 20] [--offset 20000] [--seed 5] [--no-pooled]
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { diagnose, type DiagnosisResult } from '../analyses/image-diagnosis/index.js';
import { datasetFromFolder, mergeSums, meanStd, readIdxImageSet, type Dataset } from '../src/images/index.js';
import { SeededRandom } from '../src/ml/random.js';
import { FASHION_MNIST_DIR } from './fashion-mnist.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '3000' },
    plants: { type: 'string', default: '20' },
    offset: { type: 'string', default: '20000' },
    seed: { type: 'string', default: '5' },
    'no-pooled': { type: 'boolean', default: false },
  },
});
const N = Number(args.n);
const PLANTS = Number(args.plants);
const OFFSET = Number(args.offset);
const NODES = ['node-a', 'node-b', 'node-c'];
const CLASSES = ['T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle-boot'];
const KINDS = ['uniform', 'gaussian', 'gradient', 'checker', 'text', 'inverted'] as const;
type Kind = (typeof KINDS)[number];
const WORDS = ['FLAME', 'hello', 'x-ray', 'Node 7', 'PATIENT', 'ok', 'scan 12', 'L R', 'abc', 'Test'];

const rng = new SeededRandom(Number(args.seed));
const rand = (): number => rng.next();
const set = await readIdxImageSet(path.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'), path.join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'));
const s = set.rows;
const grey = (i: number): Buffer => Buffer.from(set.images.subarray(i * s * s, (i + 1) * s * s));

async function plant(kind: Kind, k: number): Promise<Buffer> {
  const px = Buffer.alloc(s * s);
  if (kind === 'text') {
    const [fg, bg] = rand() < 0.5 ? ['white', 'black'] : ['black', 'white'];
    const word = WORDS[k % WORDS.length];
    const size = 7 + Math.floor(rand() * 6);
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${s}" height="${s}"><rect width="100%" height="100%" fill="${bg}"/><text x="${1 + Math.floor(rand() * 4)}" y="${12 + Math.floor(rand() * 10)}" font-family="DejaVu Sans" font-size="${size}" fill="${fg}">${word}</text></svg>`;
    return sharp(Buffer.from(svg)).greyscale().raw().toBuffer();
  }
  if (kind === 'inverted') {
    const src = grey(OFFSET + N + k);
    for (let p = 0; p < s * s; p++) px[p] = 255 - src[p];
    return px;
  }
  const cell = 2 + Math.floor(rand() * 5);
  const angle = rand() * 2 * Math.PI;
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      let v: number;
      if (kind === 'uniform') v = rand() * 256;
      else if (kind === 'gaussian') v = 128 + 50 * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      else if (kind === 'gradient') v = 128 + 127 * (((x - s / 2) * Math.cos(angle) + (y - s / 2) * Math.sin(angle)) / (s / 2));
      else v = ((Math.floor(x / cell) + Math.floor(y / cell)) % 2) * 255;
      px[y * s + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return px;
}

const tmp = await mkdtemp(path.join(os.tmpdir(), 'bench-outliers-'));
try {
  const planted = new Map<string, Kind>();
  const write = async (k: number, label: string, name: string, px: Buffer): Promise<string> => {
    const dir = path.join(tmp, NODES[k % NODES.length], label);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, name);
    await sharp(px, { raw: { width: s, height: s, channels: 1 } }).png().toFile(file);
    return file;
  };
  for (let i = 0; i < N; i++) await write(i, CLASSES[set.labels[OFFSET + i]], `img-${i}.png`, grey(OFFSET + i));
  let k = 0;
  for (const kind of KINDS) {
    for (let j = 0; j < PLANTS; j++, k++) planted.set(await write(k, CLASSES[Math.floor(rand() * CLASSES.length)], `ood-${kind}-${j}.png`, await plant(kind, j)), kind);
  }
  const request = { dataset_uuid: 'bench-outliers', tasks: [{ name: 'outliers' as const }] };
  const t0 = performance.now();
  const fed = await diagnose(request, { nodes: NODES.map((id) => ({ id, data: { folder: path.join(tmp, id) } })), projections: false, disclosure: { minCount: 1 } });
  const seconds = (performance.now() - t0) / 1000;
  const flaggedOf = (r: DiagnosisResult): Set<string> => new Set(Object.values(r.tasks[0].datasets.outliers.class_files).flatMap((f) => Object.values(f).map((x) => x.path!)));
  const flagged = flaggedOf(fed);
  const hits = [...flagged].filter((p) => planted.has(p)).length;
  const precision = flagged.size ? hits / flagged.size : 1;
  const recall = hits / planted.size;
  console.log(`${N} clean + ${planted.size} plants over ${NODES.length} nodes, ${seconds.toFixed(1)} s: ${flagged.size} flagged, precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)}`);
  console.log(KINDS.map((kind) => `${kind} ${[...planted].filter(([p, kd]) => kd === kind && flagged.has(p)).length}/${PLANTS}`).join(', '));
  if (!args['no-pooled']) {
    const builds = await Promise.all(NODES.map((n) => datasetFromFolder(path.join(tmp, n))));
    const classes = [...new Set(builds.flatMap((b) => b.dataset.classes))].sort();
    const class_files = Object.fromEntries(classes.map((c) => [c, Object.assign({}, ...builds.map((b) => b.dataset.class_files[c] ?? {}))]));
    const dataset: Dataset = { classes, ...meanStd(mergeSums(builds.map((b) => b.sums))), class_files };
    const pooled = flaggedOf(await diagnose({ ...request, auto: false, dataset }, { projections: false, disclosure: { minCount: 1 } }));
    const same = pooled.size === flagged.size && [...pooled].every((p) => flagged.has(p));
    console.log(`pooled (1 node): ${pooled.size} flagged, ${same ? 'the same files' : 'DIFFERENT files'} as federated`);
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
