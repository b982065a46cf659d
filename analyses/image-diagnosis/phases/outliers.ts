/**
 * The outliers phase (the opt-in `outliers` task): an out-of-distribution score from the features
 * the diagnosis already extracts, in two steps.
 *
 *   step 0  nodes send per-class feature counts, sums and sums of squares; the aggregator pools the
 *           class means and the within-class variance of every feature
 *   step 1  nodes score their images — the distance to the nearest class mean, in within-class
 *           standard deviations (root mean square over the features: a Mahalanobis distance under
 *           the pooled diagonal covariance) — and send a histogram of log10 scores; the aggregator
 *           sets the cut-off from the merged quantiles
 *
 * The covariance is diagonal because the built-in features have 1024+ dimensions: a full pooled
 * covariance would be millions of numbers per message and singular for a few hundred images.
 * The phase runs after the training, so every node scores the features in the same state
 * (standardised when the iterate phase ran); the score does not depend on that standardisation.
 */
import { BadRequestError, Tensor } from 'flame-sdk';
import type { Phase } from 'flame-sdk';
import { binOf, histogramQuantile, type BinSpec } from '../distribution.js';
import type { DiagnosisAggregate } from '../global.js';
import { f64, settled, type DiagnosisContext, type NodeState } from './context.js';

/** Rounds the phase takes when the outliers task runs. */
export const OUTLIER_STEPS = 2;

/** Bins of log10 of the score (inliers are near 0: about one standard deviation from their class). */
export const OUTLIER_BINS: BinSpec = { min: -3, max: 3, bins: 600 };

/**
 * The cut-off rule, on log10 scores: above the third quartile by more than `iqr` inter-quartile
 * ranges (Tukey's fence), and at least `minRise` decades above the median.
 */
export const OUTLIER_RULES = {
  /** Inter-quartile ranges above the third quartile. */
  iqr: 1.5,
  /** Least distance above the median, in decades. */
  minRise: 0.3,
} as const;

/** Floor of a feature's pooled variance, relative to the mean variance: keeps constant features from dominating. */
const VARIANCE_FLOOR = 1e-3;

/**
 * What a node sends in the outliers phase: step 0 its class sums, step 1 its score histogram.
 *
 * @property classSums.__type.counts Images per class (global class order), under the disclosure policy.
 * @property classSums.__type.sum Σ x per class and feature, `classes × dim`.
 * @property classSums.__type.sumSquares Σ x² per class and feature, `classes × dim`.
 */
export type OutliersPartial = {
  /** Step 0: the node's per-class feature sums. */
  classSums?: { counts: number[]; sum: Tensor; sumSquares: Tensor };
  /** Counts of the node's log10 scores in {@link OUTLIER_BINS}, under the disclosure policy. */
  scoreHistogram?: number[];
};

/** The pooled model the nodes score against (in the global from step 1 on). */
export interface OutlierModel {
  /** Class means, `classes × dim` (rows of classes without images are unused). */
  means: Tensor;
  /** 1 for a class with images, 0 otherwise. */
  present: number[];
  /** 1 / pooled within-class variance per feature. */
  invVar: Tensor;
}

/** Node side, step 0: per-class counts, sums and sums of squares (a class held below the minimum count is left out). */
export function classSumsLocal(s: NodeState, classes: number): OutliersPartial {
  const { labels, values, dim } = settled(s.features, 'features');
  const held = new Array<number>(classes).fill(0);
  for (const l of labels) held[l]++;
  const counts = s.control.counts('class_counts', held);
  const sum = new Float64Array(classes * dim);
  const sumSquares = new Float64Array(classes * dim);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (counts[c] === 0) continue;
    for (let j = 0; j < dim; j++) {
      const x = values[i * dim + j];
      sum[c * dim + j] += x;
      sumSquares[c * dim + j] += x * x;
    }
  }
  return { classSums: { counts, sum: new Tensor('float64', [classes * dim], sum), sumSquares: new Tensor('float64', [classes * dim], sumSquares) } };
}

/** Aggregator side, step 0: class means and pooled within-class variances from the nodes' sums (checked: they come from peers). */
export function outlierModelFrom(partials: ReadonlyArray<{ node: string; value: OutliersPartial }>, classes: number): OutlierModel {
  let dim = -1;
  const n = new Array<number>(classes).fill(0);
  let sum: Float64Array | undefined;
  let sq: Float64Array | undefined;
  for (const { node, value } of partials) {
    const cs = value.classSums;
    const bad = (what: string): never => {
      throw new BadRequestError(`outliers: node "${node}" sent ${what}`);
    };
    if (!cs || !Array.isArray(cs.counts) || cs.counts.length !== classes) bad(`no class counts for ${classes} classes`);
    if (!cs!.counts.every((c) => Number.isInteger(c) && c >= 0)) bad('class counts that are not non-negative integers');
    const d = cs!.sum?.data?.length / classes;
    if (!(d >= 1) || !Number.isInteger(d) || cs!.sumSquares?.data?.length !== d * classes) bad(`class sums that are not ${classes} × dim`);
    if (dim < 0) {
      dim = d;
      sum = new Float64Array(classes * dim);
      sq = new Float64Array(classes * dim);
    } else if (d !== dim) bad(`class sums of ${d} features, others sent ${dim}`);
    cs!.counts.forEach((c, k) => (n[k] += c));
    f64(cs!.sum).forEach((v, k) => (sum![k] += v));
    f64(cs!.sumSquares).forEach((v, k) => (sq![k] += v));
  }
  if (!sum || !sq) throw new BadRequestError('outliers: no node sent class sums');
  const present = n.map((c): number => (c > 0 ? 1 : 0));
  const total = n.reduce((a, c) => a + c, 0);
  const groups = present.reduce((a, p) => a + p, 0);
  const means = new Float64Array(classes * dim);
  const variance = new Float64Array(dim);
  for (let c = 0; c < classes; c++) {
    if (n[c] === 0) continue;
    for (let j = 0; j < dim; j++) {
      const m = sum[c * dim + j] / n[c];
      means[c * dim + j] = m;
      variance[j] += Math.max(0, sq[c * dim + j] - n[c] * m * m);
    }
  }
  const dof = Math.max(1, total - groups);
  let meanVar = 0;
  for (let j = 0; j < dim; j++) meanVar += (variance[j] /= dof) / dim;
  const floor = VARIANCE_FLOOR * meanVar + 1e-12;
  const invVar = variance.map((v) => 1 / Math.max(v, floor));
  return { means: new Tensor('float64', [classes * dim], means), present, invVar: new Tensor('float64', [dim], invVar) };
}

/** The score of every feature row: RMS standardised distance to the nearest class mean. */
export function outlierScores(values: Float32Array, dim: number, model: OutlierModel): Float64Array {
  const means = f64(model.means);
  const invVar = f64(model.invVar);
  if (invVar.length !== dim) throw new BadRequestError(`outliers: the model has ${invVar.length} features, the node's rows ${dim}`);
  const rows = values.length / dim;
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = Infinity;
    for (let c = 0; c < model.present.length; c++) {
      if (!model.present[c]) continue;
      let d = 0;
      for (let j = 0; j < dim; j++) {
        const z = values[i * dim + j] - means[c * dim + j];
        d += z * z * invVar[j];
      }
      best = Math.min(best, d);
    }
    out[i] = Math.sqrt(best / dim);
  }
  return out;
}

/** log10 of a score as binned (0 goes to the lowest bin). */
export function logScore(score: number): number {
  return score > 0 ? Math.log10(score) : OUTLIER_BINS.min;
}

/** The node's scores (kept in its state; recomputed from the global's model after a restart). */
export function nodeOutlierScores(s: NodeState, g: DiagnosisAggregate): Float64Array {
  if (s.outlierScores) return s.outlierScores;
  const { values, dim } = settled(s.features, 'features');
  s.outlierScores = outlierScores(values, dim, settled(g.outlierModel as OutlierModel | undefined, 'outlier model'));
  return s.outlierScores;
}

/** Node side, step 1: the histogram of its log10 scores. */
export function scoreHistogramLocal(s: NodeState, g: DiagnosisAggregate): OutliersPartial {
  const h = new Array<number>(OUTLIER_BINS.bins).fill(0);
  for (const v of nodeOutlierScores(s, g)) h[binOf(OUTLIER_BINS, logScore(v))]++;
  return { scoreHistogram: s.control.histogram('histogram_bins', h) };
}

/** Aggregator side, step 1: the log10 cut-off from the merged histogram (checked: it comes from peers). */
export function outlierCutoffFrom(partials: ReadonlyArray<{ node: string; value: OutliersPartial }>): number {
  const merged = new Array<number>(OUTLIER_BINS.bins).fill(0);
  for (const { node, value } of partials) {
    const h = value.scoreHistogram;
    if (!Array.isArray(h) || h.length !== OUTLIER_BINS.bins || !h.every((c) => typeof c === 'number' && Number.isFinite(c) && c >= 0)) {
      throw new BadRequestError(`outliers: node "${node}" sent no valid score histogram (${OUTLIER_BINS.bins} non-negative counts)`);
    }
    h.forEach((c, b) => (merged[b] += c));
  }
  const q = (p: number): number => histogramQuantile(OUTLIER_BINS, merged, p);
  const [q25, q50, q75] = [q(0.25), q(0.5), q(0.75)];
  return Math.max(q75 + OUTLIER_RULES.iqr * (q75 - q25), q50 + OUTLIER_RULES.minRise);
}

/** The outliers phase: two steps with the outliers task, none otherwise. */
export function outliersPhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, OutliersPartial> {
  return {
    name: 'outliers',
    steps: () => (ctx.tasks.includes('outliers') ? OUTLIER_STEPS : 0),
    local: ({ state, global, step }) => (step === 0 ? classSumsLocal(state, global.setup.classes.length) : scoreHistogramLocal(state, global)),
    merge(partials, { sdk, previous, step }) {
      const parts = partials.map((p) => ({ node: p.nodeId, value: p.value }));
      const next: DiagnosisAggregate =
        step === 0 ? { ...previous, outlierModel: outlierModelFrom(parts, previous.setup.classes.length) } : { ...previous, outlierCutoff: outlierCutoffFrom(parts) };
      ctx.report(sdk, 'outliers', 0.9 + 0.05 * (step + 1), 'outliers');
      return next;
    },
  };
}
