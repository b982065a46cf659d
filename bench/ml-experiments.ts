/**
 * Which features and which pruning find mislabeled images best? Fashion-MNIST (Debian's
 * `dataset-fashion-mnist`), 10% of labels flipped uniformly to another class (fixed seed), split
 * over 3 simulated nodes; out-of-sample probabilities by federated 5-fold CV (closed-form ridge
 * heads, src/ml/ridge.ts), then federated confident learning. Prints accuracy, precision/recall/F1
 * of flagged vs flipped, time per phase.
 *
 *   npx tsx bench/ml-experiments.ts [--n 20000] [--features raw,conv64] [--penalty 6e-4] [--noise 0.1] [--pca]
 */
import { parseArgs } from 'node:util';
import { type FilterBy, type RankBy, federatedLabelIssues } from '../src/ml/confident-learning.js';
import { crossValidatedProbabilities } from '../src/ml/cross-validation.js';
import { ConvFeatureExtractor, type RandomConvOptions, randomConvSpec } from '../src/ml/features.js';
import { federatedPca, projectFeatures } from '../src/ml/projection.js';
import { SeededRandom } from '../src/ml/random.js';
import { contentDigest, DEFAULT_RIDGE, releaseGramSessions } from '../src/ml/ridge.js';
import { standardize } from '../src/ml/softmax.js';
import { loadFashionMnist } from './fashion-mnist.js';

const SIZE = 28;
const CLASSES = 10;
const NODES = 3;

/** Feature presets compared by default; `conv64` is the modules' default configuration. */
const PRESETS: Record<string, Omit<RandomConvOptions, 'input' | 'mean' | 'std'> | 'raw'> = {
  raw: 'raw',
  conv32: { filterCount: 32 },
  conv64: {},
  conv64relu: { activation: 'relu' },
  conv64nosqrt: { sqrt: false },
  conv64k7: { kernelSize: 7 },
  conv64g5: { poolGrid: 5 },
  conv128: { filterCount: 128 },
  conv256: { filterCount: 256 },
};

const PRUNING: { filterBy: FilterBy; rankBy?: RankBy }[] = [
  { filterBy: 'prune_by_noise_rate' },
  { filterBy: 'prune_by_class' },
  { filterBy: 'prune_by_class', rankBy: 'normalized_margin' },
  { filterBy: 'both' },
  { filterBy: 'confident_learning' },
  { filterBy: 'predicted_neq_given' },
];

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '60000' },
    features: { type: 'string', default: 'raw,conv64' },
    penalty: { type: 'string', default: String(DEFAULT_RIDGE.penaltyPerRow) },
    noise: { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '1' },
    pca: { type: 'boolean', default: false },
  },
});

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

async function timed<T>(f: () => Promise<T> | T): Promise<[T, number]> {
  const t = performance.now();
  const r = await f();
  return [r, performance.now() - t];
}

async function main(): Promise<void> {
  const n = Number(args.n);
  const penaltyPerRow = Number(args.penalty);
  const noise = Number(args.noise);
  const [data, loadMs] = await timed(() => loadFashionMnist());
  const count = Math.min(n, data.count);
  // A random subsample (not the first n) so classes stay balanced.
  const rng = new SeededRandom(Number(args.seed));
  const pick = Int32Array.from({ length: data.count }, (_, i) => i);
  rng.shuffle(pick);
  const images = new Float32Array(count * SIZE * SIZE);
  const truth = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    images.set(data.images.subarray(pick[r] * SIZE * SIZE, (pick[r] + 1) * SIZE * SIZE), r * SIZE * SIZE);
    truth[r] = data.labels[pick[r]];
  }
  const given = Int32Array.from(truth);
  let flips = 0;
  for (let i = 0; i < count; i++) {
    if (rng.next() < noise) {
      given[i] = (truth[i] + 1 + rng.int(CLASSES - 1)) % CLASSES;
      flips++;
    }
  }
  // Dataset mean/std as the images layer pools them (here simply over all pixels).
  let s = 0;
  let s2 = 0;
  for (const v of images) {
    s += v;
    s2 += v * v;
  }
  const mean = s / images.length;
  const std = Math.sqrt(s2 / images.length - mean * mean);
  const digests = Uint32Array.from({ length: count }, (_, i) => contentDigest(new Uint8Array(images.buffer, i * SIZE * SIZE * 4, SIZE * SIZE * 4)));
  const bounds = Array.from({ length: NODES + 1 }, (_, k) => Math.floor((k * count) / NODES));
  console.log(`Fashion-MNIST: ${count} images (load ${seconds(loadMs)}), ${flips} labels flipped (${((100 * flips) / count).toFixed(1)}%), ${NODES} nodes, 5-fold CV, ridge penalty ${penaltyPerRow} per row`);

  const best = { f1: 0, what: '' };
  for (const name of args.features.split(',')) {
    const preset = PRESETS[name];
    if (preset === undefined) throw new Error(`unknown feature preset ${name}; known: ${Object.keys(PRESETS).join(', ')}`);
    const [{ features, dim }, featureMs] = await timed(async () => {
      if (preset === 'raw') return { features: images, dim: SIZE * SIZE };
      const spec = randomConvSpec({ input: { channels: 1, height: SIZE, width: SIZE }, mean: [mean], std: [std], ...preset });
      const extractor = await ConvFeatureExtractor.create(spec);
      // Each node extracts its own images; in one process that is one pass per node.
      const parts = [];
      for (let k = 0; k < NODES; k++) {
        const a = bounds[k];
        const b = bounds[k + 1];
        parts.push(await extractor.extract({ data: images.subarray(a * SIZE * SIZE, b * SIZE * SIZE), count: b - a, channels: 1, height: SIZE, width: SIZE }));
      }
      await extractor.release();
      const all = new Float32Array(count * extractor.dim);
      parts.forEach((p, k) => all.set(p, bounds[k] * extractor.dim));
      return { features: all, dim: extractor.dim };
    });
    const nodes = Array.from({ length: NODES }, (_, k) => ({
      features: features.subarray(bounds[k] * dim, bounds[k + 1] * dim),
      labels: given.subarray(bounds[k], bounds[k + 1]),
      digests: digests.subarray(bounds[k], bounds[k + 1]),
    }));
    const [cv, cvMs] = await timed(() => crossValidatedProbabilities(nodes, { classes: CLASSES, penaltyPerRow }));
    let correct = 0;
    cv.probabilities.forEach((p, k) => {
      for (let i = 0; i < p.length / CLASSES; i++) {
        let arg = 0;
        for (let c = 1; c < CLASSES; c++) if (p[i * CLASSES + c] > p[i * CLASSES + arg]) arg = c;
        if (arg === truth[bounds[k] + i]) correct++;
      }
    });
    console.log(`\n${name}: dim ${dim}, features ${seconds(featureMs)}, CV ${seconds(cvMs)}, out-of-sample accuracy vs true labels ${((100 * correct) / count).toFixed(2)}%`);
    for (const pruning of PRUNING) {
      const [result, clMs] = await timed(() =>
        federatedLabelIssues(cv.probabilities.map((p, k) => ({ probs: p, labels: nodes[k].labels })), CLASSES, pruning),
      );
      let tp = 0;
      let flagged = 0;
      result.issues.forEach((iss, k) => {
        flagged += iss.indices.length;
        for (const i of iss.indices) if (given[bounds[k] + i] !== truth[bounds[k] + i]) tp++;
      });
      const precision = tp / Math.max(1, flagged);
      const recall = tp / Math.max(1, flips);
      const f1 = (2 * precision * recall) / Math.max(1e-12, precision + recall);
      const label = `${pruning.filterBy}${pruning.rankBy ? `/${pruning.rankBy}` : ''}`;
      console.log(`  ${label.padEnd(38)} flagged ${String(flagged).padStart(6)}  P ${precision.toFixed(3)}  R ${recall.toFixed(3)}  F1 ${f1.toFixed(3)}  (${seconds(clMs)})`);
      if (f1 > best.f1) Object.assign(best, { f1, what: `${name} + ${label}` });
    }
    if (args.pca) {
      const standardised = nodes.map((nd) => standardize(nd.features, cv.standardizer));
      const [pca, pcaMs] = await timed(() => federatedPca(standardised, dim));
      const coords = standardised.map((x) => projectFeatures(x, pca));
      console.log(`  2-D PCA projection ${seconds(pcaMs)} (variances ${pca.variances.map((v) => v.toFixed(1)).join(', ')}; ${coords.reduce((a, c) => a + c.length / 2, 0)} points)`);
    }
  }
  await releaseGramSessions();
  console.log(`\nbest F1 ${best.f1.toFixed(3)}: ${best.what}`);
}

await main();
