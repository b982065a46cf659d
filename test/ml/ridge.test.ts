/** @jest-environment ./test/helpers/onnx-environment.cjs */
import {
  bestTemperature,
  choleskySolve,
  contentDigest,
  contentFolds,
  dequantizeFeatures,
  quantizeFeatures,
  localGramSums,
  localTemperatureLosses,
  mergeGramSums,
  releaseGramSessions,
  ridgeCrossValidation,
  solveFoldHeads,
} from '../../src/ml/ridge.js';
import { SeededRandom } from '../../src/ml/random.js';
import { headLogits, predictProbabilities } from '../../src/ml/softmax.js';

const DIM = 12;
const CLASSES = 4;

/** Labelled rows whose class shifts the mean of a few features (a learnable task). */
function dataset(count: number, seed: number): { features: Float32Array; labels: Int32Array; digests: Uint32Array } {
  const rng = new SeededRandom(seed);
  const features = new Float32Array(count * DIM);
  const labels = new Int32Array(count);
  const digests = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = rng.int(CLASSES);
    for (let j = 0; j < DIM; j++) features[i * DIM + j] = rng.normal() + (j % CLASSES === labels[i] ? 1.5 : 0);
    digests[i] = contentDigest(new Uint8Array(features.buffer, i * DIM * 4, DIM * 4));
  }
  return { features, labels, digests };
}

/** The rows of `ids`, in that order. */
function rowsOf(d: ReturnType<typeof dataset>, ids: number[], folds: Int32Array) {
  const features = new Float32Array(ids.length * DIM);
  ids.forEach((i, r) => features.set(d.features.subarray(i * DIM, (i + 1) * DIM), r * DIM));
  const codes = quantizeFeatures(features);
  return { codes, features: dequantizeFeatures(codes), labels: Int32Array.from(ids, (i) => d.labels[i]), folds: Int32Array.from(ids, (i) => folds[i]) };
}

/** Splits 0..count-1 over `nodes` nodes at random, each node's rows shuffled too. */
function split(count: number, nodes: number, seed: number): number[][] {
  const rng = new SeededRandom(seed);
  const out: number[][] = Array.from({ length: nodes }, () => []);
  for (let i = 0; i < count; i++) out[rng.int(nodes)].push(i);
  for (const part of out) rng.shuffle(part);
  return out;
}

afterAll(() => releaseGramSessions());

describe('ridge cross-validation', () => {
  test("choleskySolve solves a symmetric positive-definite system", async () => {
    const n = 9;
    const rng = new SeededRandom(3);
    const m = Float64Array.from({ length: n * n }, () => rng.normal());
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] += m[k * n + i] * m[k * n + j] + (i === j && k === 0 ? 1 : 0);
    const b = Float64Array.from({ length: n * 2 }, () => rng.normal());
    const x = b.slice();
    await choleskySolve(a.slice(), x, n, 2);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 2; c++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a[i * n + k] * x[k * 2 + c];
        expect(s).toBeCloseTo(b[i * 2 + c], 9);
      }
    }
  });

  test("a matrix that is not positive definite is refused with a clear error", async () => {
    await expect(choleskySolve(Float64Array.of(1, 2, 2, 1), new Float64Array(2), 2, 1)).rejects.toThrow(/not positive definite/);
  });

  test('content folds depend only on the digest, and spread images evenly', () => {
    const digests = Uint32Array.from({ length: 5000 }, (_, i) => contentDigest(new TextEncoder().encode(`image-${i}`)));
    const folds = contentFolds(digests, 5);
    expect(contentFolds(digests.slice().reverse(), 5)).toEqual(folds.slice().reverse());
    const counts = [0, 0, 0, 0, 0];
    for (const f of folds) counts[f]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(100);
    expect(() => contentFolds(digests, 1)).toThrow(/folds must be an integer ≥ 2/);
  });

  test('the heads fit held-out rows well above chance', async () => {
    const d = dataset(1200, 1);
    const folds = contentFolds(d.digests, 5);
    const node = rowsOf(d, Array.from({ length: 1200 }, (_, i) => i), folds);
    const { heads } = await ridgeCrossValidation([node], { dim: DIM, classes: CLASSES, folds: 5 });
    const scores = headLogits(node.features, heads, node.folds);
    let correct = 0;
    for (let i = 0; i < 1200; i++) {
      let best = 0;
      for (let c = 1; c < CLASSES; c++) if (scores[i * CLASSES + c] > scores[i * CLASSES + best]) best = c;
      if (best === node.labels[i]) correct++;
    }
    // Bayes accuracy of this task is ~0.75; chance is 0.25.
    expect(correct / 1200).toBeGreaterThan(0.65);
  });

  test('the chosen temperature has the smallest summed log-loss of the candidates', async () => {
    const d = dataset(800, 2);
    const folds = contentFolds(d.digests, 4);
    const node = rowsOf(d, Array.from({ length: 800 }, (_, i) => i), folds);
    const merged = mergeGramSums([await localGramSums(node.codes, node.labels, node.folds, { dim: DIM, classes: CLASSES, folds: 4 })]);
    const raw = await solveFoldHeads(merged);
    const temps = [0.5, 1, 2, 4, 8, 16, 32];
    const losses = localTemperatureLosses(headLogits(node.features, raw.heads, node.folds), node.labels, CLASSES, temps);
    const t = bestTemperature(losses, temps);
    const k = temps.indexOf(t);
    for (let j = 0; j < temps.length; j++) expect(losses.losses[k]).toBeLessThanOrEqual(losses.losses[j]);
    // Neither end of the range: the loss has an interior minimum here.
    expect(k).toBeGreaterThan(0);
    expect(k).toBeLessThan(temps.length - 1);
  });

  test.each([3, 7])('the same images over %i nodes give the pooled heads and probabilities', async (nodes) => {
    const d = dataset(1500, 4);
    const folds = contentFolds(d.digests, 5);
    const all = Array.from({ length: 1500 }, (_, i) => i);
    const opts = { dim: DIM, classes: CLASSES, folds: 5 };
    const pooled = await ridgeCrossValidation([rowsOf(d, all, folds)], opts);
    const parts = split(1500, nodes, 10 + nodes).map((ids) => ({ ids, ...rowsOf(d, ids, folds) }));
    const fed = await ridgeCrossValidation(parts, opts);
    expect(fed.temperature).toBe(pooled.temperature);
    expect(fed.trainCounts).toEqual(pooled.trainCounts);
    // Sums of integer codes are exact in any order: the heads are bit for bit the pooled ones.
    expect(fed.heads).toEqual(pooled.heads);
    // Every image's out-of-fold probabilities, wherever it was.
    let worst = 0;
    for (const p of parts) {
      const probs = p.ids.map((i, r) => predictProbabilities(fed.heads[p.folds[r]], p.features.subarray(r * DIM, (r + 1) * DIM)));
      const pooledRows = dequantizeFeatures(quantizeFeatures(d.features));
      const ref = p.ids.map((i) => predictProbabilities(pooled.heads[folds[i]], pooledRows.subarray(i * DIM, (i + 1) * DIM)));
      probs.forEach((row, r) => row.forEach((v, c) => (worst = Math.max(worst, Math.abs(v - ref[r][c])))));
    }
    expect(worst).toBe(0);
  });

  test('the quantised sums equal the float sums of the codes they stand for', async () => {
    const d = dataset(300, 6);
    const folds = contentFolds(d.digests, 3);
    const codes = quantizeFeatures(d.features);
    const s = await localGramSums(codes, d.labels, folds, { dim: DIM, classes: CLASSES, folds: 3 });
    const n = DIM + 1;
    for (let f = 0; f < 3; f++) {
      const expected = new Float64Array((n * (n + 1)) / 2);
      for (let i = 0; i < 300; i++) {
        if (folds[i] !== f) continue;
        const x = [...codes.subarray(i * DIM, (i + 1) * DIM)].map((q) => q - 128).concat(1);
        let k = 0;
        for (let a = 0; a < n; a++) for (let b = a; b < n; b++) expected[k++] += x[a] * x[b];
      }
      expect(s.gram[f]).toEqual(expected);
    }
    expect(s.counts.reduce((a, b) => a + b, 0)).toBe(300);
  });

  test('sums of a different shape are refused', async () => {
    const d = dataset(50, 5);
    const folds = contentFolds(d.digests, 3);
    const a = await localGramSums(quantizeFeatures(d.features), d.labels, folds, { dim: DIM, classes: CLASSES, folds: 3 });
    expect(() => mergeGramSums([a, { ...a, folds: 4 }])).toThrow(/do not match/);
    expect(() => mergeGramSums([a, { ...a, gram: a.gram.map((g) => g.subarray(1)) }])).toThrow(/wrong length/);
  });
});
