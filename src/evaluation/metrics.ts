/**
 * Detection metrics from confusion counts. Pure and exact, and the counts add up across nodes, so a
 * federated evaluation can sum per-node counts and get the pooled metrics.
 */

/** Confusion counts of a detector: flagged or not, against faulty or not. */
export interface ConfusionCounts {
  /** Flagged and faulty. */
  tp: number;
  /** Flagged but fine. */
  fp: number;
  /** Faulty but not flagged. */
  fn: number;
  /** Fine and not flagged; undefined when the population is unknown. */
  tn?: number;
}

/** Metrics of a detector; null where the ratio is 0/0 (or needs an unknown `tn`). */
export interface DetectionMetrics {
  precision: number | null;
  recall: number | null;
  f1: number | null;
  accuracy: number | null;
}

function ratio(num: number, den: number): number | null {
  return den === 0 ? null : num / den;
}

/**
 * precision = tp/(tp+fp), recall = tp/(tp+fn), F1 = 2tp/(2tp+fp+fn), accuracy = (tp+tn)/all.
 * A 0/0 gives null rather than a made-up 0 or 1: no flags means no precision to speak of.
 */
export function detectionMetrics(c: ConfusionCounts): DetectionMetrics {
  for (const [k, v] of Object.entries(c)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new RangeError(`confusion count ${k} must be a whole number >= 0, got ${v}`);
  }
  return {
    precision: ratio(c.tp, c.tp + c.fp),
    recall: ratio(c.tp, c.tp + c.fn),
    f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
    accuracy: c.tn === undefined ? null : ratio(c.tp + c.tn, c.tp + c.fp + c.fn + c.tn),
  };
}

/** Element-wise sum of confusion counts (tn stays undefined if any part lacks it). */
export function addCounts(...parts: ConfusionCounts[]): ConfusionCounts {
  const out: ConfusionCounts = { tp: 0, fp: 0, fn: 0, tn: 0 };
  for (const p of parts) {
    out.tp += p.tp;
    out.fp += p.fp;
    out.fn += p.fn;
    out.tn = out.tn === undefined || p.tn === undefined ? undefined : out.tn + p.tn;
  }
  return out;
}

/** Confusion counts of `flagged` against `faulty` within `population` (when known; it must hold both). */
export function confusion(flagged: ReadonlySet<string>, faulty: ReadonlySet<string>, population?: ReadonlySet<string> | number): ConfusionCounts {
  let tp = 0;
  for (const f of flagged) if (faulty.has(f)) tp++;
  const fp = flagged.size - tp;
  const fn = faulty.size - tp;
  if (population === undefined) return { tp, fp, fn };
  const size = typeof population === 'number' ? population : new Set([...population, ...flagged, ...faulty]).size;
  const tn = size - tp - fp - fn;
  if (tn < 0) throw new RangeError(`population of ${size} files is smaller than the ${tp + fp + fn} flagged or faulty ones`);
  return { tp, fp, fn, tn };
}
