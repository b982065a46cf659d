/**
 * @jest-environment ./test/helpers/onnx-environment.cjs
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import {
  ConvFeatureExtractor,
  type ConvFeatureSpec,
  OnnxFeatureExtractor,
  convFeatureModel,
  randomConvSpec,
  randomFilters,
} from '../../src/ml/features.js';
import { fitBatch } from '../../src/ml/pixels.js';
import { SIDE, shapesDataset } from './synthetic-images.js';

/** Direct JS computation of the extractor: normalise, 'same' convolution, split ReLU, grid average, sqrt. */
function referenceFeatures(spec: ConvFeatureSpec, pixels: Float32Array, count: number): Float32Array {
  const { channels: C, height: H, width: W } = spec.input;
  const k = spec.kernelSize;
  const pad = Math.floor(k / 2);
  const F = spec.filterCount;
  const G = spec.poolGrid;
  const sh = Math.floor(H / G);
  const kh = H - sh * (G - 1);
  const sw = Math.floor(W / G);
  const kw = W - sw * (G - 1);
  const maps = spec.activation === 'split-relu' ? 2 * F : F;
  const out = new Float32Array(count * maps * G * G);
  for (let n = 0; n < count; n++) {
    const conv = new Float64Array(F * H * W);
    for (let f = 0; f < F; f++)
      for (let r = 0; r < H; r++)
        for (let q = 0; q < W; q++) {
          let s = 0;
          for (let c = 0; c < C; c++)
            for (let a = 0; a < k; a++)
              for (let b = 0; b < k; b++) {
                const rr = r + a - pad;
                const qq = q + b - pad;
                if (rr < 0 || qq < 0 || rr >= H || qq >= W) continue;
                const x = (pixels[((n * C + c) * H + rr) * W + qq] - spec.mean[c]) / spec.std[c];
                s += x * spec.filters[((f * C + c) * k + a) * k + b];
              }
          conv[(f * H + r) * W + q] = s;
        }
    for (let m = 0; m < maps; m++) {
      const f = m % F;
      const sign = m < F ? 1 : -1;
      for (let gy = 0; gy < G; gy++)
        for (let gx = 0; gx < G; gx++) {
          let s = 0;
          for (let r = gy * sh; r < gy * sh + kh; r++)
            for (let q = gx * sw; q < gx * sw + kw; q++) s += Math.max(0, sign * conv[(f * H + r) * W + q]);
          const avg = s / (kh * kw);
          out[((n * maps + m) * G + gy) * G + gx] = spec.sqrt ? Math.sqrt(avg) : avg;
        }
    }
  }
  return out;
}

describe('random convolutional features', () => {
  const input = { channels: 1, height: SIDE, width: SIDE };
  const { batch } = shapesDataset(5, 3);

  it.each([
    ['split-relu', true, 3],
    ['relu', false, 2],
  ] as const)('match a direct JS computation (%s, sqrt=%s, grid %i)', async (activation, sqrt, poolGrid) => {
    const spec = randomConvSpec({ input, mean: [0.3], std: [0.25], filterCount: 4, kernelSize: 3, poolGrid, activation, sqrt, seed: 5 });
    const extractor = await ConvFeatureExtractor.create(spec, { batchSize: 2 }); // several chunks
    try {
      const got = await extractor.extract(batch);
      const want = referenceFeatures(spec, batch.data, batch.count);
      expect(extractor.dim).toBe(want.length / batch.count);
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
    } finally {
      await extractor.release();
    }
  });

  it('regenerates identical filters from a seed, with zero mean and unit norm', () => {
    const a = randomFilters(3, 2, 5, 77);
    expect(randomFilters(3, 2, 5, 77)).toEqual(a);
    expect(randomFilters(3, 2, 5, 78)).not.toEqual(a);
    for (let f = 0; f < 3; f++) {
      const w = a.subarray(f * 50, (f + 1) * 50);
      expect(w.reduce((s, v) => s + v, 0)).toBeCloseTo(0, 5);
      expect(Math.sqrt(w.reduce((s, v) => s + v * v, 0))).toBeCloseTo(1, 5);
    }
  });

  it('fits grey images to an RGB model of another size', async () => {
    const rgb = { channels: 3, height: 8, width: 8 };
    const spec = randomConvSpec({ input: rgb, mean: [0.3, 0.3, 0.3], std: [0.2, 0.2, 0.2], filterCount: 2, kernelSize: 3, poolGrid: 2 });
    const extractor = await ConvFeatureExtractor.create(spec);
    try {
      const got = await extractor.extract(batch);
      const fitted = fitBatch(batch, rgb);
      expect(fitted.data.length).toBe(5 * 3 * 64);
      const want = referenceFeatures(spec, fitted.data, 5);
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
    } finally {
      await extractor.release();
    }
  });

  it('rejects a spec whose mean does not match the channels', () => {
    const spec = randomConvSpec({ input, mean: [0.3, 0.3], std: [0.2], filterCount: 2 });
    expect(() => convFeatureModel(spec)).toThrow(BadRequestError);
    expect(() => convFeatureModel(spec)).toThrow(/mean\/std need 1 values/);
  });
});

describe('user-supplied ONNX feature extractor', () => {
  it('loads a model file, finds its input shape and dimension, and applies the given normalisation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flame-ml-'));
    try {
      const input = { channels: 1, height: SIDE, width: SIDE };
      const builtIn = randomConvSpec({ input, mean: [0.3], std: [0.25], filterCount: 3, kernelSize: 3, poolGrid: 2 });
      // The same network but expecting already-normalised pixels: the user extractor must normalise.
      const raw: ConvFeatureSpec = { ...builtIn, mean: [0], std: [1] };
      const path = join(dir, 'extractor.onnx');
      await writeFile(path, convFeatureModel(raw));
      const user = await OnnxFeatureExtractor.fromFile(path, { mean: [0.3], std: [0.25] });
      const reference = await ConvFeatureExtractor.create(builtIn);
      try {
        expect(user.input).toEqual(input);
        expect(user.dim).toBe(reference.dim);
        const { batch } = shapesDataset(4, 9);
        const got = await user.extract(batch);
        const want = await reference.extract(batch);
        for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
      } finally {
        await user.release();
        await reference.release();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names a missing file and a file that is not a model', async () => {
    await expect(OnnxFeatureExtractor.fromFile('/nonexistent/model.onnx')).rejects.toThrow(NotFoundError);
    await expect(OnnxFeatureExtractor.fromBytes(new Uint8Array([1, 2, 3]), {}, 'junk.onnx')).rejects.toThrow(/junk.onnx is not a valid ONNX model/);
  });
});
