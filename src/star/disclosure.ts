/**
 * Disclosure control as node policy: the helpers an analysis applies to every count it shares, driven
 * by the node's `config.disclosure.minCount` (`FLAME_MIN_COUNT`, default 3; 1 turns it off).
 *
 * - a count below the minimum is suppressed (sent as 0): {@link suppressSmallCounts};
 * - histogram bins below it are merged into a neighbouring bin, keeping the total (as DataSHIELD's
 *   `nfilter.tab` small-cell rule and NVFlare's `MinCountCleanser` do): {@link mergeSmallBins};
 *   categories (e.g. image shapes) into the largest category: {@link mergeSmallCategories};
 * - confident-joint cells below it leave their row as one count without their classes, keeping row sums:
 *   {@link mergeSmallJointCells} (its comment says what that does to confident learning);
 * - a node holding fewer records than the minimum refuses to share at all:
 *   {@link requireMinRecords} throws {@link DisclosureRefusedError}, naming the policy.
 *
 * Zero counts are never suppressed: "nobody" identifies no one. Each helper returns the new values and
 * how many values it suppressed or merged away; {@link DisclosureControl} tallies them per kind, and
 * {@link disclosureRecord} turns the nodes' tallies into the `disclosure` field of a result. Laplace
 * noise on final results (the other half of the policy) is in noise.ts, re-exported here.
 */
import type { DisclosurePolicy } from '../config.js';
import { UnauthorizedError } from '../errors.js';
import type { NoiseRecord } from './noise.js';

export { addLaplaceNoise, laplaceSample, recordNoise, strictestNoiseScale, type NoiseRecord, type NoisedValue, type RecordedNoise, type NoiseDemand } from './noise.js';

/** A helper's output: the values to share and how many of the input values were suppressed or merged away. */
export interface Disclosed<T> {
  /** What may be shared. */
  value: T;
  /** How many input values were below the minimum (suppressed, or merged into a neighbour). */
  suppressed: number;
}

/**
 * A confident joint as confident learning shares it (`ConfidentJoint` of the ml module):
 * `counts[i * classes + j]` = samples labelled i whose confident class is j.
 */
export interface JointCounts {
  /** Number of classes. */
  classes: number;
  /** The classes × classes cells, row-major by given label. */
  counts: number[];
  /** Samples per given label. */
  labelCounts: number[];
  /**
   * Per given label: confident samples of other classes whose class is withheld (the row's small
   * cells, {@link mergeSmallJointCells}); absent when none is.
   */
  unattributed?: number[];
}

/** Thrown when a node's policy forbids it to share anything (it holds fewer records than its minimum count). */
export class DisclosureRefusedError extends UnauthorizedError {}

/** Whether `c` is a count the policy withholds: above zero, below the minimum. */
function small(c: number, minCount: number): boolean {
  return c > 0 && c < minCount;
}

/**
 * Throws {@link DisclosureRefusedError} when `count` records (images, rows, patients) are fewer than
 * `minCount`: a node that small shares nothing, since every statistic of it is close to a record.
 */
export function requireMinRecords(count: number, minCount: number, what: string): void {
  if (count < minCount) {
    throw new DisclosureRefusedError(
      `${what}: ${count} record${count === 1 ? '' : 's'}, fewer than this node's minimum count ${minCount} ` +
        `(disclosure policy: config.disclosure.minCount / FLAME_MIN_COUNT): the node shares nothing`,
    );
  }
}

/** Counts with every value below `minCount` (and above 0) replaced by 0. */
export function suppressSmallCounts(counts: readonly number[], minCount: number): Disclosed<number[]> {
  let suppressed = 0;
  const value = counts.map((c) => {
    if (!small(c, minCount)) return c;
    suppressed++;
    return 0;
  });
  return { value, suppressed };
}

/**
 * A histogram whose bins below `minCount` are merged into neighbouring bins, keeping the total:
 * scanning from the first bin, consecutive bins are grouped until a group holds `minCount`; a group's
 * total goes to its weighted-median bin (a lone bin of `minCount` or more stays where it is), and a
 * short last group joins the one before. Every non-zero bin of the output holds at least `minCount`,
 * and each count moves only within its group. A histogram with a total below `minCount` is all zeros.
 */
export function mergeSmallBins(counts: readonly number[], minCount: number): Disclosed<number[]> {
  const suppressed = counts.filter((c) => small(c, minCount)).length;
  if (suppressed === 0) return { value: [...counts], suppressed: 0 };
  const total = counts.reduce((a, c) => a + c, 0);
  const value = new Array<number>(counts.length).fill(0);
  if (total < minCount) return { value, suppressed };
  const groups: Array<{ bins: number[]; total: number }> = [];
  let open = { bins: [] as number[], total: 0 };
  counts.forEach((c, b) => {
    if (c === 0) return;
    open.bins.push(b);
    open.total += c;
    if (open.total >= minCount) {
      groups.push(open);
      open = { bins: [], total: 0 };
    }
  });
  if (open.total > 0) {
    const last = groups[groups.length - 1];
    last.bins.push(...open.bins);
    last.total += open.total;
  }
  for (const g of groups) {
    let seen = 0;
    const median = g.bins.find((b) => (seen += counts[b]) * 2 >= g.total) ?? g.bins[g.bins.length - 1];
    value[median] += g.total;
  }
  return { value, suppressed };
}

/**
 * Named counts (e.g. image shape → images) with every count below `minCount` merged into the largest
 * one (the first of equal ones), keeping the total; all dropped when the total is below `minCount`.
 */
export function mergeSmallCategories(counts: Readonly<Record<string, number>>, minCount: number): Disclosed<Record<string, number>> {
  const entries = Object.entries(counts);
  const suppressed = entries.filter(([, c]) => small(c, minCount)).length;
  if (suppressed === 0) return { value: { ...counts }, suppressed: 0 };
  const total = entries.reduce((a, [, c]) => a + c, 0);
  if (total < minCount) return { value: Object.fromEntries(entries.filter(([, c]) => c === 0)), suppressed };
  const [largest] = entries.reduce((best, e) => (e[1] > best[1] ? e : best));
  const value: Record<string, number> = {};
  for (const [k, c] of entries) {
    if (k === largest || !small(c, minCount)) value[k] = c;
  }
  value[largest] += entries.filter(([k, c]) => k !== largest && small(c, minCount)).reduce((a, [, c]) => a + c, 0);
  return { value, suppressed };
}

/** Index of the largest value among `cols` of `row` (the first of equal ones). */
function argmax(row: readonly number[], cols: readonly number[]): number {
  return cols.reduce((best, j) => (row[j] > row[best] ? j : best), cols[0]);
}

/**
 * A confident joint whose cells below `minCount` leave their row as one `unattributed` count (how
 * many confident samples of the row's given label belong to some other class, not which), keeping
 * row sums: every small cell of a row, the diagonal included, is added to it; when that total is
 * still below `minCount` it is raised to `minCount` from the row's largest remaining cell (or, when
 * that cell cannot spare it, merged into that cell). A row with a total below `minCount` is
 * suppressed (zeros), and so is, with its row, a label count below `minCount`: the node then shares
 * nothing about that class. No cell and no unattributed count is then below the minimum.
 *
 * What it does to confident learning: calibration (eq. 2) rescales each row to its label count, so
 * a kept row sum keeps the row's weight, and the off-diagonal total keeps `prune_by_class`'s count.
 * The aggregator spreads each row's unattributed count over its other classes by the nodes' summed
 * probabilities (`attributeConfidentJoint` in src/ml), so a node's rare confusions still reach
 * `prune_by_noise_rate`'s cells. Mislabeled F1 at minimum 3 (minimum 1: F1 without the policy):
 * data/sample (100 images a node) 0.409 → 0.488 (0.481); Fashion-MNIST t10k over 3 nodes 0.716 →
 * 0.746 (0.773); train 20k over 3 nodes 0.807 → 0.812 (0.812). The rule before, every small cell
 * merged into the row's largest off-diagonal cell, attributed every rare confusion to the row's
 * commonest; merging small cells into the diagonal gave F1 0.00 on the sample, and unbiased random
 * rounding a different verdict on every run.
 */
export function mergeSmallJointCells<J extends JointCounts>(joint: J, minCount: number): Disclosed<J> {
  const { classes } = joint;
  const counts = [...joint.counts];
  const labelCounts = [...joint.labelCounts];
  const unattributed = new Array<number>(classes).fill(0);
  let suppressed = 0;
  for (let i = 0; i < classes; i++) {
    const row = counts.slice(i * classes, (i + 1) * classes);
    const total = row.reduce((a, c) => a + c, 0);
    if (small(labelCounts[i], minCount)) {
      labelCounts[i] = 0;
      suppressed++;
    }
    if (labelCounts[i] === 0 || total < minCount) {
      suppressed += row.filter((c) => c > 0).length;
      row.fill(0);
    } else if (row.some((c) => small(c, minCount))) {
      let spill = 0;
      row.forEach((c, j) => {
        if (!small(c, minCount)) return;
        suppressed++;
        spill += c;
        row[j] = 0;
      });
      if (spill < minCount) {
        // The row's largest cell left (it holds at least the minimum: the row does) evens it out.
        const t = argmax(row, row.map((_, j) => j));
        const need = minCount - spill;
        if (row[t] - need >= minCount) {
          row[t] -= need;
          spill = minCount;
        } else {
          row[t] += spill;
          spill = 0;
        }
      }
      unattributed[i] = spill;
    }
    counts.splice(i * classes, classes, ...row);
  }
  if (unattributed.every((c) => c === 0) && !joint.unattributed) return { value: { ...joint, classes, counts, labelCounts }, suppressed };
  return { value: { ...joint, classes, counts, labelCounts, unattributed }, suppressed };
}

/** What one node's disclosure control did: its minimum count and, per kind of value, how many it suppressed or merged. */
export interface NodeDisclosureReport {
  /** The node's minimum count. */
  min_count: number;
  /** Per kind of value: how many were suppressed or merged. */
  suppressed: Record<string, number>;
}

/**
 * The helpers bound to one node's policy, tallying what they suppress per kind of value (a name the
 * result reports, e.g. `histogram_bins`). Keep one per node for a whole run and send its
 * {@link DisclosureControl.report} with the node's last local result.
 */
export class DisclosureControl {
  /** Per kind of value: how many were suppressed or merged so far. */
  readonly suppressed: Record<string, number> = {};

  /** The node's policy (its `sdk.config.disclosure`). */
  readonly policy: DisclosurePolicy;

  /** `policy`: the node's `sdk.config.disclosure`. */
  constructor(policy: DisclosurePolicy) {
    this.policy = policy;
  }

  /** The node's minimum count. */
  get minCount(): number {
    return this.policy.minCount;
  }

  private tally<T>(kind: string, d: Disclosed<T>): T {
    if (d.suppressed > 0 || !(kind in this.suppressed)) this.suppressed[kind] = (this.suppressed[kind] ?? 0) + d.suppressed;
    return d.value;
  }

  /** {@link requireMinRecords} with this node's minimum. */
  requireRecords(count: number, what: string): void {
    requireMinRecords(count, this.minCount, what);
  }

  /** One count, or 0 when it is below the minimum. */
  count(kind: string, c: number): number {
    return this.tally(kind, suppressSmallCounts([c], this.minCount))[0];
  }

  /** {@link suppressSmallCounts}. */
  counts(kind: string, counts: readonly number[]): number[] {
    return this.tally(kind, suppressSmallCounts(counts, this.minCount));
  }

  /** {@link mergeSmallBins}. */
  histogram(kind: string, counts: readonly number[]): number[] {
    return this.tally(kind, mergeSmallBins(counts, this.minCount));
  }

  /** {@link mergeSmallCategories}. */
  categories(kind: string, counts: Readonly<Record<string, number>>): Record<string, number> {
    return this.tally(kind, mergeSmallCategories(counts, this.minCount));
  }

  /** {@link mergeSmallJointCells}. */
  confidentJoint<J extends JointCounts>(kind: string, joint: J): J {
    return this.tally(kind, mergeSmallJointCells(joint, this.minCount));
  }

  /** Adds `n` values the analysis withheld itself (e.g. a whole update) to the tally of `kind`. */
  withheld(kind: string, n: number): void {
    this.tally(kind, { value: undefined, suppressed: n });
  }

  /** The tally so far, for the result's `disclosure` field. */
  report(): NodeDisclosureReport {
    return { min_count: this.minCount, suppressed: { ...this.suppressed } };
  }
}

/** The `disclosure` field of a result: each node's minimum count and what it suppressed, and the noise added. */
export interface DisclosureRecord {
  /** Minimum count of each node. */
  min_count: Record<string, number>;
  /** Per node and kind of value: how many values it suppressed or merged into a neighbour. */
  suppressed: Record<string, Record<string, number>>;
  /** Sum over every node and kind. */
  suppressed_total: number;
  /** The Laplace noise the aggregator added to the final result (`null`: none); written by the star runner. */
  noise?: NoiseRecord | null;
  [key: string]: unknown;
}

/**
 * The record of the nodes' reports, or undefined when every node's minimum count is 1 (the policy is
 * off and the result stays as it was without it).
 */
export function disclosureRecord(reports: ReadonlyArray<{ node: string; report: NodeDisclosureReport }>): DisclosureRecord | undefined {
  if (reports.every((r) => r.report.min_count <= 1)) return undefined;
  const min_count: Record<string, number> = {};
  const suppressed: Record<string, Record<string, number>> = {};
  let total = 0;
  for (const { node, report } of reports) {
    min_count[node] = report.min_count;
    suppressed[node] = { ...report.suppressed };
    total += Object.values(report.suppressed).reduce((a, n) => a + n, 0);
  }
  return { min_count, suppressed, suppressed_total: total };
}
