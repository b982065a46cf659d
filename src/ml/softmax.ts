/**
 * Multinomial logistic regression (a softmax head on image features) trained by federated
 * averaging. Node-local work is `localFeatureSums` and `localUpdate`; the aggregator only adds
 * sums (`mergeFeatureSums`) and averages weights (`averageWeights`). The SGD step itself runs as
 * a small ONNX graph in onnxruntime-node, whose matrix products are far faster than JS loops.
 */
import * as ort from 'onnxruntime-node';
import { BadRequestError } from '../errors.js';
import { SessionCache } from './session-cache.js';
import { GraphBuilder, attr, encodeModel } from './onnx-writer.js';
import { SeededRandom, permutation } from './random.js';

/** Weights of a softmax head: logits = x·w + b, `w` row-major `dim × classes`. */
export interface SoftmaxWeights {
  /** Length of a feature vector. */
  dim: number;
  /** Number of classes (outputs). */
  classes: number;
  /** Weight matrix, row-major `dim × classes`. */
  w: Float32Array;
  /** Bias, one per class. */
  b: Float32Array;
}

/** One node's contribution to a federated-averaging round. */
export interface WeightUpdate {
  /** The weights after the node's local training. */
  weights: SoftmaxWeights;
  /** Number of samples the update was trained on (its weight in the average). */
  count: number;
}

/** Local training settings. */
export interface LocalTrainOptions {
  /** Passes over the local data per round. */
  epochs?: number;
  /** Step size of SGD with momentum. */
  lr?: number;
  /** L2 penalty on `w` (weight decay). */
  l2?: number;
  /** Momentum of SGD (0.9 by default). */
  momentum?: number;
  /** Samples per SGD step (128 by default). */
  batchSize?: number;
  /** Seed of the local shuffles. */
  seed?: number;
}

/** Defaults measured in bench/ml-experiments.ts on standardised random-conv features (lr 0.02: 0.05 and 0.005 were worse, l2 barely matters). */
export const DEFAULT_LOCAL_TRAINING: Required<LocalTrainOptions> = {
  epochs: 1,
  lr: 0.02,
  l2: 1e-3,
  momentum: 0.9,
  batchSize: 128,
  seed: 7,
};

/** All-zero weights: the starting point every node agrees on without communication. */
export function zeroWeights(dim: number, classes: number): SoftmaxWeights {
  return { dim, classes, w: new Float32Array(dim * classes), b: new Float32Array(classes) };
}

function checkData(features: Float32Array, labels: ArrayLike<number>, dim: number, classes: number): void {
  if (features.length !== labels.length * dim) {
    throw new BadRequestError(`softmax: ${features.length} feature values for ${labels.length} labels of dimension ${dim}`);
  }
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new BadRequestError(`softmax: label ${y} at index ${i} is not in 0..${classes - 1}`);
  }
}

// ---------------------------------------------------------------- feature standardisation

/** Per-feature sums of one node: enough to pool the mean and variance exactly. */
export interface FeatureSums {
  /** Number of feature rows summed. */
  count: number;
  /** Σ x per feature. */
  sum: Float64Array;
  /** Σ x² per feature. */
  sumSquares: Float64Array;
}

/** Mean and inverse standard deviation per feature. */
export interface Standardizer {
  /** Pooled mean per feature, subtracted first. */
  mean: Float32Array;
  /** 1 / pooled standard deviation per feature, multiplied after. */
  invStd: Float32Array;
}

/** Sums of `features` (row-major `n × dim`) and of their squares. */
export function localFeatureSums(features: Float32Array, dim: number): FeatureSums {
  if (features.length % dim !== 0) throw new BadRequestError(`feature sums: ${features.length} values is not a multiple of dimension ${dim}`);
  const count = features.length / dim;
  const sum = new Float64Array(dim);
  const sumSquares = new Float64Array(dim);
  for (let i = 0; i < count; i++) {
    const off = i * dim;
    for (let j = 0; j < dim; j++) {
      const v = features[off + j];
      sum[j] += v;
      sumSquares[j] += v * v;
    }
  }
  return { count, sum, sumSquares };
}

/** Adds the sums of several nodes. */
export function mergeFeatureSums(parts: readonly FeatureSums[]): FeatureSums {
  if (parts.length === 0) throw new BadRequestError('feature sums: nothing to merge');
  const dim = parts[0].sum.length;
  const out: FeatureSums = { count: 0, sum: new Float64Array(dim), sumSquares: new Float64Array(dim) };
  for (const p of parts) {
    if (p.sum.length !== dim) throw new BadRequestError(`feature sums: dimension ${p.sum.length} does not match ${dim}`);
    out.count += p.count;
    for (let j = 0; j < dim; j++) {
      out.sum[j] += p.sum[j];
      out.sumSquares[j] += p.sumSquares[j];
    }
  }
  return out;
}

/** Mean and 1/std from pooled sums; constant features get scale 1 instead of a division by zero. */
export function standardizerFrom(sums: FeatureSums): Standardizer {
  if (sums.count === 0) throw new BadRequestError('feature sums: no samples');
  const dim = sums.sum.length;
  const mean = new Float32Array(dim);
  const invStd = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    const m = sums.sum[j] / sums.count;
    const variance = Math.max(0, sums.sumSquares[j] / sums.count - m * m);
    mean[j] = m;
    invStd[j] = variance > 1e-12 ? 1 / Math.sqrt(variance) : 1;
  }
  return { mean, invStd };
}

/** (x − mean) / std for every row, as a new array. */
export function standardize(features: Float32Array, s: Standardizer): Float32Array {
  const dim = s.mean.length;
  if (features.length % dim !== 0) throw new BadRequestError(`standardize: ${features.length} values is not a multiple of dimension ${dim}`);
  const out = new Float32Array(features.length);
  for (let off = 0; off < features.length; off += dim) {
    for (let j = 0; j < dim; j++) out[off + j] = (features[off + j] - s.mean[j]) * s.invStd[j];
  }
  return out;
}

// ---------------------------------------------------------------- training

/**
 * One SGD-with-momentum step as an ONNX graph: inputs w, b, their velocities, a batch x and its
 * one-hot labels y, and 1/batch; outputs the updated four. Hyper-parameters are baked in.
 */
function sgdStepModel(dim: number, classes: number, lr: number, momentum: number, l2: number): Uint8Array {
  const g = new GraphBuilder('softmax_sgd_step');
  g.input('w', 'float32', [dim, classes]);
  g.input('b', 'float32', [classes]);
  g.input('vw', 'float32', [dim, classes]);
  g.input('vb', 'float32', [classes]);
  g.input('x', 'float32', ['batch', dim]);
  g.input('y', 'float32', ['batch', classes]);
  g.input('inv_batch', 'float32', [1]);
  const probs = g.op('Softmax', [g.op('Gemm', ['x', 'w', 'b'])], { axis: attr.int(-1) });
  const err = g.op('Sub', [probs, 'y']);
  const gradW = g.op('Add', [
    g.op('Mul', [g.op('Gemm', ['x', err], { transA: attr.int(1) }), 'inv_batch']),
    g.op('Mul', ['w', g.floats('l2', [], [l2])]),
  ]);
  const gradB = g.op('Mul', [g.op('ReduceSum', [err, g.int64s('axis0', [1], [0])], { keepdims: attr.int(0) }), 'inv_batch']);
  const mom = g.floats('momentum', [], [momentum]);
  const step = g.floats('lr', [], [lr]);
  const vw = g.op('Add', [g.op('Mul', ['vw', mom]), gradW], undefined, 'vw_next');
  const vb = g.op('Add', [g.op('Mul', ['vb', mom]), gradB], undefined, 'vb_next');
  g.op('Sub', ['w', g.op('Mul', [vw, step])], undefined, 'w_next');
  g.op('Sub', ['b', g.op('Mul', [vb, step])], undefined, 'b_next');
  g.output('w_next', 'float32', [dim, classes]);
  g.output('b_next', 'float32', [classes]);
  g.output('vw_next', 'float32', [dim, classes]);
  g.output('vb_next', 'float32', [classes]);
  return encodeModel(g.build());
}

const stepSessions = new SessionCache();

/** Sessions are cached per shape and hyper-parameters: building one costs more than many steps. */
function stepSession(dim: number, classes: number, lr: number, momentum: number, l2: number): Promise<ort.InferenceSession> {
  return stepSessions.get(`${dim}:${classes}:${lr}:${momentum}:${l2}`, () => sgdStepModel(dim, classes, lr, momentum, l2));
}

/** Releases the cached training sessions (call when training is over for good). */
export function releaseTrainingSessions(): Promise<void> {
  return stepSessions.release();
}

/**
 * Node-local training: `epochs` passes of minibatch SGD with momentum over the local samples,
 * starting from the global weights. Returns the new weights and the sample count for averaging.
 */
export async function localUpdate(
  weights: SoftmaxWeights,
  features: Float32Array,
  labels: ArrayLike<number>,
  options: LocalTrainOptions = {},
): Promise<WeightUpdate> {
  const o = { ...DEFAULT_LOCAL_TRAINING, ...options };
  const { dim, classes } = weights;
  checkData(features, labels, dim, classes);
  const n = labels.length;
  if (n === 0) return { weights: { ...weights, w: weights.w.slice(), b: weights.b.slice() }, count: 0 };
  const session = await stepSession(dim, classes, o.lr, o.momentum, o.l2);
  let w: Float32Array = weights.w.slice();
  let b: Float32Array = weights.b.slice();
  let vw: Float32Array = new Float32Array(dim * classes);
  let vb: Float32Array = new Float32Array(classes);
  const rng = new SeededRandom(o.seed);
  const x = new Float32Array(o.batchSize * dim);
  const y = new Float32Array(o.batchSize * classes);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = permutation(n, rng);
    for (let start = 0; start < n; start += o.batchSize) {
      const size = Math.min(o.batchSize, n - start);
      y.fill(0);
      for (let r = 0; r < size; r++) {
        const i = order[start + r];
        x.set(features.subarray(i * dim, (i + 1) * dim), r * dim);
        y[r * classes + labels[i]] = 1;
      }
      const out = await session.run({
        w: new ort.Tensor('float32', w, [dim, classes]),
        b: new ort.Tensor('float32', b, [classes]),
        vw: new ort.Tensor('float32', vw, [dim, classes]),
        vb: new ort.Tensor('float32', vb, [classes]),
        x: new ort.Tensor('float32', x.subarray(0, size * dim), [size, dim]),
        y: new ort.Tensor('float32', y.subarray(0, size * classes), [size, classes]),
        inv_batch: new ort.Tensor('float32', Float32Array.of(1 / size), [1]),
      });
      w = out.w_next.data as Float32Array;
      b = out.b_next.data as Float32Array;
      vw = out.vw_next.data as Float32Array;
      vb = out.vb_next.data as Float32Array;
    }
  }
  return { weights: { dim, classes, w, b }, count: n };
}

/** Federated averaging: the sample-count-weighted mean of the nodes' weights. */
export function averageWeights(updates: readonly WeightUpdate[]): SoftmaxWeights {
  const used = updates.filter((u) => u.count > 0);
  if (used.length === 0) throw new BadRequestError('averageWeights: no update has samples');
  const { dim, classes } = used[0].weights;
  const w = new Float64Array(dim * classes);
  const b = new Float64Array(classes);
  let total = 0;
  for (const u of used) {
    if (u.weights.dim !== dim || u.weights.classes !== classes) {
      throw new BadRequestError(`averageWeights: shape ${u.weights.dim}×${u.weights.classes} does not match ${dim}×${classes}`);
    }
    total += u.count;
    for (let i = 0; i < w.length; i++) w[i] += u.count * u.weights.w[i];
    for (let i = 0; i < b.length; i++) b[i] += u.count * u.weights.b[i];
  }
  return { dim, classes, w: Float32Array.from(w, (v) => v / total), b: Float32Array.from(b, (v) => v / total) };
}

/**
 * Logits (row-major `n × classes`, float64) of (already standardised) feature rows: row i under
 * `heads[headOf[i]]` (every row under `heads[0]` without `headOf`, e.g. each under its fold's head).
 */
export function headLogits(features: Float32Array, heads: readonly SoftmaxWeights[], headOf?: ArrayLike<number>): Float64Array {
  if (heads.length === 0) throw new BadRequestError('predict: no head');
  const { dim, classes } = heads[0];
  if (features.length % dim !== 0) throw new BadRequestError(`predict: ${features.length} values is not a multiple of dimension ${dim}`);
  const n = features.length / dim;
  const out = new Float64Array(n * classes);
  for (let i = 0; i < n; i++) {
    const h = heads[headOf ? headOf[i] : 0];
    if (!h) throw new BadRequestError(`predict: row ${i} asks for head ${headOf?.[i]}, of ${heads.length}`);
    const o = i * classes;
    for (let c = 0; c < classes; c++) out[o + c] = h.b[c];
    const off = i * dim;
    for (let j = 0; j < dim; j++) {
      const v = features[off + j];
      if (v === 0) continue;
      const row = j * classes;
      for (let c = 0; c < classes; c++) out[o + c] += v * h.w[row + c];
    }
  }
  return out;
}

/** Softmax of each row of `logits` (row-major, `classes` per row). */
export function softmaxRows(logits: Float64Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  const z = new Float64Array(classes);
  for (let o = 0; o < logits.length; o += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[o + c]);
    let total = 0;
    for (let c = 0; c < classes; c++) total += (z[c] = Math.exp(logits[o + c] - max));
    for (let c = 0; c < classes; c++) out[o + c] = z[c] / total;
  }
  return out;
}

/** Softmax probabilities (row-major `n × classes`) of a head on (already standardised) features. */
export function predictProbabilities(weights: SoftmaxWeights, features: Float32Array): Float32Array {
  return softmaxRows(headLogits(features, [weights]), weights.classes);
}
