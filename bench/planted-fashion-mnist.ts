/**
 * The planted Fashion-MNIST set of the diagnosis benches (bench/diagnosis.ts,
 * bench/diagnosis-processes.ts): `n` images of a split shuffled with SeededRandom(seed), labels
 * flipped with SeededRandom(seed + 1) (uniformly to another class, or within look-alike pairs),
 * and 5 % of images darkened (×0.3) or brightened (grey floor 150) with SeededRandom(seed + 2).
 * Same arguments, same images and truth.
 */
import { readIdxImageSet } from '../src/images/index.js';
import { SeededRandom } from '../src/ml/random.js';
import { FASHION_MNIST_DIR } from './fashion-mnist.js';

/** Pixels of one 28×28 image. */
export const SIZE = 28 * 28;
const CLASSES = 10;
/** Asymmetric noise flips within look-alike pairs: T-shirt ↔ shirt, pullover ↔ coat, sneaker ↔ ankle boot. */
const LOOK_ALIKE: Record<number, number> = { 0: 6, 6: 0, 2: 4, 4: 2, 7: 9, 9: 7 };

/** Options of {@link plantFashionMnist}. */
export interface PlantOptions {
  split: 'train' | 't10k';
  /** Images wanted (at most the split's count). */
  n: number;
  seed: number;
  noise: 'uniform' | 'asymmetric';
  /** Share of images (uniform) or of the look-alike classes' images (asymmetric) flipped. */
  noiseRate: number;
}

/** The planted set: images in their shuffled order, true and given labels, and the planted faults by index. */
export interface PlantedSet {
  n: number;
  /** n × 28 × 28 grey pixels, lighting faults applied. */
  images: Uint8Array;
  /** True label of each image. */
  truth: Uint8Array;
  /** Label the image is filed under (flipped ones differ from `truth`). */
  given: Uint8Array;
  /** Indices of flipped labels. */
  flipped: Set<number>;
  /** Indices of darkened or brightened images. */
  altered: Set<number>;
}

export async function plantFashionMnist(o: PlantOptions): Promise<PlantedSet> {
  const set = await readIdxImageSet(`${FASHION_MNIST_DIR}/${o.split}-images-idx3-ubyte.gz`, `${FASHION_MNIST_DIR}/${o.split}-labels-idx1-ubyte.gz`);
  const n = Math.min(o.n, set.count);
  const rng = new SeededRandom(o.seed);
  const pick = Int32Array.from({ length: set.count }, (_, i) => i);
  rng.shuffle(pick);
  const images = new Uint8Array(n * SIZE);
  const truth = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    images.set(set.images.subarray(pick[r] * SIZE, (pick[r] + 1) * SIZE), r * SIZE);
    truth[r] = set.labels[pick[r]];
  }
  const given = Uint8Array.from(truth);
  const flipped = new Set<number>();
  const altered = new Set<number>();
  const noise = new SeededRandom(o.seed + 1);
  for (let i = 0; i < n; i++) {
    if (o.noise === 'asymmetric') {
      const partner = LOOK_ALIKE[truth[i]];
      if (partner !== undefined && noise.next() < o.noiseRate) {
        given[i] = partner;
        flipped.add(i);
      }
    } else if (noise.next() < o.noiseRate) {
      given[i] = (truth[i] + 1 + noise.int(CLASSES - 1)) % CLASSES;
      flipped.add(i);
    }
  }
  const light = new SeededRandom(o.seed + 2);
  for (let i = 0; i < n; i++) {
    if (light.next() >= 0.05) continue;
    altered.add(i);
    const px = images.subarray(i * SIZE, (i + 1) * SIZE);
    const dark = light.next() < 0.5;
    for (let j = 0; j < SIZE; j++) px[j] = dark ? Math.round(px[j] * 0.3) : Math.round(150 + (px[j] * 105) / 255);
  }
  return { n, images, truth, given, flipped, altered };
}

/** Precision, recall and F1 of a flagged set against the planted faults. */
export interface Prf {
  flagged: number;
  precision: number;
  recall: number;
  f1: number;
}

/** {@link Prf} of `flagged` against `faulty` (indices into the planted set). */
export function prf(flagged: Set<number>, faulty: Set<number>): Prf {
  let tp = 0;
  for (const i of flagged) if (faulty.has(i)) tp++;
  const precision = tp / Math.max(1, flagged.size);
  const recall = tp / Math.max(1, faulty.size);
  return { flagged: flagged.size, precision, recall, f1: (2 * precision * recall) / Math.max(1e-12, precision + recall) };
}

/** One line of {@link Prf}. */
export const fmt = (m: Prf): string => `flagged ${String(m.flagged).padStart(6)}  P ${m.precision.toFixed(3)}  R ${m.recall.toFixed(3)}  F1 ${m.f1.toFixed(3)}`;
