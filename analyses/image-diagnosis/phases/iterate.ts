/**
 * The iterate phase: the K cross-validation heads in closed form (src/ml/ridge.ts) in two steps —
 * step 0 each node's per-fold sums of its quantised features, from which the aggregator solves the
 * fold heads; step 1 each node's log-losses of its out-of-fold scores over the candidate
 * temperatures, from which the aggregator picks one and keeps the scaled heads — while the first
 * steps also carry the federated PCA's power iterations (projection.ts). Folds come from each
 * image's content, and every sum is exact, so the heads are those of one node holding every image.
 */
import { BadRequestError, Tensor, yieldToEventLoop } from 'flame-sdk';
import { contentFolds, dequantizeFeatures, localGramSums, mergeGramSums, quantizeFeatures, solveFoldHeads, type GramSums } from 'flame-sdk/ml';
import { bestTemperature, localTemperatureLosses, mergeTemperatureLosses, scaleHead } from 'flame-sdk/ml';
import { DEFAULT_PCA, localCovarianceProduct, mergePowerStep } from 'flame-sdk/ml';
import { standardize, type SoftmaxWeights } from 'flame-sdk/ml';
import type { Phase } from 'flame-sdk';
import { discloseGramSums } from '../disclosure.js';
import type { DiagnosisAggregate } from '../global.js';
import { f32, f64, logitsInChunks, settled, type DiagnosisContext, type NodeState } from './context.js';

/**
 * A head as it travels: `w` flat `dim × classes`.
 *
 * @property w The weight matrix.
 * @property b The bias, one per class.
 */
export type WeightTensors = { w: Tensor; b: Tensor };

/**
 * A node's per-fold sums as they travel (ridge.ts's {@link GramSums}: code units, exact integers,
 * int32 where they fit).
 *
 * @property counts Rows per fold.
 * @property gram Per fold, the packed upper triangle of the Gram matrix of [codes − 128, 1].
 * @property cross Per fold, Σ [codes − 128, 1] yᵀ.
 */
export type GramTensors = { counts: number[]; gram: Tensor[]; cross: Tensor[] };

/**
 * What a node sends in an iterate step.
 *
 * @property sums Step 0: the node's per-fold sums.
 * @property losses Step 1: the node's summed log-loss at each candidate temperature.
 * @property product While the PCA runs: Σ x xᵀ Q over the node's standardised features x, for the current basis Q.
 */
export type IteratePartial = { sums?: GramTensors; losses?: Tensor; product?: Tensor };

/** Where in the phase a step is. */
export interface IterateStep {
  step: number;
  folds: number;
  /** Steps that train (2, or 0 without training) and that run the PCA. */
  trainSteps: number;
  pcaSteps: number;
}

/**
 * Node side (the phase's `enter`, replayed on a resume): standardised features as their 8-bit
 * codes stand for them, the codes while the sums are to be sent, and each image's fold from its content.
 */
export async function standardizeAndFold(s: NodeState, g: DiagnosisAggregate, folds: number): Promise<void> {
  const { mirrored, ...features } = settled(s.features, 'features');
  const st = settled(g.standardizer, 'standardizer');
  const standardizer = { mean: f32(st.mean), invStd: f32(st.invStd) };
  const fold = contentFolds(features.digests, folds);
  s.folds = fold;
  const dim = features.dim;
  const n = features.values.length / dim;
  // An image and its mirror train in the same fold (so neither predicts the other), and the linear
  // heads predict from the mean of the two feature rows — the mean of their two predictions' logits.
  const codes = new Uint8Array(n * dim * (mirrored ? 2 : 1));
  const values = new Float32Array(n * dim);
  for (let start = 0; start < n; start += CODE_CHUNK_ROWS) {
    const [a, b] = [start * dim, Math.min(n, start + CODE_CHUNK_ROWS) * dim];
    const own = quantizeFeatures(standardize(features.values.subarray(a, b), standardizer));
    codes.set(own, a);
    const mean = dequantizeFeatures(own);
    if (mirrored) {
      const mirror = quantizeFeatures(standardize(mirrored.subarray(a, b), standardizer));
      codes.set(mirror, n * dim + a);
      const m = dequantizeFeatures(mirror);
      for (let i = 0; i < mean.length; i++) mean[i] = 0.5 * (mean[i] + m[i]);
    }
    values.set(mean, a);
    await yieldToEventLoop();
  }
  s.features = { ...features, values };
  const twice = <T extends Int32Array>(x: T): Int32Array => {
    const out = new Int32Array(x.length * 2);
    out.set(x);
    out.set(x, x.length);
    return out;
  };
  s.trainRows = mirrored ? { codes, labels: twice(features.labels), folds: twice(fold) } : { codes, labels: features.labels, folds: fold };
}

/** Rows standardised and quantised between two turns of the event loop (heartbeats must not wait for a whole node's features). */
const CODE_CHUNK_ROWS = 256;

/** Integer sums travel as int32 when they fit (half the bytes of float64; the Gram matrices are most of the run's traffic). */
function compactTensor(v: Float64Array): Tensor {
  let fits = true;
  for (let i = 0; i < v.length && fits; i++) fits = v[i] >= -0x80000000 && v[i] <= 0x7fffffff;
  return fits ? new Tensor('int32', [v.length], Int32Array.from(v)) : new Tensor('float64', [v.length], v);
}

/** The values of a tensor of sums, as float64 (int32 or float64 on the wire). */
function sumsOf(t: Tensor): Float64Array {
  if (t.dtype === 'float64') return t.data as Float64Array;
  if (t.dtype === 'int32') return Float64Array.from(t.data as Int32Array);
  throw new BadRequestError(`diagnosis: fold sums of type ${t.dtype}, expected int32 or float64`);
}

function headsOf(list: readonly WeightTensors[], dim: number, classes: number): SoftmaxWeights[] {
  return list.map((h) => ({ dim, classes, w: f32(h.w), b: f32(h.b) }));
}

function tensorsOf(h: SoftmaxWeights): WeightTensors {
  return { w: new Tensor('float32', [h.w.length], h.w), b: new Tensor('float32', [h.b.length], h.b) };
}

/** Node side: one step's partial. */
export async function iterateLocal(s: NodeState, g: DiagnosisAggregate, at: IterateStep): Promise<IteratePartial> {
  const { labels, values, dim } = settled(s.features, 'features');
  const classes = g.setup.classes.length;
  const folds = settled(s.folds, 'folds');
  const out: IteratePartial = {};
  if (at.step === 0 && at.trainSteps > 0) {
    const rows = settled(s.trainRows, 'training rows');
    const sums = discloseGramSums(s.control, await localGramSums(rows.codes, rows.labels, rows.folds, { dim, classes, folds: at.folds }));
    s.trainRows = undefined;
    out.sums = { counts: sums.counts, gram: sums.gram.map(compactTensor), cross: sums.cross.map(compactTensor) };
  } else if (at.step === 1 && at.trainSteps > 0) {
    const heads = headsOf(settled(g.rawHeads, 'raw fold heads'), dim, classes);
    const losses = localTemperatureLosses(await logitsInChunks(values, heads, folds), labels, classes);
    out.losses = new Tensor('float64', [losses.losses.length], losses.losses);
  }
  if (at.step < at.pcaSteps && g.basis) {
    // Standardised features have mean zero over all nodes: the covariance is centred on 0.
    out.product = new Tensor('float64', [g.basis.data.length], await localCovarianceProduct(values, dim, new Float64Array(dim), f64(g.basis)));
  }
  return out;
}

/**
 * Aggregator side: after step 0 the raw fold heads, after step 1 the calibrated ones (the fold
 * heads every later phase predicts with) and their training counts; and the next PCA basis, or its
 * axes after the last power iteration.
 */
export async function mergeIterate(partials: readonly IteratePartial[], prev: DiagnosisAggregate, at: IterateStep): Promise<DiagnosisAggregate> {
  const { step } = at;
  const next: DiagnosisAggregate = { ...prev };
  const classes = prev.setup.classes.length;
  if (step === 0 && at.trainSteps > 0) {
    const dim = settled(prev.standardizer, 'standardizer').mean.data.length;
    const parts: GramSums[] = partials.map((p) => {
      const s = settled(p.sums, 'fold sums');
      return { dim, classes, folds: at.folds, counts: s.counts, gram: s.gram.map(sumsOf), cross: s.cross.map(sumsOf) };
    });
    const raw = await solveFoldHeads(mergeGramSums(parts));
    next.rawHeads = raw.heads.map(tensorsOf);
    next.foldCounts = raw.trainCounts;
  } else if (step === 1 && at.trainSteps > 0) {
    const losses = mergeTemperatureLosses(partials.map((p) => ({ losses: f64(settled(p.losses, 'temperature losses')) })));
    const temperature = bestTemperature(losses);
    const dim = settled(prev.standardizer, 'standardizer').mean.data.length;
    next.foldWeights = headsOf(settled(prev.rawHeads, 'raw fold heads'), dim, classes).map((h) => tensorsOf(scaleHead(h, temperature)));
    next.temperature = temperature;
    delete next.rawHeads;
  }
  if (step < at.pcaSteps && prev.basis) {
    const basis = f64(prev.basis);
    const dim = basis.length / (DEFAULT_PCA.components + DEFAULT_PCA.oversample);
    const products = partials.map((p) => f64(settled(p.product, 'covariance product')));
    const merged = mergePowerStep(products, basis, { step, iterations: at.pcaSteps - 1, mean: new Float64Array(dim), count: prev.setup.count, components: DEFAULT_PCA.components });
    if ('basis' in merged) next.basis = new Tensor('float64', [merged.basis.length], merged.basis);
    else {
      next.pca = { mean: new Tensor('float64', [dim], merged.pca.mean), axes: new Tensor('float64', [merged.pca.axes.length], merged.pca.axes) };
      next.basis = null;
    }
  }
  return next;
}

/** The iterate phase: as many steps as the longer of training and PCA. */
export function iteratePhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, IteratePartial> {
  const at = (step: number): IterateStep => ({ step, folds: ctx.folds, trainSteps: ctx.trainSteps, pcaSteps: ctx.pcaSteps });
  const steps = Math.max(ctx.trainSteps, ctx.pcaSteps);
  return {
    name: 'iterate',
    steps: () => steps,
    enter: ({ state, global }) => standardizeAndFold(state, global, ctx.folds),
    local: ({ state, global, step }) => iterateLocal(state, global, at(step)),
    async merge(partials, { sdk, previous, step }) {
      const next = await mergeIterate(
        partials.map((p) => p.value),
        previous,
        at(step),
      );
      if (step < ctx.trainSteps) ctx.report(sdk, 'train', 0.35 + 0.5 * ((step + 1) / steps), 'mislabeled_images');
      else if (ctx.trainSteps === 0) ctx.report(sdk, 'pca', 0.35 + 0.5 * ((step + 1) / ctx.pcaSteps));
      return next;
    },
  };
}
