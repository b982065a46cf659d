/**
 * Cross-validated class probabilities from closed-form heads, so that a federated run gives what
 * one node holding every image would: each fold's head is the ridge regression of one-hot labels
 * on the standardised features, solved from sums (Σ x xᵀ and Σ x yᵀ per fold), and one softmax
 * temperature for all folds is chosen from summed out-of-fold log-losses. Sums do not depend on
 * how the rows are split over nodes, folds come from each image's content ({@link contentFolds}),
 * and the sums are of 8-bit codes of the features ({@link quantizeFeatures}), exact in any order:
 * the merged sums, hence the heads, are bit for bit those of one node holding every image.
 *
 * The protocol's steps:
 * 1. node: {@link localGramSums} over its rows, per fold; aggregator: {@link mergeGramSums}, then
 *    {@link solveFoldHeads} (the raw heads, scores ≈ one-hot);
 * 2. node: {@link localTemperatureLosses} of its rows' out-of-fold scores (softmax.ts's headLogits
 *    with each row's fold); aggregator:
 *    {@link mergeTemperatureLosses}, {@link bestTemperature}, and each head scaled by it
 *    ({@link scaleHead}) is a softmax head like any other (predictProbabilities, ONNX export).
 *
 * {@link ridgeCrossValidation} runs both over simulated nodes in one process (tests, benches).
 */
import * as ort from 'onnxruntime-node';
import { BadRequestError } from '../errors.js';
import { GraphBuilder, attr, encodeModel } from './onnx-writer.js';
import { SessionCache } from './session-cache.js';
import { headLogits, type SoftmaxWeights } from './softmax.js';

/** Defaults measured in bench/ml-experiments.ts and analyses/image-diagnosis/EXPERIMENTS.md. */
export const DEFAULT_RIDGE = {
  /** Ridge penalty per training row: λ = penalty × rows the fold trains on (at least {@link DEFAULT_RIDGE.minPenalty}). */
  penaltyPerRow: 6e-4,
  /** Smallest λ: on data/sample's 300 images 10 flagged 55 (19 of 24 flips) where 1 flagged 67 (19). */
  minPenalty: 10,
  /** Softmax temperatures tried (log-spaced). */
  temperatures: Array.from({ length: 48 }, (_, i) => 0.5 * Math.pow(200, i / 47)),
} as const;

/** Per-fold sums of one node (or merged), in code units: the upper triangle of Σ x̃ x̃ᵀ with x̃ = [q − 128, 1], and Σ x̃ yᵀ. */
export interface GramSums {
  /** Feature dimension (without the bias column). */
  dim: number;
  /** Number of classes (columns of the cross-products). */
  classes: number;
  /** Number of folds. */
  folds: number;
  /** Rows summed per fold. */
  counts: number[];
  /** Per fold, the upper triangle (row-major, i ≤ j) of the (dim+1)² Gram matrix: (dim+1)(dim+2)/2 values. */
  gram: Float64Array[];
  /** Per fold, Σ x̃ yᵀ as (dim+1) × classes, row-major. */
  cross: Float64Array[];
}

/** Length of the packed upper triangle of an n × n matrix. */
export function packedLength(n: number): number {
  return (n * (n + 1)) / 2;
}

/**
 * Fold of each image from its content digest (any 32-bit hash of its pixels): the same image gets
 * the same fold on any node and in any split, so folds do not depend on how images are spread.
 */
export function contentFolds(digests: ArrayLike<number>, folds: number): Int32Array {
  if (!Number.isInteger(folds) || folds < 2) throw new BadRequestError(`cross-validation: folds must be an integer ≥ 2, got ${folds}`);
  // A final avalanche step, so digests that share low bits still spread over the folds.
  return Int32Array.from(digests as ArrayLike<number>, (d) => {
    let h = d >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
    return ((h ^ (h >>> 16)) >>> 0) % folds;
  });
}

/** FNV-1a over bytes: the content digest {@link contentFolds} takes. */
export function contentDigest(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}

/**
 * Features enter the sums quantised to 8 bits: q = round(x · QUANT_SCALE) + 128, clamped to 0..255
 * (x standardised: ±6 standard deviations; the clamp touches ~1e-5 of the values here). Sums of
 * products of small integers are exact in int32 and in float64, whatever the order, so merged sums
 * — and the heads solved from them — are bit for bit the same however the rows are split. Quantising
 * cost 0.1 accuracy point on Fashion-MNIST (EXPERIMENTS.md), and onnxruntime's uint8 GEMM is ~15×
 * its float64 one.
 */
export const QUANT_SCALE = 127 / 6;
const ZERO = 128;

/** Standardised features → the 8-bit codes the sums are taken over. */
export function quantizeFeatures(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const q = Math.round(values[i] * QUANT_SCALE) + ZERO;
    out[i] = q < 0 ? 0 : q > 255 ? 255 : q;
  }
  return out;
}

/** The features the codes stand for (what the heads were fitted to, and predict from). */
export function dequantizeFeatures(codes: Uint8Array): Float32Array {
  // A table and a plain loop: Float32Array.from with a mapper was 10 s of a 20k-image run.
  const table = Float32Array.from({ length: 256 }, (_, q) => (q - ZERO) / QUANT_SCALE);
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = table[codes[i]];
  return out;
}

// Rows per GEMM: 255² × 8192 < 2³¹, so the int32 products cannot overflow.
const GRAM_CHUNK = 8192;
/** The Gram graphs (one per width) and the factorisation's block step. */
const sessions = new SessionCache();

/** q (rows × n), uint8 → qᵀq as int32 (onnxruntime's Transpose and MatMulInteger). */
function gramSession(n: number): Promise<ort.InferenceSession> {
  return sessions.get(`gram:${n}`, () => {
    const g = new GraphBuilder('gram');
    g.input('q', 'uint8', ['rows', n]);
    g.op('MatMulInteger', [g.op('Transpose', ['q'], { perm: attr.ints([1, 0]) }), 'q'], undefined, 'gram');
    g.output('gram', 'int32', [n, n]);
    return encodeModel(g.build());
  });
}

/** Releases the cached sessions of the sums and the factorisation. */
export function releaseGramSessions(): Promise<void> {
  return sessions.release();
}

function checkRows(codes: Uint8Array, labels: ArrayLike<number>, folds: Int32Array, dim: number, classes: number, K: number): void {
  if (codes.length !== labels.length * dim) throw new BadRequestError(`ridge: ${codes.length} feature values for ${labels.length} rows of dimension ${dim}`);
  if (folds.length !== labels.length) throw new BadRequestError(`ridge: ${folds.length} folds for ${labels.length} rows`);
  for (let i = 0; i < labels.length; i++) {
    if (!(labels[i] >= 0 && labels[i] < classes)) throw new BadRequestError(`ridge: label ${labels[i]} of row ${i} is not a class index below ${classes}`);
    if (!(folds[i] >= 0 && folds[i] < K)) throw new BadRequestError(`ridge: fold ${folds[i]} of row ${i} is not below ${K}`);
  }
}

/**
 * A node's per-fold sums over its quantised rows, in code units (x' = q − 128, integers): the
 * Gram matrix of [x', 1] and Σ [x', 1] yᵀ. {@link solveFoldHeads} rescales.
 */
export async function localGramSums(codes: Uint8Array, labels: ArrayLike<number>, folds: Int32Array, options: { dim: number; classes: number; folds: number }): Promise<GramSums> {
  const { dim, classes } = options;
  const K = options.folds;
  checkRows(codes, labels, folds, dim, classes, K);
  const n = dim + 1;
  const session = await gramSession(dim);
  const counts = new Array<number>(K).fill(0);
  const gram: Float64Array[] = [];
  const cross: Float64Array[] = [];
  for (let f = 0; f < K; f++) {
    const rows: number[] = [];
    for (let i = 0; i < labels.length; i++) if (folds[i] === f) rows.push(i);
    counts[f] = rows.length;
    const qq = new Float64Array(dim * dim);
    const colSums = new Float64Array(dim);
    const c = new Float64Array(n * classes);
    for (let start = 0; start < rows.length; start += GRAM_CHUNK) {
      const part = rows.slice(start, start + GRAM_CHUNK);
      const m = part.length;
      const q = new Uint8Array(m * dim);
      part.forEach((i, r) => {
        const src = codes.subarray(i * dim, (i + 1) * dim);
        q.set(src, r * dim);
        const col = labels[i];
        for (let j = 0; j < dim; j++) {
          colSums[j] += src[j];
          c[j * classes + col] += src[j] - ZERO;
        }
        c[dim * classes + col] += 1;
      });
      const out = await session.run({ q: new ort.Tensor('uint8', q, [m, dim]) });
      const g = out.gram.data as Int32Array;
      for (let k = 0; k < g.length; k++) qq[k] += g[k];
    }
    // Σ (q−z)(q−z)ᵀ = Σ q qᵀ − z (s 1ᵀ + 1 sᵀ) + z² count, with s = Σ q: still integers, written
    // straight into the packed upper triangle (row i: columns i…dim−1, then the bias column).
    const count = rows.length;
    const packed = new Float64Array(packedLength(n));
    let k = 0;
    for (let i = 0; i < dim; i++) {
      const row = i * dim;
      const base = ZERO * ZERO * count - ZERO * colSums[i];
      for (let j = i; j < dim; j++) packed[k++] = qq[row + j] + base - ZERO * colSums[j];
      packed[k++] = colSums[i] - ZERO * count;
    }
    packed[k] = count;
    gram.push(packed);
    cross.push(c);
  }
  return { dim, classes, folds: K, counts, gram, cross };
}

/** The sums of several nodes (elementwise). */
export function mergeGramSums(parts: readonly GramSums[]): GramSums {
  if (parts.length === 0) throw new BadRequestError('ridge: no Gram sums to merge');
  const { dim, classes, folds } = parts[0];
  const n = dim + 1;
  for (const p of parts) {
    if (p.dim !== dim || p.classes !== classes || p.folds !== folds) throw new BadRequestError(`ridge: sums of shape ${p.dim}/${p.classes}/${p.folds} do not match ${dim}/${classes}/${folds}`);
    if (p.gram.length !== folds || p.cross.length !== folds || p.counts.length !== folds) throw new BadRequestError(`ridge: sums need ${folds} folds`);
    for (let f = 0; f < folds; f++) {
      if (p.gram[f].length !== packedLength(n) || p.cross[f].length !== n * classes) throw new BadRequestError(`ridge: fold ${f} sums have the wrong length`);
    }
  }
  const out: GramSums = {
    dim,
    classes,
    folds,
    counts: new Array<number>(folds).fill(0),
    gram: Array.from({ length: folds }, () => new Float64Array(packedLength(n))),
    cross: Array.from({ length: folds }, () => new Float64Array(n * classes)),
  };
  for (const p of parts) {
    for (let f = 0; f < folds; f++) {
      out.counts[f] += p.counts[f];
      const g = out.gram[f];
      const pg = p.gram[f];
      for (let k = 0; k < g.length; k++) g[k] += pg[k];
      const c = out.cross[f];
      const pc = p.cross[f];
      for (let k = 0; k < c.length; k++) c[k] += pc[k];
    }
  }
  return out;
}

const BLOCK = 256;

/**
 * One block step of the factorisation by onnxruntime's float64 Gemm (the bulk of its work): the
 * panel L21 = A21 · L11⁻ᵀ and the trailing block A22 − L21 L21ᵀ.
 */
function blockStepSession(): Promise<ort.InferenceSession> {
  return sessions.get('cholesky-block', () => {
    const g = new GraphBuilder('cholesky_block');
    g.input('a21', 'float64', ['m', 'b']);
    g.input('inv', 'float64', ['b', 'b']);
    g.input('a22', 'float64', ['m', 'm']);
    g.op('Gemm', ['a21', 'inv'], { transB: attr.int(1) }, 'l21');
    g.op('Gemm', ['l21', 'l21', 'a22'], { transB: attr.int(1), alpha: attr.float(-1), beta: attr.float(1) }, 'next');
    g.output('l21', 'float64', ['m', 'b']);
    g.output('next', 'float64', ['m', 'm']);
    return encodeModel(g.build());
  });
}

/** The inverse of the lower-triangular diagonal block at (k0, k0), b × b, row-major. */
function invertLowerBlock(a: Float64Array, n: number, k0: number, b: number): Float64Array {
  const inv = new Float64Array(b * b);
  for (let j = 0; j < b; j++) {
    inv[j * b + j] = 1 / a[(k0 + j) * n + k0 + j];
    for (let i = j + 1; i < b; i++) {
      const ri = (k0 + i) * n + k0;
      let s = 0;
      for (let k = j; k < i; k++) s += a[ri + k] * inv[k * b + j];
      inv[i * b + j] = -s / a[ri + i];
    }
  }
  return inv;
}

/**
 * Factors symmetric positive-definite A (n × n, full, row-major) in place into its lower Cholesky
 * factor L (A = L Lᵀ; the upper triangle is left as garbage). Blocked: each block of 256 columns
 * is factored here, and its panel and the rest of the matrix computed by two GEMMs.
 */
export async function choleskyFactor(a: Float64Array, n: number): Promise<void> {
  for (let k0 = 0; k0 < n; k0 += BLOCK) {
    const b = Math.min(BLOCK, n - k0);
    const end = k0 + b;
    // Diagonal block (already updated by the previous blocks).
    for (let j = k0; j < end; j++) {
      const rj = j * n;
      let d = a[rj + j];
      for (let k = k0; k < j; k++) d -= a[rj + k] * a[rj + k];
      if (!(d > 0)) throw new BadRequestError(`ridge: the regularised Gram matrix is not positive definite (pivot ${j})`);
      const ljj = Math.sqrt(d);
      a[rj + j] = ljj;
      for (let i = j + 1; i < end; i++) {
        const ri = i * n;
        let s = a[ri + j];
        for (let k = k0; k < j; k++) s -= a[ri + k] * a[rj + k];
        a[ri + j] = s / ljj;
      }
    }
    const m = n - end;
    if (m === 0) break;
    const a21 = new Float64Array(m * b);
    const a22 = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      const row = (end + i) * n;
      a21.set(a.subarray(row + k0, row + end), i * b);
      a22.set(a.subarray(row + end, row + n), i * m);
    }
    const out = await (await blockStepSession()).run({
      a21: new ort.Tensor('float64', a21, [m, b]),
      inv: new ort.Tensor('float64', invertLowerBlock(a, n, k0, b), [b, b]),
      a22: new ort.Tensor('float64', a22, [m, m]),
    });
    const l21 = out.l21.data as Float64Array;
    const next = out.next.data as Float64Array;
    for (let i = 0; i < m; i++) {
      const row = (end + i) * n;
      a.set(l21.subarray(i * b, (i + 1) * b), row + k0);
      a.set(next.subarray(i * m, (i + 1) * m), row + end);
    }
  }
}

/** Solves L Lᵀ X = B for a factor from {@link choleskyFactor} and B (n × m, overwritten with X). */
export function choleskySubstitute(l: Float64Array, b: Float64Array, n: number, m: number): void {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < i; k++) {
      const v = l[ri + k];
      if (v === 0) continue;
      for (let c = 0; c < m; c++) b[i * m + c] -= v * b[k * m + c];
    }
    const inv = 1 / l[ri + i];
    for (let c = 0; c < m; c++) b[i * m + c] *= inv;
  }
  // Lᵀ x = y: row i of Lᵀ is column i of L; go up, subtracting each solved row times its column.
  for (let i = n - 1; i >= 0; i--) {
    const inv = 1 / l[i * n + i];
    for (let c = 0; c < m; c++) b[i * m + c] *= inv;
    const ri = i * n;
    for (let k = 0; k < i; k++) {
      const v = l[ri + k];
      if (v === 0) continue;
      for (let c = 0; c < m; c++) b[k * m + c] -= v * b[i * m + c];
    }
  }
}

/** Solves A X = B for symmetric positive-definite A (n × n, full, overwritten) and B (n × m, overwritten with X). */
export async function choleskySolve(a: Float64Array, b: Float64Array, n: number, m: number): Promise<void> {
  await choleskyFactor(a, n);
  choleskySubstitute(a, b, n, m);
}

/** One head per fold and the rows each was trained on. */
export interface FoldHeads {
  /** Fold f's head, trained on every other fold's rows. */
  heads: SoftmaxWeights[];
  /** Rows each head was trained on. */
  trainCounts: number[];
}

/** {@link FoldHeads} calibrated, with the temperature that calibrated them. */
export interface CalibratedFoldHeads extends FoldHeads {
  /** The softmax temperature the heads are scaled by. */
  temperature: number;
}

/** The ridge penalty of a fold trained on `rows` rows. */
export function ridgePenalty(rows: number, penaltyPerRow: number = DEFAULT_RIDGE.penaltyPerRow): number {
  return Math.max(DEFAULT_RIDGE.minPenalty, penaltyPerRow * rows);
}

/**
 * Each fold's raw head from merged sums: fold f is trained on every other fold's rows
 * (Σ over folds minus fold f). Its scores approximate one-hot labels; {@link scaleHead} makes
 * them a calibrated softmax head. A fold whose training rows are all its own (one fold holds
 * everything) is refused.
 */
export async function solveFoldHeads(merged: GramSums, options: { penaltyPerRow?: number } = {}): Promise<FoldHeads> {
  const { dim, classes, folds } = merged;
  const n = dim + 1;
  const total = new Float64Array(packedLength(n));
  const totalCross = new Float64Array(n * classes);
  let rows = 0;
  for (let f = 0; f < folds; f++) {
    rows += merged.counts[f];
    for (let k = 0; k < total.length; k++) total[k] += merged.gram[f][k];
    for (let k = 0; k < totalCross.length; k++) totalCross[k] += merged.cross[f][k];
  }
  const heads: SoftmaxWeights[] = [];
  const trainCounts: number[] = [];
  for (let f = 0; f < folds; f++) {
    const train = rows - merged.counts[f];
    if (train <= 0) throw new BadRequestError(`ridge: fold ${f} has no training rows (every image is in it)`);
    const lambda = ridgePenalty(train, options.penaltyPerRow);
    const a = new Float64Array(n * n);
    let k = 0;
    const g = merged.gram[f];
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++, k++) {
        const v = total[k] - g[k];
        a[i * n + j] = v;
        a[j * n + i] = v;
      }
      // In code units x' = x·QUANT_SCALE the same penalty on w is λ·scale² on w' = w / scale.
      a[i * n + i] += i < dim ? lambda * QUANT_SCALE * QUANT_SCALE : lambda;
    }
    const b = new Float64Array(n * classes);
    const c = merged.cross[f];
    for (let q = 0; q < b.length; q++) b[q] = totalCross[q] - c[q];
    await choleskySolve(a, b, n, classes);
    heads.push({ dim, classes, w: Float32Array.from(b.subarray(0, dim * classes), (v) => v * QUANT_SCALE), b: Float32Array.from(b.subarray(dim * classes)) });
    trainCounts.push(train);
  }
  return { heads, trainCounts };
}

/** A head whose logits are `temperature` times the given head's. */
export function scaleHead(head: SoftmaxWeights, temperature: number): SoftmaxWeights {
  return { ...head, w: head.w.map((v) => v * temperature), b: head.b.map((v) => v * temperature) };
}

/** Per temperature, Σ −log softmax(T · s)[given] over a node's rows. */
export interface TemperatureLosses {
  /** Σ −log p(given) per candidate temperature. */
  losses: Float64Array;
}

/** A node's log-losses of its out-of-fold scores at each candidate temperature. */
export function localTemperatureLosses(scores: Float64Array, labels: ArrayLike<number>, classes: number, temperatures: readonly number[] = DEFAULT_RIDGE.temperatures): TemperatureLosses {
  const losses = new Float64Array(temperatures.length);
  for (let i = 0; i < labels.length; i++) {
    const o = i * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, scores[o + c]);
    temperatures.forEach((t, k) => {
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(t * (scores[o + c] - max));
      losses[k] += Math.log(sum) - t * (scores[o + labels[i]] - max);
    });
  }
  return { losses };
}

/** The summed losses of several nodes. */
export function mergeTemperatureLosses(parts: readonly TemperatureLosses[]): TemperatureLosses {
  if (parts.length === 0) throw new BadRequestError('ridge: no temperature losses to merge');
  const losses = new Float64Array(parts[0].losses.length);
  for (const p of parts) {
    if (p.losses.length !== losses.length) throw new BadRequestError(`ridge: ${p.losses.length} temperature losses, expected ${losses.length}`);
    for (let k = 0; k < losses.length; k++) losses[k] += p.losses[k];
  }
  return { losses };
}

/** The candidate temperature with the smallest summed log-loss. */
export function bestTemperature(merged: TemperatureLosses, temperatures: readonly number[] = DEFAULT_RIDGE.temperatures): number {
  let best = 0;
  for (let k = 1; k < merged.losses.length; k++) if (merged.losses[k] < merged.losses[best]) best = k;
  return temperatures[best];
}

/** One node's quantised standardised rows ({@link quantizeFeatures}), labels and content folds. */
export interface RidgeNodeData {
  /** 8-bit codes, `labels.length × dim`. */
  codes: Uint8Array;
  /** Class index of each row. */
  labels: Int32Array;
  /** Fold of each row. */
  folds: Int32Array;
}

/**
 * Both steps over simulated nodes in one process, exchanging only what the protocol exchanges:
 * the calibrated fold heads, the temperature, and each node's out-of-fold probabilities.
 */
export async function ridgeCrossValidation(
  nodes: readonly RidgeNodeData[],
  options: { dim: number; classes: number; folds: number; penaltyPerRow?: number },
): Promise<CalibratedFoldHeads> {
  const merged = mergeGramSums(await Promise.all(nodes.map((n) => localGramSums(n.codes, n.labels, n.folds, options))));
  const raw = await solveFoldHeads(merged, options);
  const losses = mergeTemperatureLosses(nodes.map((n) => localTemperatureLosses(headLogits(dequantizeFeatures(n.codes), raw.heads, n.folds), n.labels, options.classes)));
  const temperature = bestTemperature(losses);
  return { heads: raw.heads.map((h) => scaleHead(h, temperature)), trainCounts: raw.trainCounts, temperature };
}
