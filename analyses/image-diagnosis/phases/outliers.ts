/**
 * The outliers phase (the opt-in `outliers` task): an out-of-distribution score from the features
 * the diagnosis already extracts and from the images' pixels, in two passes of two steps.
 *
 *   step 0  nodes send per-class counts, sums and sums of squares of their feature rows and of a
 *           pixel block (each thumbnail in grey, box-resized to 16 × 16); the aggregator pools the
 *           class means and the within-class variance of every feature and pixel
 *   step 1  nodes score their images — the distance to the nearest class mean, in within-class
 *           standard deviations (root mean square over the features, and over the pixels, the two
 *           blocks weighing half each: a Mahalanobis distance under the pooled block-diagonal,
 *           diagonal-within-block covariance) — and send a histogram of log10 scores; the
 *           aggregator sets a first cut-off from the merged quantiles (OUTLIER_TRIM_RULES: tighter
 *           than the final OUTLIER_RULES)
 *   step 2  the same sums over the images at or below that cut-off only: out-of-distribution
 *           images inflate the variance of exactly the values that expose them (a pixel of the
 *           background that is black in every garment), so the model is pooled again without them
 *   step 3  the final scores under the second model, their histogram and the final cut-off
 *
 * The features alone miss noise images (random convolutions average noise away: uniform noise
 * lands near the clothes' features) and Fashion-MNIST inverted; the pixel block finds them, but
 * only with the second pass (analyses/image-diagnosis/EXPERIMENTS.md, "Outliers").
 * The covariance is diagonal because the built-in features have 1024+ dimensions: a full pooled
 * covariance would be millions of numbers per message and singular for a few hundred images (a
 * full 256 × 256 pixel covariance was tried, and found fewer plants than the diagonal).
 * The phase runs after the training, so every node scores the features in the same state
 * (standardised when the iterate phase ran); the score does not depend on that standardisation.
 */
import { BadRequestError, Tensor } from 'flame-sdk';
import type { Phase } from 'flame-sdk';
import { binOf, histogramQuantile, type BinSpec } from '../distribution.js';
import type { DiagnosisAggregate } from '../global.js';
import type { LocalData } from '../load.js';
import { boxResize } from '../signals.js';
import { f64, settled, type DiagnosisContext, type NodeState } from './context.js';

/** Rounds the phase takes when the outliers task runs. */
export const OUTLIER_STEPS = 4;

/** Bins of log10 of the score (inliers are near 0: about one standard deviation from their class). */
export const OUTLIER_BINS: BinSpec = { min: -3, max: 3, bins: 600 };

/**
 * The final cut-off rule, on log10 scores: above the third quartile by more than `iqr`
 * inter-quartile ranges (Tukey's fence), and at least `minRise` decades above the median.
 */
export const OUTLIER_RULES = {
  /** Inter-quartile ranges above the third quartile. */
  iqr: 2,
  /** Least distance above the median, in decades. */
  minRise: 0.3,
} as const;

/**
 * The first pass's cut-off, above which an image is left out of the second pass's sums: tighter than
 * the final one, so that plants near the clean tail do not inflate the variances that expose them.
 */
export const OUTLIER_TRIM_RULES = {
  /** Inter-quartile ranges above the third quartile. */
  iqr: 1,
  /** Least distance above the median, in decades. */
  minRise: 0,
} as const;

/** Floor of a feature's pooled variance, relative to the mean variance: keeps constant features from dominating. */
const VARIANCE_FLOOR = 1e-3;

/** Side of the grey pixel grid of the pixel block (every thumbnail is box-resized to it). */
export const PIXEL_SIDE = 16;
/** Values of the pixel block per image. */
export const PIXELS = PIXEL_SIDE * PIXEL_SIDE;
/** Floor of a pixel's pooled variance, relative to the mean pixel variance (pixels that are always black vary by nearly nothing). */
const PIXEL_VARIANCE_FLOOR = 0.05;

/** The pixel block of every image of a node: its thumbnail in grey (luma), box-resized to {@link PIXEL_SIDE}², 0–1. */
export function pixelRows(data: LocalData): Float32Array {
  const out = new Float32Array(data.images.length * PIXELS);
  data.images.forEach((im, i) => {
    const { thumbnail, thumbChannels, thumbHeight: h, thumbWidth: w } = im.signals;
    const plane = h * w;
    const lum = new Float32Array(plane);
    for (let p = 0; p < plane; p++) {
      lum[p] = thumbChannels === 1 ? thumbnail[p] : 0.299 * thumbnail[p] + 0.587 * thumbnail[plane + p] + 0.114 * thumbnail[2 * plane + p];
    }
    const small = boxResize(lum, h, w, PIXEL_SIDE, PIXEL_SIDE);
    for (let k = 0; k < PIXELS; k++) out[i * PIXELS + k] = small[k] / 255;
  });
  return out;
}

/**
 * What a node sends in the outliers phase: step 0 its class sums, step 1 its score histogram.
 *
 * @property classSums.__type.counts Images per class (global class order), under the disclosure policy.
 * @property classSums.__type.sum Σ x per class and feature, `classes × dim`.
 * @property classSums.__type.sumSquares Σ x² per class and feature, `classes × dim`.
 * @property classSums.__type.pixelSum Σ p per class and pixel of the pixel block, `classes × PIXELS`.
 * @property classSums.__type.pixelSumSquares Σ p² per class and pixel, `classes × PIXELS`.
 */
export type OutliersPartial = {
  /** Step 0: the node's per-class feature and pixel sums. */
  classSums?: { counts: number[]; sum: Tensor; sumSquares: Tensor; pixelSum: Tensor; pixelSumSquares: Tensor };
  /** Counts of the node's log10 scores in {@link OUTLIER_BINS}, under the disclosure policy. */
  scoreHistogram?: number[];
};

/** Class means and 1 / pooled within-class variance of one block of values (features or pixels). */
export interface OutlierBlock {
  /** Class means, `classes × dim` (rows of classes without images are unused). */
  means: Tensor;
  /** 1 / pooled within-class variance per value. */
  invVar: Tensor;
}

/** The pooled model the nodes score against (in the global from step 1 on). */
export interface OutlierModel extends OutlierBlock {
  /** 1 for a class with images, 0 otherwise. */
  present: number[];
  /** The pixel block's class means and variances (absent: the features alone are scored). */
  pixels?: OutlierBlock;
}

/** Adds the rows kept (`keep`, default all) of the classes counted in `counts` to per-class sums and sums of squares. */
function classBlockSums(labels: Int32Array, counts: readonly number[], rows: Float32Array, dim: number, classes: number, keep?: Uint8Array): { sum: Tensor; sumSquares: Tensor } {
  const sum = new Float64Array(classes * dim);
  const sumSquares = new Float64Array(classes * dim);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (counts[c] === 0 || (keep && !keep[i])) continue;
    for (let j = 0; j < dim; j++) {
      const x = rows[i * dim + j];
      sum[c * dim + j] += x;
      sumSquares[c * dim + j] += x * x;
    }
  }
  return { sum: new Tensor('float64', [classes * dim], sum), sumSquares: new Tensor('float64', [classes * dim], sumSquares) };
}

/** The node's pixel block (kept in its state; recomputed from its thumbnails after a restart). */
export function nodePixelRows(s: NodeState): Float32Array {
  s.outlierPixels ??= pixelRows(s.data);
  return s.outlierPixels;
}

/**
 * Node side, steps 0 and 2: per-class counts, feature and pixel sums and sums of squares of the
 * images kept (`keep`, default all; a class held below the minimum count is left out).
 */
export function classSumsLocal(s: NodeState, classes: number, keep?: Uint8Array): OutliersPartial {
  const { labels, values, dim } = settled(s.features, 'features');
  const held = new Array<number>(classes).fill(0);
  labels.forEach((l, i) => {
    if (!keep || keep[i]) held[l]++;
  });
  const counts = s.control.counts('class_counts', held);
  const features = classBlockSums(labels, counts, values, dim, classes, keep);
  const pixels = classBlockSums(labels, counts, nodePixelRows(s), PIXELS, classes, keep);
  return { classSums: { counts, ...features, pixelSum: pixels.sum, pixelSumSquares: pixels.sumSquares } };
}

/** Class means and pooled within-class variances (floored at `floor` × their mean) from summed counts, sums and sums of squares. */
function blockFrom(n: readonly number[], sum: Float64Array, sq: Float64Array, dim: number, floor: number): OutlierBlock {
  const classes = n.length;
  const total = n.reduce((a, c) => a + c, 0);
  const groups = n.filter((c) => c > 0).length;
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
  const least = floor * meanVar + 1e-12;
  const invVar = variance.map((v) => 1 / Math.max(v, least));
  return { means: new Tensor('float64', [classes * dim], means), invVar: new Tensor('float64', [dim], invVar) };
}

/** Aggregator side, step 0: class means and pooled within-class variances of the features and pixels from the nodes' sums (checked: they come from peers). */
export function outlierModelFrom(partials: ReadonlyArray<{ node: string; value: OutliersPartial }>, classes: number): OutlierModel {
  let dim = -1;
  const n = new Array<number>(classes).fill(0);
  let sum: Float64Array | undefined;
  let sq: Float64Array | undefined;
  const pixelSum = new Float64Array(classes * PIXELS);
  const pixelSq = new Float64Array(classes * PIXELS);
  for (const { node, value } of partials) {
    const cs = value.classSums;
    const bad = (what: string): never => {
      throw new BadRequestError(`outliers: node "${node}" sent ${what}`);
    };
    if (!cs || !Array.isArray(cs.counts) || cs.counts.length !== classes) bad(`no class counts for ${classes} classes`);
    if (!cs!.counts.every((c) => Number.isInteger(c) && c >= 0)) bad('class counts that are not non-negative integers');
    const d = cs!.sum?.data?.length / classes;
    if (!(d >= 1) || !Number.isInteger(d) || cs!.sumSquares?.data?.length !== d * classes) bad(`class sums that are not ${classes} × dim`);
    if (cs!.pixelSum?.data?.length !== classes * PIXELS || cs!.pixelSumSquares?.data?.length !== classes * PIXELS) bad(`pixel sums that are not ${classes} × ${PIXELS}`);
    if (dim < 0) {
      dim = d;
      sum = new Float64Array(classes * dim);
      sq = new Float64Array(classes * dim);
    } else if (d !== dim) bad(`class sums of ${d} features, others sent ${dim}`);
    cs!.counts.forEach((c, k) => (n[k] += c));
    f64(cs!.sum).forEach((v, k) => (sum![k] += v));
    f64(cs!.sumSquares).forEach((v, k) => (sq![k] += v));
    f64(cs!.pixelSum).forEach((v, k) => (pixelSum[k] += v));
    f64(cs!.pixelSumSquares).forEach((v, k) => (pixelSq[k] += v));
  }
  if (!sum || !sq) throw new BadRequestError('outliers: no node sent class sums');
  const present = n.map((c): number => (c > 0 ? 1 : 0));
  return { ...blockFrom(n, sum, sq, dim, VARIANCE_FLOOR), present, pixels: blockFrom(n, pixelSum, pixelSq, PIXELS, PIXEL_VARIANCE_FLOOR) };
}

/** Mean squared standardised distance of row `i` of `values` to class `c`'s mean of `block`. */
function blockDistance(values: Float32Array, i: number, dim: number, means: Float64Array, invVar: Float64Array, c: number): number {
  let d = 0;
  for (let j = 0; j < dim; j++) {
    const z = values[i * dim + j] - means[c * dim + j];
    d += z * z * invVar[j];
  }
  return d / dim;
}

/**
 * The score of every image: RMS standardised distance to the nearest class mean, over the features
 * and, when the model has them, the pixel block (each block weighing half: the mean of the two
 * blocks' mean squares). `pixels` holds the pixel block's rows (needed with a pixel model).
 */
export function outlierScores(values: Float32Array, dim: number, model: OutlierModel, pixels?: Float32Array): Float64Array {
  const means = f64(model.means);
  const invVar = f64(model.invVar);
  if (invVar.length !== dim) throw new BadRequestError(`outliers: the model has ${invVar.length} features, the node's rows ${dim}`);
  const rows = values.length / dim;
  const px = model.pixels ? { means: f64(model.pixels.means), invVar: f64(model.pixels.invVar) } : undefined;
  if (px && (!pixels || pixels.length !== rows * px.invVar.length)) throw new BadRequestError(`outliers: the model has a pixel block, the node gave no ${px.invVar.length} pixels per row`);
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = Infinity;
    for (let c = 0; c < model.present.length; c++) {
      if (!model.present[c]) continue;
      let d = blockDistance(values, i, dim, means, invVar, c);
      if (px) d = (d + blockDistance(pixels!, i, px.invVar.length, px.means, px.invVar, c)) / 2;
      best = Math.min(best, d);
    }
    out[i] = Math.sqrt(best);
  }
  return out;
}

/** log10 of a score as binned (0 goes to the lowest bin). */
export function logScore(score: number): number {
  return score > 0 ? Math.log10(score) : OUTLIER_BINS.min;
}

/** The node's scores under `model` (a pass's model; cached in its state per pass, recomputed from the global after a restart). */
function scoresOf(s: NodeState, model: OutlierModel): Float64Array {
  const { values, dim } = settled(s.features, 'features');
  return outlierScores(values, dim, model, model.pixels ? nodePixelRows(s) : undefined);
}

/** The node's scores under the first pass's model (all images counted), which pick the images the second pass counts. */
export function nodeTrimScores(s: NodeState, g: DiagnosisAggregate): Float64Array {
  s.outlierTrimScores ??= scoresOf(s, settled(g.outlierTrim?.model, 'first outlier model'));
  return s.outlierTrimScores;
}

/** The node's final scores, under the second pass's model. */
export function nodeOutlierScores(s: NodeState, g: DiagnosisAggregate): Float64Array {
  s.outlierScores ??= scoresOf(s, settled(g.outlierModel, 'outlier model'));
  return s.outlierScores;
}

/** Node side, step 2: the class sums of the images the first pass keeps (log10 score at most its cut-off). */
export function trimmedClassSumsLocal(s: NodeState, g: DiagnosisAggregate): OutliersPartial {
  const cutoff = settled(g.outlierTrim?.cutoff, 'first outlier cut-off');
  const scores = nodeTrimScores(s, g);
  const keep = Uint8Array.from(scores, (v) => (logScore(v) <= cutoff ? 1 : 0));
  return classSumsLocal(s, g.setup.classes.length, keep);
}

/** Node side, steps 1 and 3: the histogram of its log10 scores under `scores`. */
export function scoreHistogramLocal(s: NodeState, scores: Float64Array): OutliersPartial {
  const h = new Array<number>(OUTLIER_BINS.bins).fill(0);
  for (const v of scores) h[binOf(OUTLIER_BINS, logScore(v))]++;
  return { scoreHistogram: s.control.histogram('histogram_bins', h) };
}

/** Aggregator side, steps 1 and 3: the log10 cut-off from the merged histogram (checked: it comes from peers). */
export function outlierCutoffFrom(partials: ReadonlyArray<{ node: string; value: OutliersPartial }>, rules: { iqr: number; minRise: number } = OUTLIER_RULES): number {
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
  return Math.max(q75 + rules.iqr * (q75 - q25), q50 + rules.minRise);
}

/** What a node sends at `step` of the phase. */
function outliersLocal(s: NodeState, g: DiagnosisAggregate, step: number): OutliersPartial {
  if (step === 0) return classSumsLocal(s, g.setup.classes.length);
  if (step === 1) return scoreHistogramLocal(s, nodeTrimScores(s, g));
  if (step === 2) return trimmedClassSumsLocal(s, g);
  return scoreHistogramLocal(s, nodeOutlierScores(s, g));
}

/** What the aggregator adds to the global at `step`. */
function outliersMerge(parts: ReadonlyArray<{ node: string; value: OutliersPartial }>, previous: DiagnosisAggregate, step: number): DiagnosisAggregate {
  const classes = previous.setup.classes.length;
  if (step === 0) return { ...previous, outlierTrim: { model: outlierModelFrom(parts, classes), cutoff: null } };
  if (step === 1) return { ...previous, outlierTrim: { model: settled(previous.outlierTrim?.model, 'first outlier model'), cutoff: outlierCutoffFrom(parts, OUTLIER_TRIM_RULES) } };
  // The first pass is not needed past step 2: the nodes have what they kept from it.
  if (step === 2) return { ...previous, outlierTrim: undefined, outlierModel: outlierModelFrom(parts, classes) };
  return { ...previous, outlierCutoff: outlierCutoffFrom(parts) };
}

/** The outliers phase: {@link OUTLIER_STEPS} steps with the outliers task, none otherwise. */
export function outliersPhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, OutliersPartial> {
  return {
    name: 'outliers',
    steps: () => (ctx.tasks.includes('outliers') ? OUTLIER_STEPS : 0),
    local: ({ state, global, step }) => outliersLocal(state, global, step),
    merge(partials, { sdk, previous, step }) {
      const next = outliersMerge(
        partials.map((p) => ({ node: p.nodeId, value: p.value })),
        previous,
        step,
      );
      ctx.report(sdk, 'outliers', 0.9 + (0.1 * (step + 1)) / (OUTLIER_STEPS + 1), 'outliers');
      return next;
    },
  };
}
