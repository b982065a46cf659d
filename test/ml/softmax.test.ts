/**
 * @jest-environment ./test/helpers/onnx-environment.cjs
 */
import * as ort from 'onnxruntime-node';
import { exportClassifierOnnx, exportHeadOnnx } from '../../src/ml/classifier-export.js';
import { crossValidatedProbabilities } from '../../src/ml/cross-validation.js';
import { contentDigest, releaseGramSessions } from '../../src/ml/ridge.js';
import { ConvFeatureExtractor, randomConvSpec } from '../../src/ml/features.js';
import { SeededRandom } from '../../src/ml/random.js';
import {
  type SoftmaxWeights,
  averageWeights,
  localFeatureSums,
  localUpdate,
  mergeFeatureSums,
  predictProbabilities,
  releaseTrainingSessions,
  standardize,
  standardizerFrom,
  zeroWeights,
} from '../../src/ml/softmax.js';
import { SIDE, shapesDataset } from './synthetic-images.js';

afterAll(async () => {
  await releaseTrainingSessions();
  await releaseGramSessions();
});

function gaussianData(n: number, dim: number, classes: number, seed: number) {
  const rng = new SeededRandom(seed);
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => 2 * rng.normal()));
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rng.int(classes);
    for (let j = 0; j < dim; j++) features[i * dim + j] = centres[labels[i]][j] + rng.normal();
  }
  return { features, labels };
}

function accuracy(probs: Float32Array, labels: Int32Array, classes: number): number {
  let right = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[i * classes + c] > probs[i * classes + best]) best = c;
    if (best === labels[i]) right++;
  }
  return right / labels.length;
}

describe('softmax head', () => {
  it('takes one full-batch SGD step exactly as the JS gradient says', async () => {
    const [n, d, k] = [6, 4, 3];
    const { features, labels } = gaussianData(n, d, k, 1);
    const start: SoftmaxWeights = { dim: d, classes: k, w: Float32Array.from({ length: d * k }, (_, i) => 0.1 * Math.sin(i)), b: Float32Array.of(0.1, -0.2, 0.05) };
    const lr = 0.3;
    const l2 = 0.01;
    const { weights, count } = await localUpdate(start, features, labels, { epochs: 1, lr, l2, batchSize: n, momentum: 0.9 });
    expect(count).toBe(n);
    const p = predictProbabilities(start, features);
    for (let j = 0; j < d; j++)
      for (let c = 0; c < k; c++) {
        let g = 0;
        for (let i = 0; i < n; i++) g += features[i * d + j] * (p[i * k + c] - (labels[i] === c ? 1 : 0));
        g = g / n + l2 * start.w[j * k + c];
        expect(weights.w[j * k + c]).toBeCloseTo(start.w[j * k + c] - lr * g, 5); // momentum starts at zero
      }
    for (let c = 0; c < k; c++) {
      let g = 0;
      for (let i = 0; i < n; i++) g += p[i * k + c] - (labels[i] === c ? 1 : 0);
      expect(weights.b[c]).toBeCloseTo(start.b[c] - (lr * g) / n, 5);
    }
  });

  it('averages updates weighted by their sample counts', () => {
    const a = { weights: { dim: 1, classes: 2, w: Float32Array.of(1, 2), b: Float32Array.of(0, 4) }, count: 1 };
    const b = { weights: { dim: 1, classes: 2, w: Float32Array.of(4, 8), b: Float32Array.of(3, 1) }, count: 2 };
    const avg = averageWeights([a, b, { weights: zeroWeights(1, 2), count: 0 }]);
    expect(Array.from(avg.w)).toEqual([3, 6]);
    expect(Array.from(avg.b)).toEqual([2, 2]);
    expect(() => averageWeights([{ weights: zeroWeights(2, 2), count: 1 }, a])).toThrow(/shape 1×2 does not match 2×2/);
  });

  it('pools feature standardisation exactly from per-node sums', () => {
    const { features } = gaussianData(90, 5, 2, 2);
    const parts = [features.subarray(0, 20 * 5), features.subarray(20 * 5, 55 * 5), features.subarray(55 * 5)];
    const merged = standardizerFrom(mergeFeatureSums(parts.map((p) => localFeatureSums(p, 5))));
    const pooled = standardizerFrom(localFeatureSums(features, 5));
    for (let j = 0; j < 5; j++) {
      expect(merged.mean[j]).toBeCloseTo(pooled.mean[j], 6);
      expect(merged.invStd[j]).toBeCloseTo(pooled.invStd[j], 6);
    }
    const z = standardize(features, merged);
    const after = standardizerFrom(localFeatureSums(z, 5));
    for (let j = 0; j < 5; j++) {
      expect(after.mean[j]).toBeCloseTo(0, 4);
      expect(after.invStd[j]).toBeCloseTo(1, 3);
    }
  });
});

describe('cross-validation', () => {
  it('gives out-of-sample probabilities for every sample of every node and favours the true class of planted flips', async () => {
    const { batch, labels } = shapesDataset(360, 21);
    const spec = randomConvSpec({ input: { channels: 1, height: SIDE, width: SIDE }, mean: [0.3], std: [0.3], filterCount: 8, kernelSize: 3, poolGrid: 2 });
    const extractor = await ConvFeatureExtractor.create(spec);
    const features = await extractor.extract(batch);
    await extractor.release();
    const noisy = Int32Array.from(labels);
    const flipped = [5, 77, 200, 301];
    for (const i of flipped) noisy[i] = (labels[i] + 1) % 3;
    const dim = extractor.dim;
    const bounds = [0, 100, 250, 360];
    const size = SIDE * SIDE;
    const digests = Uint32Array.from({ length: 360 }, (_, i) => contentDigest(new Uint8Array(batch.data.buffer, batch.data.byteOffset + i * size * 4, size * 4)));
    const nodes = [0, 1, 2].map((k) => ({
      features: features.subarray(bounds[k] * dim, bounds[k + 1] * dim),
      labels: noisy.subarray(bounds[k], bounds[k + 1]),
      digests: digests.subarray(bounds[k], bounds[k + 1]),
    }));
    const cv = await crossValidatedProbabilities(nodes, { classes: 3, folds: 3 });
    expect(cv.heads).toHaveLength(3);
    expect(new Set(cv.folds.flatMap((f) => [...f]))).toEqual(new Set([0, 1, 2]));
    expect(cv.probabilities.map((p) => p.length)).toEqual([300, 450, 330]);
    const all = new Float32Array(360 * 3);
    cv.probabilities.forEach((p, k) => all.set(p, bounds[k] * 3));
    for (let i = 0; i < 360; i++) expect(all[i * 3] + all[i * 3 + 1] + all[i * 3 + 2]).toBeCloseTo(1, 5);
    // Out-of-sample predictions recover the true class, including for the flipped samples.
    expect(accuracy(all, labels, 3)).toBeGreaterThan(0.95);
    for (const i of flipped) expect(all[i * 3 + labels[i]]).toBeGreaterThan(all[i * 3 + noisy[i]]);
  });
});

describe('exportClassifierOnnx', () => {
  it('produces one model whose probabilities equal the JS feature → standardise → head path', async () => {
    const { batch, labels } = shapesDataset(60, 4);
    const spec = randomConvSpec({ input: { channels: 1, height: SIDE, width: SIDE }, mean: [0.3], std: [0.3], filterCount: 6, kernelSize: 3, poolGrid: 2 });
    const extractor = await ConvFeatureExtractor.create(spec);
    const features = await extractor.extract(batch);
    await extractor.release();
    const standardizer = standardizerFrom(localFeatureSums(features, extractor.dim));
    const z = standardize(features, standardizer);
    const { weights } = await localUpdate(zeroWeights(extractor.dim, 3), z, labels, { epochs: 5, batchSize: 16 });
    const expected = predictProbabilities(weights, z);

    const session = await ort.InferenceSession.create(exportClassifierOnnx(spec, standardizer, weights));
    const out = await session.run({ pixels: new ort.Tensor('float32', batch.data, [60, 1, SIDE, SIDE]) });
    await session.release();
    const got = out.probabilities.data as Float32Array;
    expect(out.probabilities.dims).toEqual([60, 3]);
    for (let i = 0; i < expected.length; i++) expect(got[i]).toBeCloseTo(expected[i], 4);
    expect(accuracy(got, labels, 3)).toBeGreaterThan(0.9);

    const head = await ort.InferenceSession.create(exportHeadOnnx(standardizer, weights));
    const headOut = await head.run({ features: new ort.Tensor('float32', features, [60, extractor.dim]) });
    await head.release();
    const headProbs = headOut.probabilities.data as Float32Array;
    for (let i = 0; i < expected.length; i++) expect(headProbs[i]).toBeCloseTo(expected[i], 4);
  });

  it('refuses a head that does not fit the extractor', () => {
    const spec = randomConvSpec({ input: { channels: 1, height: SIDE, width: SIDE }, mean: [0.3], std: [0.3], filterCount: 2, poolGrid: 2 });
    const st = standardizerFrom(localFeatureSums(new Float32Array(16), 16));
    expect(() => exportClassifierOnnx(spec, st, zeroWeights(5, 3))).toThrow(/extractor makes 16 features, head expects 5/);
  });
});
