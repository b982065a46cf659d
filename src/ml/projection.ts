/**
 * A 2-D projection of feature vectors for plotting: principal components of the pooled
 * covariance, found by block power (subspace) iteration. Every step is a sum over nodes —
 * Σx for the mean, then Σ(x−μ)(x−μ)ᵀQ for the current basis Q — so the aggregator never needs
 * the D×D covariance nor a single sample, and messages stay D×(components+oversampling) small.
 */
import * as ort from 'onnxruntime-node';
import { BadRequestError } from '../errors.js';
import { GraphBuilder, attr, encodeModel } from './onnx-writer.js';
import { SeededRandom } from './random.js';
import { SessionCache } from './session-cache.js';

/** The principal axes found. */
export interface Pca {
  /** Length of the vectors projected. */
  dim: number;
  /** The pooled mean, subtracted before projecting. */
  mean: Float64Array;
  /** `components` unit vectors of length `dim`, strongest first, row-major. */
  axes: Float64Array;
  /** Number of axes. */
  components: number;
  /** Variance along each axis. */
  variances: number[];
}

/** One node's Σx and count. */
export interface MeanSums {
  /** Number of rows summed. */
  count: number;
  /** Σx per dimension. */
  sum: Float64Array;
}

function rows(features: Float32Array, dim: number, what: string): number {
  if (dim <= 0 || features.length % dim !== 0) throw new BadRequestError(`${what}: ${features.length} values is not a multiple of dimension ${dim}`);
  return features.length / dim;
}

/** Step 1, on a node: Σx and the sample count. */
export function localMeanSums(features: Float32Array, dim: number): MeanSums {
  const n = rows(features, dim, 'projection');
  const sum = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) sum[j] += features[i * dim + j];
  return { count: n, sum };
}

/** Step 1, on the aggregator: the pooled mean. */
export function meanFrom(parts: readonly MeanSums[]): Float64Array {
  const total = parts.reduce((a, p) => a + p.count, 0);
  if (total === 0) throw new BadRequestError('projection: no samples');
  const dim = parts[0].sum.length;
  const mean = new Float64Array(dim);
  for (const p of parts) {
    if (p.sum.length !== dim) throw new BadRequestError(`projection: dimension ${p.sum.length} does not match ${dim}`);
    for (let j = 0; j < dim; j++) mean[j] += p.sum[j];
  }
  return mean.map((v) => v / total);
}

/**
 * Step 2, on a node: Σ (x−μ)(x−μ)ᵀ Q for a basis Q (`dim × m`, row-major), computed as
 * Xcᵀ(Xc Q) without forming the covariance: float32 products in onnxruntime over chunks of rows,
 * the chunks added in float64 (the power iteration needs directions, not exact sums; the same
 * loop in JavaScript was a tenth of a diagnosis' CPU).
 */
export async function localCovarianceProduct(features: Float32Array, dim: number, mean: Float64Array, basis: Float64Array): Promise<Float64Array> {
  const n = rows(features, dim, 'projection');
  const m = basis.length / dim;
  if (!Number.isInteger(m) || mean.length !== dim) throw new BadRequestError(`projection: basis of ${basis.length} values or mean of ${mean.length} does not fit dimension ${dim}`);
  const out = new Float64Array(dim * m);
  if (n === 0) return out;
  const session = await sessions.get(`covariance-product:${dim}x${m}`, () => productGraph(dim, m));
  const q = new ort.Tensor('float32', Float32Array.from(basis), [dim, m]);
  const chunk = new Float32Array(Math.min(n, PRODUCT_CHUNK) * dim);
  for (let start = 0; start < n; start += PRODUCT_CHUNK) {
    const count = Math.min(PRODUCT_CHUNK, n - start);
    const x = chunk.subarray(0, count * dim);
    for (let i = 0; i < count; i++) {
      const base = (start + i) * dim;
      for (let j = 0; j < dim; j++) x[i * dim + j] = features[base + j] - mean[j];
    }
    const result = await session.run({ x: new ort.Tensor('float32', x, [count, dim]), q });
    const part = result.product.data as Float32Array;
    for (let k = 0; k < part.length; k++) out[k] += part[k];
  }
  return out;
}

/** Rows per onnxruntime call of the covariance product (bounds the float32 copy). */
const PRODUCT_CHUNK = 4096;

const sessions = new SessionCache();

/** Xᵀ(X Q) for `rows × dim` X and `dim × m` Q. */
function productGraph(dim: number, m: number): Uint8Array {
  const g = new GraphBuilder('covariance-product');
  g.input('x', 'float32', ['rows', dim]);
  g.input('q', 'float32', [dim, m]);
  const projected = g.op('MatMul', ['x', 'q']);
  g.op('MatMul', [g.op('Transpose', ['x'], { perm: attr.ints([1, 0]) }), projected], undefined, 'product');
  g.output('product', 'float32', [dim, m]);
  return encodeModel(g.build());
}

/** Adds the nodes' products. */
export function mergeProducts(parts: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(parts[0].length);
  for (const p of parts) for (let i = 0; i < out.length; i++) out[i] += p[i];
  return out;
}

/** Orthonormalises the columns of a `dim × m` matrix in place (modified Gram–Schmidt). */
export function orthonormalize(basis: Float64Array, dim: number): Float64Array {
  const m = basis.length / dim;
  for (let c = 0; c < m; c++) {
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += basis[j * m + c] * basis[j * m + p];
      for (let j = 0; j < dim; j++) basis[j * m + c] -= dot * basis[j * m + p];
    }
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += basis[j * m + c] ** 2;
    norm = Math.sqrt(norm);
    // A vanished column (rank-deficient data) is replaced by a unit vector, then re-orthogonalised next round.
    for (let j = 0; j < dim; j++) basis[j * m + c] = norm > 1e-300 ? basis[j * m + c] / norm : j === c % dim ? 1 : 0;
  }
  return basis;
}

/** A seeded random starting basis, the same on every node and run. */
export function initialBasis(dim: number, m: number, seed: number): Float64Array {
  const rng = new SeededRandom(seed);
  return orthonormalize(Float64Array.from({ length: dim * m }, () => rng.normal()), dim);
}

/** Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations. */
function symmetricEigen(a: Float64Array, m: number): { values: number[]; vectors: Float64Array } {
  const s = Float64Array.from(a);
  const v = new Float64Array(m * m);
  for (let i = 0; i < m; i++) v[i * m + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < m; p++) for (let q = p + 1; q < m; q++) off += s[p * m + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = s[p * m + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (s[q * m + q] - s[p * m + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < m; k++) {
          const skp = s[k * m + p];
          const skq = s[k * m + q];
          s[k * m + p] = c * skp - sn * skq;
          s[k * m + q] = sn * skp + c * skq;
        }
        for (let k = 0; k < m; k++) {
          const spk = s[p * m + k];
          const sqk = s[q * m + k];
          s[p * m + k] = c * spk - sn * sqk;
          s[q * m + k] = sn * spk + c * sqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = v[k * m + p];
          const vkq = v[k * m + q];
          v[k * m + p] = c * vkp - sn * vkq;
          v[k * m + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Array.from({ length: m }, (_, i) => s[i * m + i]), vectors: v };
}

/**
 * Final step, on the aggregator (Rayleigh–Ritz): from the basis Q and the merged product
 * CQ, the leading eigenvectors of C within span(Q).
 */
export function pcaFrom(mean: Float64Array, basis: Float64Array, product: Float64Array, count: number, components: number): Pca {
  const dim = mean.length;
  const m = basis.length / dim;
  if (components > m) throw new BadRequestError(`projection: ${components} components from a basis of ${m}`);
  const small = new Float64Array(m * m); // Qᵀ C Q
  for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += basis[j * m + a] * product[j * m + b];
    small[a * m + b] = s;
  }
  for (let a = 0; a < m; a++) for (let b = a + 1; b < m; b++) small[a * m + b] = small[b * m + a] = (small[a * m + b] + small[b * m + a]) / 2;
  const { values, vectors } = symmetricEigen(small, m);
  const order = values.map((v, i) => ({ v, i })).sort((x, y) => y.v - x.v).slice(0, components);
  const axes = new Float64Array(components * dim);
  order.forEach(({ i }, c) => {
    for (let j = 0; j < dim; j++) {
      let s = 0;
      for (let a = 0; a < m; a++) s += basis[j * m + a] * vectors[a * m + i];
      axes[c * dim + j] = s;
    }
    // Fix the sign (largest-magnitude coordinate positive) so every run plots the same way round.
    let big = 0;
    for (let j = 0; j < dim; j++) if (Math.abs(axes[c * dim + j]) > Math.abs(axes[c * dim + big])) big = j;
    if (axes[c * dim + big] < 0) for (let j = 0; j < dim; j++) axes[c * dim + j] = -axes[c * dim + j];
  });
  return { dim, mean, axes, components, variances: order.map(({ v }) => v / Math.max(1, count)) };
}

/** Coordinates of each row along the principal axes, row-major `n × components`. */
export function projectFeatures(features: Float32Array, pca: Pca): Float32Array {
  const n = rows(features, pca.dim, 'projection');
  const out = new Float32Array(n * pca.components);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < pca.components; c++) {
      let s = 0;
      for (let j = 0; j < pca.dim; j++) s += (features[i * pca.dim + j] - pca.mean[j]) * pca.axes[c * pca.dim + j];
      out[i * pca.components + c] = s;
    }
  }
  return out;
}

/** Settings of {@link federatedPca}. */
export interface PcaOptions {
  /** Number of axes to find (2 by default, for a 2-D plot). */
  components?: number;
  /** Extra basis vectors that speed up convergence of the leading ones (4 by default). */
  oversample?: number;
  /** Power iterations (4 by default: enough for a plot; each is one pass over every node's data). */
  iterations?: number;
  /** Seed of the random starting basis, shared by every node. */
  seed?: number;
}

/** The defaults of {@link PcaOptions}. */
export const DEFAULT_PCA: Required<PcaOptions> = { components: 2, oversample: 4, iterations: 4, seed: 99 };

/** Where the aggregator is in the power iterations, and what the last step needs. */
export interface PowerStep {
  /** Step 0..iterations: `iterations` power iterations, then one product for the axes. */
  step: number;
  /** How many power iterations the protocol runs. */
  iterations: number;
  /** The pooled mean the nodes centred on (its length is the dimension). */
  mean: Float64Array;
  /** Samples over all nodes. */
  count: number;
  /** Number of axes wanted. */
  components: number;
}

/**
 * Step 2, on the aggregator: from the nodes' products with `basis`, the next basis (`{basis}`, a
 * power iteration), or after the last iteration the principal axes (`{pca}`).
 */
export function mergePowerStep(products: readonly Float64Array[], basis: Float64Array, at: PowerStep): { basis: Float64Array } | { pca: Pca } {
  const product = mergeProducts(products);
  if (at.step < at.iterations) return { basis: orthonormalize(product, at.mean.length) };
  return { pca: pcaFrom(at.mean, basis, product, at.count, at.components) };
}

/** Runs the whole protocol over simulated nodes (each array stays with its node). */
export async function federatedPca(nodes: readonly Float32Array[], dim: number, options: PcaOptions = {}): Promise<Pca> {
  const o: Required<PcaOptions> = {
    components: options.components ?? DEFAULT_PCA.components,
    oversample: options.oversample ?? DEFAULT_PCA.oversample,
    iterations: options.iterations ?? DEFAULT_PCA.iterations,
    seed: options.seed ?? DEFAULT_PCA.seed,
  };
  const mean = meanFrom(nodes.map((x) => localMeanSums(x, dim)));
  const count = nodes.reduce((a, x) => a + x.length / dim, 0);
  let basis = initialBasis(dim, o.components + o.oversample, o.seed);
  for (let step = 0; ; step++) {
    const products = await Promise.all(nodes.map((x) => localCovarianceProduct(x, dim, mean, basis)));
    const next = mergePowerStep(products, basis, { step, iterations: o.iterations, mean, count, components: o.components });
    if ('pca' in next) return next.pca;
    basis = next.basis;
  }
}
