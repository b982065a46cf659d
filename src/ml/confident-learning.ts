/**
 * Confident learning (Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in
 * Dataset Labels", JAIR 2021), split so that a federation reaches exactly the pooled verdict:
 *
 * 1. each node: `localThresholdSums` → aggregator: `mergeThresholdSums`, `thresholdsFrom`
 *    (t_j = mean p_j over samples labelled j);
 * 2. each node: `localConfidentJoint` → aggregator: `mergeConfidentJoints` (counts add up);
 * 3. for the ranking-based filters (prune_by_noise_rate, prune_by_class, both,
 *    low_relative_confidence, auto), the number of
 *    samples to prune per cell is global, so each cell needs a global score cutoff: each node
 *    sends its top candidates' scores (`localPruneCandidates`, never more than the global
 *    count per cell) and the aggregator picks the cutoff (`pruneCutoffsFrom`);
 * 4. each node: `findLabelIssues` decides for its own samples from the global statistics.
 *
 * Threshold sums are kept as exact integers (probabilities quantised to 2⁻³⁰), so the order in
 * which nodes are merged cannot change a single comparison: federated == pooled, bit for bit.
 */
import { BadRequestError } from '../errors.js';

/**
 * How label issues are chosen: cleanlab's `filter_by` values, and two of ours.
 * `low_relative_confidence` ranks every sample by p(given label) / t(given label) (its confidence
 * relative to its class's threshold) and flags as many as the confident joint has off its
 * diagonal, the lowest first. `auto` is `low_relative_confidence` when the joint's off-diagonal
 * is spread over many class pairs and `both` when it is concentrated in a few (see
 * {@link resolveFilter}).
 */
export type FilterBy = 'prune_by_noise_rate' | 'prune_by_class' | 'both' | 'confident_learning' | 'predicted_neq_given' | 'low_relative_confidence' | 'auto';

/** Score that orders samples within a given class for `prune_by_class` (cleanlab's `rank_by`). */
export type RankBy = 'self_confidence' | 'normalized_margin';

/**
 * Default filter and ranking (analyses/image-diagnosis/EXPERIMENTS.md, "One ranking over all
 * samples"): on Fashion-MNIST with uniform flips a single ranking by relative confidence, as many
 * as the joint's off-diagonal, beat `both` (F1 0.895 against 0.812 at 10 %, 0.905 against 0.882 at
 * 20 %); with flips within look-alike pairs `both` stayed better (0.780 against 0.731), hence `auto`.
 *
 * @property __type.filterBy `auto`: {@link resolveFilter} picks `low_relative_confidence` or `both` from the global joint.
 * @property __type.rankBy `self_confidence`: in class pruning, the samples with the lowest p(given label) go first.
 */
export const DEFAULT_LABEL_ISSUE_OPTIONS = { filterBy: 'auto', rankBy: 'self_confidence' } as const satisfies {
  filterBy: FilterBy;
  rankBy: RankBy;
};

/** Quantum of the exact threshold sums. */
const QUANTUM = 2 ** 30;
/** cleanlab's tolerance: a probability this close below a threshold still counts as confident. */
const THRESHOLD_TOLERANCE = 1e-6;

/** Per-class sums of self-confidence (integer multiples of 2⁻³⁰) and label counts of one node. */
export interface ThresholdSums {
  /** Number of classes. */
  classes: number;
  /** Σ round(p_j · 2³⁰) over samples labelled j; exact integers while below 2⁵³. */
  sums: number[];
  /** Samples per given label. */
  counts: number[];
}

/** A confident joint: `counts[i * classes + j]` = samples labelled i whose confident true class is j. */
export interface ConfidentJoint {
  /** Number of classes (the matrix is `classes × classes`). */
  classes: number;
  /** The matrix, row-major: row = given label, column = confident true class. */
  counts: number[];
  /** Samples per given label (all of them, not only the confidently counted ones). */
  labelCounts: number[];
  /**
   * Per given label: confident samples of another class whose class a node's disclosure policy
   * withheld (small cells); {@link attributeConfidentJoint} spreads them. Absent: none.
   */
  unattributed?: number[];
}

/**
 * Per given label i and class j: Σ round(p_j · 2³⁰) over the samples labelled i (exact integers),
 * row-major; the soft confusion that {@link attributeConfidentJoint} spreads withheld cells by.
 */
export interface ConfusionSums {
  /** Number of classes (the matrix is `classes × classes`). */
  classes: number;
  /** The sums, row-major: row = given label, column = predicted class. */
  sums: number[];
}

function checkInputs(probs: Float32Array | Float64Array, labels: ArrayLike<number>, classes: number): void {
  if (!Number.isInteger(classes) || classes < 2) throw new BadRequestError(`confident learning: need at least 2 classes, got ${classes}`);
  if (probs.length !== labels.length * classes) {
    throw new BadRequestError(`confident learning: ${probs.length} probabilities for ${labels.length} labels × ${classes} classes`);
  }
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new BadRequestError(`confident learning: label ${y} at index ${i} is not in 0..${classes - 1}`);
  }
}

/** Step 1, on a node: per-class sums of p_y over samples labelled y. */
export function localThresholdSums(probs: Float32Array | Float64Array, labels: ArrayLike<number>, classes: number): ThresholdSums {
  checkInputs(probs, labels, classes);
  const sums = new Array<number>(classes).fill(0);
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    sums[y] += Math.round(probs[i * classes + y] * QUANTUM);
    counts[y] += 1;
  }
  return { classes, sums, counts };
}

/** Step 1, on the aggregator: adds the nodes' sums. */
export function mergeThresholdSums(parts: readonly ThresholdSums[]): ThresholdSums {
  if (parts.length === 0) throw new BadRequestError('threshold sums: nothing to merge');
  const classes = parts[0].classes;
  const out: ThresholdSums = { classes, sums: new Array<number>(classes).fill(0), counts: new Array<number>(classes).fill(0) };
  for (const p of parts) {
    if (p.classes !== classes) throw new BadRequestError(`threshold sums: ${p.classes} classes do not match ${classes}`);
    for (let j = 0; j < classes; j++) {
      out.sums[j] += p.sums[j];
      out.counts[j] += p.counts[j];
    }
  }
  if (out.sums.some((s) => s > Number.MAX_SAFE_INTEGER)) throw new BadRequestError('threshold sums: too many samples for exact sums');
  return out;
}

/** Per-class thresholds t_j; a class nobody carries gets +∞ (no sample is ever confidently in it). */
export function thresholdsFrom(merged: ThresholdSums): number[] {
  return merged.sums.map((s, j) => (merged.counts[j] > 0 ? s / merged.counts[j] / QUANTUM : Number.POSITIVE_INFINITY));
}

/**
 * The confident class of one sample: among classes whose probability reaches its threshold,
 * the most probable; −1 when none does (the sample is left out of the joint).
 */
function confidentClass(probs: Float32Array | Float64Array, offset: number, thresholds: readonly number[]): number {
  let best = -1;
  for (let j = 0; j < thresholds.length; j++) {
    const p = probs[offset + j];
    if (p >= thresholds[j] - THRESHOLD_TOLERANCE && (best < 0 || p > probs[offset + best])) best = j;
  }
  return best;
}

/** Step 2, on a node: the local confident joint (counts) and label counts. */
export function localConfidentJoint(probs: Float32Array | Float64Array, labels: ArrayLike<number>, thresholds: readonly number[]): ConfidentJoint {
  const classes = thresholds.length;
  checkInputs(probs, labels, classes);
  const counts = new Array<number>(classes * classes).fill(0);
  const labelCounts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) {
    labelCounts[labels[i]] += 1;
    const j = confidentClass(probs, i * classes, thresholds);
    if (j >= 0) counts[labels[i] * classes + j] += 1;
  }
  return { classes, counts, labelCounts };
}

/** Step 2, on the aggregator: confident joints add up (their unattributed counts too). */
export function mergeConfidentJoints(parts: readonly ConfidentJoint[]): ConfidentJoint {
  if (parts.length === 0) throw new BadRequestError('confident joint: nothing to merge');
  const classes = parts[0].classes;
  const out: ConfidentJoint = { classes, counts: new Array<number>(classes * classes).fill(0), labelCounts: new Array<number>(classes).fill(0) };
  for (const p of parts) {
    if (p.classes !== classes) throw new BadRequestError(`confident joint: ${p.classes} classes do not match ${classes}`);
    p.counts.forEach((c, i) => (out.counts[i] += c));
    p.labelCounts.forEach((c, i) => (out.labelCounts[i] += c));
    if (p.unattributed) {
      if (p.unattributed.length !== classes) throw new BadRequestError(`confident joint: ${p.unattributed.length} unattributed counts for ${classes} classes`);
      const u = (out.unattributed ??= new Array<number>(classes).fill(0));
      p.unattributed.forEach((c, i) => (u[i] += c));
    }
  }
  return out;
}

/** Step 2, on a node: the soft confusion sums (Σ p over the samples of each given label). */
export function localConfusionSums(probs: Float32Array | Float64Array, labels: ArrayLike<number>, classes: number): ConfusionSums {
  checkInputs(probs, labels, classes);
  const sums = new Array<number>(classes * classes).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const row = labels[i] * classes;
    for (let j = 0; j < classes; j++) sums[row + j] += Math.round(probs[i * classes + j] * QUANTUM);
  }
  return { classes, sums };
}

/** Step 2, on the aggregator: confusion sums add up (exactly: they are integers). */
export function mergeConfusionSums(parts: readonly ConfusionSums[]): ConfusionSums {
  if (parts.length === 0) throw new BadRequestError('confusion sums: nothing to merge');
  const classes = parts[0].classes;
  const sums = new Array<number>(classes * classes).fill(0);
  for (const p of parts) {
    if (p.classes !== classes || p.sums.length !== classes * classes) throw new BadRequestError(`confusion sums: ${p.sums.length} values do not make ${classes} × ${classes}`);
    p.sums.forEach((v, k) => (sums[k] += v));
  }
  return { classes, sums };
}

/**
 * Step 2, on the aggregator: the joint with each row's unattributed count spread over the row's
 * other classes in proportion to the soft confusion (how much probability the row's samples put on
 * each other class); cells may become fractional, which calibration rounds anyway. Without
 * unattributed counts the joint is returned as it is, so a run without withheld cells is unchanged.
 */
export function attributeConfidentJoint(joint: ConfidentJoint, confusion: ConfusionSums): ConfidentJoint {
  const { classes, unattributed } = joint;
  if (!unattributed) return joint;
  if (confusion.classes !== classes) throw new BadRequestError(`confusion sums: ${confusion.classes} classes do not match the joint's ${classes}`);
  const counts = [...joint.counts];
  for (let i = 0; i < classes; i++) {
    const spill = unattributed[i];
    if (!(spill > 0)) continue;
    let weight = 0;
    for (let j = 0; j < classes; j++) if (j !== i) weight += confusion.sums[i * classes + j];
    for (let j = 0; j < classes; j++) {
      if (j === i) continue;
      const share = weight > 0 ? confusion.sums[i * classes + j] / weight : 1 / (classes - 1);
      counts[i * classes + j] += spill * share;
    }
  }
  return { classes, counts, labelCounts: [...joint.labelCounts] };
}

/** Rounds a row to integers keeping its rounded total (largest remainders get the spare units). */
function roundPreservingSum(row: readonly number[]): number[] {
  const target = Math.round(row.reduce((a, v) => a + v, 0));
  const floors = row.map(Math.floor);
  let missing = target - floors.reduce((a, v) => a + v, 0);
  const order = row.map((v, j) => ({ j, frac: v - Math.floor(v) })).sort((a, b) => b.frac - a.frac || a.j - b.j);
  for (const { j } of order) {
    if (missing <= 0) break;
    floors[j] += 1;
    missing -= 1;
  }
  return floors;
}

/**
 * Calibrates a confident joint so each row sums to the number of samples with that given label
 * (the paper's eq. 2), then rounds rows to integers preserving their totals.
 */
export function calibrateConfidentJoint(joint: ConfidentJoint): number[][] {
  const { classes, counts, labelCounts } = joint;
  const rows: number[][] = [];
  for (let i = 0; i < classes; i++) {
    const row = counts.slice(i * classes, (i + 1) * classes);
    const total = row.reduce((a, v) => a + v, 0);
    rows.push(total > 0 ? row.map((c) => (c / total) * labelCounts[i]) : row.map((_, j) => (j === i ? labelCounts[i] : 0)));
  }
  return rows.map(roundPreservingSum);
}

/** A group of samples to prune by score: `count` highest scores among samples labelled `given`. */
interface PruneCell {
  key: string;
  given: number;
  /** Other class whose margin is the score (noise-rate cells), or −1 for a whole-class cell. */
  other: number;
  count: number;
  /**
   * Relative-confidence cells (`rc:<given>`, one per class) share one ranking: their cut-off is the
   * `count`-th highest score over all of them, so `count` is the number to flag in all classes.
   */
  shared?: true;
}

/** Options of {@link findLabelIssues} and the cutoff helpers. */
export interface LabelIssueOptions {
  /** Which samples count as issues; default {@link DEFAULT_LABEL_ISSUE_OPTIONS}. */
  filterBy?: FilterBy;
  /** How class-pruning cells order their samples (noise-rate cells always use the margin); default {@link DEFAULT_LABEL_ISSUE_OPTIONS}. */
  rankBy?: RankBy;
  /** Global score cutoffs per cell from {@link pruneCutoffsFrom}; computed from the local data when absent (correct for pooled data). */
  cutoffs?: Record<string, number>;
  /** Global per-class thresholds; needed by the `confident_learning` and `low_relative_confidence` filters (hence `auto`). */
  thresholds?: readonly number[];
}

/** The global thresholds where the filter needs them (confident_learning, low_relative_confidence), checked. */
function thresholdsFor(filterBy: Exclude<FilterBy, 'auto'>, thresholds: readonly number[] | undefined, classes: number): readonly number[] | undefined {
  if (filterBy !== 'confident_learning' && filterBy !== 'low_relative_confidence') return thresholds;
  if (!thresholds || thresholds.length !== classes) {
    throw new BadRequestError(`confident learning: filter ${filterBy} needs ${classes} thresholds, got ${thresholds?.length ?? 'none'}`);
  }
  return thresholds;
}

/** Samples of the joint confidently counted in another class than their given one. */
function offDiagonal(joint: ConfidentJoint): number {
  let total = 0;
  for (let i = 0; i < joint.classes; i++) for (let j = 0; j < joint.classes; j++) if (i !== j) total += joint.counts[i * joint.classes + j];
  return total;
}

/**
 * Share of the joint's off-diagonal held by its `classes` largest cells (of classes × (classes − 1)):
 * near 1 / (classes − 1) when flips are spread evenly, near 1 when they stay within a few pairs.
 */
export function offDiagonalConcentration(joint: ConfidentJoint): number {
  const { classes, counts } = joint;
  const cells: number[] = [];
  for (let i = 0; i < classes; i++) for (let j = 0; j < classes; j++) if (i !== j) cells.push(counts[i * classes + j]);
  cells.sort((a, b) => b - a);
  const total = cells.reduce((a, v) => a + v, 0);
  return total > 0 ? cells.slice(0, classes).reduce((a, v) => a + v, 0) / total : 1;
}

/**
 * Above this {@link offDiagonalConcentration} `auto` prunes per class pair (`both`). Measured on
 * Fashion-MNIST: uniform flips 0.27–0.35, flips within look-alike pairs 0.93.
 */
export const CONCENTRATED_NOISE = 0.6;

/**
 * The filter `filterBy` stands for on this global joint: `auto` becomes `both` when the joint's
 * off-diagonal is concentrated in a few class pairs (there per-pair counts are large and reliable),
 * `low_relative_confidence` otherwise (spread thin, per-pair counts are small and noisy, and one
 * ranking over all samples does better); any other filter is itself. Every node resolves the
 * same global joint, so they all pick the same.
 */
export function resolveFilter(joint: ConfidentJoint, filterBy: FilterBy): Exclude<FilterBy, 'auto'> {
  if (filterBy !== 'auto') return filterBy;
  return offDiagonalConcentration(joint) > CONCENTRATED_NOISE ? 'both' : 'low_relative_confidence';
}

/** Prune cells of a filter: per (given i, true j ≠ i) for noise rate, per given class for class pruning, one over all samples for relative confidence. */
function pruneCells(joint: ConfidentJoint, filterBy: Exclude<FilterBy, 'auto'>): PruneCell[] {
  if (filterBy === 'low_relative_confidence') {
    // One cell per class, so a node's disclosure policy can withhold a small class's scores.
    const count = Math.round(offDiagonal(joint));
    if (count <= 0) return [];
    return joint.labelCounts.flatMap((n, i) => (n > 0 ? [{ key: `rc:${i}`, given: i, other: -1, count, shared: true as const }] : []));
  }
  if (filterBy !== 'prune_by_noise_rate' && filterBy !== 'prune_by_class' && filterBy !== 'both') return [];
  const calibrated = calibrateConfidentJoint(joint);
  const cells: PruneCell[] = [];
  for (let i = 0; i < joint.classes; i++) {
    let offDiagonal = 0;
    for (let j = 0; j < joint.classes; j++) {
      if (j === i) continue;
      offDiagonal += calibrated[i][j];
      if (filterBy !== 'prune_by_class' && calibrated[i][j] > 0) cells.push({ key: `nr:${i}:${j}`, given: i, other: j, count: calibrated[i][j] });
    }
    if (filterBy !== 'prune_by_noise_rate' && offDiagonal > 0) cells.push({ key: `pc:${i}`, given: i, other: -1, count: offDiagonal });
  }
  return cells;
}

/**
 * Larger = more likely mislabelled. Noise-rate cells use the margin p_j − p_i, as cleanlab does;
 * the all-samples cell −p(given) / t(given).
 */
function cellScore(probs: Float32Array | Float64Array, offset: number, cell: PruneCell, classes: number, rankBy: RankBy, thresholds: readonly number[] | undefined): number {
  const own = probs[offset + cell.given];
  if (cell.shared) {
    const t = thresholds![cell.given];
    return t > 0 ? -own / t : -own;
  }
  if (cell.other >= 0) return probs[offset + cell.other] - own;
  if (rankBy === 'self_confidence') return -own;
  let maxOther = -Infinity;
  for (let j = 0; j < classes; j++) if (j !== cell.given) maxOther = Math.max(maxOther, probs[offset + j]);
  return maxOther - own;
}

/** Each node's top scores per prune cell; only scalars, at most the global count per cell (per group of shared cells). */
export type PruneCandidates = Record<string, number[]>;

/** Step 3, on a node: its highest scores for every prune cell (descending). */
export function localPruneCandidates(
  probs: Float32Array | Float64Array,
  labels: ArrayLike<number>,
  globalJoint: ConfidentJoint,
  options: LabelIssueOptions = {},
): PruneCandidates {
  const { rankBy } = { ...DEFAULT_LABEL_ISSUE_OPTIONS, ...options };
  const classes = globalJoint.classes;
  checkInputs(probs, labels, classes);
  const filterBy = resolveFilter(globalJoint, options.filterBy ?? DEFAULT_LABEL_ISSUE_OPTIONS.filterBy);
  const thresholds = thresholdsFor(filterBy, options.thresholds, classes);
  const out: PruneCandidates = {};
  for (const cell of pruneCells(globalJoint, filterBy)) {
    const scores: number[] = [];
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] === cell.given) scores.push(cellScore(probs, i * classes, cell, classes, rankBy, thresholds));
    }
    scores.sort((a, b) => b - a);
    out[cell.key] = scores.slice(0, cell.count);
  }
  // Shared cells: only the node's own top `count` over all of them can reach the global top `count`.
  const shared = pruneCells(globalJoint, filterBy).filter((c) => c.shared);
  if (shared.length > 0) {
    const mine = shared.flatMap((c) => out[c.key]).sort((a, b) => b - a);
    const floor = mine.length >= shared[0].count ? mine[shared[0].count - 1] : Number.NEGATIVE_INFINITY;
    for (const c of shared) out[c.key] = out[c.key].filter((v) => v >= floor);
  }
  return out;
}

/**
 * Step 3, on the aggregator: per cell, the `count`-th highest score over all nodes (ties are all
 * pruned, as in cleanlab's noise-rate pruning); −∞ when the cell has fewer candidates than its count.
 * Relative-confidence cells share one cut-off: the `count`-th highest over all of them.
 */
export function pruneCutoffsFrom(parts: readonly PruneCandidates[], globalJoint: ConfidentJoint, options: LabelIssueOptions = {}): Record<string, number> {
  const filterBy = resolveFilter(globalJoint, options.filterBy ?? DEFAULT_LABEL_ISSUE_OPTIONS.filterBy);
  const cutoffs: Record<string, number> = {};
  const cells = pruneCells(globalJoint, filterBy);
  const cutoffOf = (group: readonly PruneCell[], count: number): number => {
    const all = parts.flatMap((p) => group.flatMap((c) => p[c.key] ?? [])).sort((a, b) => b - a);
    return all.length >= count ? all[count - 1] : Number.NEGATIVE_INFINITY;
  };
  const shared = cells.filter((c) => c.shared);
  const sharedCutoff = shared.length > 0 ? cutoffOf(shared, shared[0].count) : Number.NEGATIVE_INFINITY;
  for (const cell of cells) cutoffs[cell.key] = cell.shared ? sharedCutoff : cutoffOf([cell], cell.count);
  return cutoffs;
}

/** What {@link findLabelIssues} decides for each local sample. */
export interface LabelIssues {
  /** 1 where the given label is judged wrong. */
  isIssue: Uint8Array;
  /** Indices of the flagged samples, ascending. */
  indices: number[];
  /** argmax of the predicted probabilities: the label to suggest. */
  suggestedLabel: Int32Array;
  /** p(given label): low means suspicious; use it to rank issues. */
  selfConfidence: Float32Array;
}

/**
 * Step 4, on a node: flags its own samples from global statistics: the merged confident joint
 * (which carries the global label counts) and, for ranking filters, the merged cutoffs
 * (or, for `confident_learning`, the thresholds).
 */
export function findLabelIssues(
  probs: Float32Array | Float64Array,
  labels: ArrayLike<number>,
  globalJoint: ConfidentJoint,
  options: LabelIssueOptions = {},
): LabelIssues {
  const { rankBy } = { ...DEFAULT_LABEL_ISSUE_OPTIONS, ...options };
  const classes = globalJoint.classes;
  checkInputs(probs, labels, classes);
  const filterBy = resolveFilter(globalJoint, options.filterBy ?? DEFAULT_LABEL_ISSUE_OPTIONS.filterBy);
  const n = labels.length;
  const suggestedLabel = new Int32Array(n);
  const selfConfidence = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (probs[i * classes + j] > probs[i * classes + best]) best = j;
    suggestedLabel[i] = best;
    selfConfidence[i] = probs[i * classes + labels[i]];
  }

  const isIssue = new Uint8Array(n);
  if (filterBy === 'predicted_neq_given') {
    for (let i = 0; i < n; i++) isIssue[i] = suggestedLabel[i] !== labels[i] ? 1 : 0;
  } else if (filterBy === 'confident_learning') {
    const thresholds = thresholdsFor(filterBy, options.thresholds, classes)!;
    for (let i = 0; i < n; i++) {
      const j = confidentClass(probs, i * classes, thresholds);
      isIssue[i] = j >= 0 && j !== labels[i] ? 1 : 0;
    }
  } else {
    const thresholds = thresholdsFor(filterBy, options.thresholds, classes);
    const cutoffs = options.cutoffs ?? pruneCutoffsFrom([localPruneCandidates(probs, labels, globalJoint, { filterBy, rankBy, thresholds })], globalJoint, { filterBy });
    const cells = pruneCells(globalJoint, filterBy);
    const byNoiseRate = new Uint8Array(n);
    const byClass = new Uint8Array(n);
    for (const cell of cells) {
      const cutoff = cutoffs[cell.key];
      if (cutoff === undefined) throw new BadRequestError(`confident learning: no cutoff for prune cell ${cell.key}`);
      const mark = cell.other >= 0 ? byNoiseRate : byClass;
      for (let i = 0; i < n; i++) {
        if (labels[i] === cell.given && cellScore(probs, i * classes, cell, classes, rankBy, thresholds) >= cutoff) mark[i] = 1;
      }
    }
    for (let i = 0; i < n; i++) {
      // relative-confidence cells (other −1) mark byClass, which low_relative_confidence reads alone
      const flagged = filterBy === 'both' ? byNoiseRate[i] & byClass[i] : filterBy === 'prune_by_class' || filterBy === 'low_relative_confidence' ? byClass[i] : byNoiseRate[i];
      // As in cleanlab: a sample the model predicts as its given label is never an issue.
      isIssue[i] = flagged && suggestedLabel[i] !== labels[i] ? 1 : 0;
    }
  }
  const indices: number[] = [];
  for (let i = 0; i < n; i++) if (isIssue[i]) indices.push(i);
  return { isIssue, indices, suggestedLabel, selfConfidence };
}

/** One node's out-of-sample probabilities (`labels.length × classes`) and given labels. */
export interface NodePredictions {
  /** Predicted probabilities, row-major `labels.length × classes`, from a model that did not see the sample. */
  probs: Float32Array | Float64Array;
  /** Given label index of each sample, in 0..classes−1. */
  labels: ArrayLike<number>;
}

/**
 * Runs steps 1–4 over simulated nodes in one process, exchanging only what the real protocol
 * exchanges. Returns each node's verdict and the global statistics.
 *
 * @property __type.issues Each node's verdict, in the order of `nodes`.
 * @property __type.thresholds The global per-class thresholds (step 1).
 * @property __type.joint The merged confident joint (step 2).
 */
export function federatedLabelIssues(
  nodes: readonly NodePredictions[],
  classes: number,
  options: Omit<LabelIssueOptions, 'cutoffs' | 'thresholds'> = {},
): { issues: LabelIssues[]; thresholds: number[]; joint: ConfidentJoint } {
  const thresholds = thresholdsFrom(mergeThresholdSums(nodes.map((n) => localThresholdSums(n.probs, n.labels, classes))));
  const joint = mergeConfidentJoints(nodes.map((n) => localConfidentJoint(n.probs, n.labels, thresholds)));
  const cutoffs = pruneCutoffsFrom(nodes.map((n) => localPruneCandidates(n.probs, n.labels, joint, { ...options, thresholds })), joint, options);
  const issues = nodes.map((n) => findLabelIssues(n.probs, n.labels, joint, { ...options, cutoffs, thresholds }));
  return { issues, thresholds, joint };
}
