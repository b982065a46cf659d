import { BadRequestError } from '../../src/errors.js';
import {
  type FilterBy,
  attributeConfidentJoint,
  calibrateConfidentJoint,
  federatedLabelIssues,
  findLabelIssues,
  localConfidentJoint,
  localConfusionSums,
  localPruneCandidates,
  localThresholdSums,
  mergeConfidentJoints,
  offDiagonalConcentration,
  resolveFilter,
  mergeConfusionSums,
  mergeThresholdSums,
  thresholdsFrom,
} from '../../src/ml/confident-learning.js';
import { SeededRandom } from '../../src/ml/random.js';

const K = 4;

/**
 * A noisy-label problem with a known answer: a model that is right about the true class most of
 * the time (with some genuine confusion between classes 0 and 1), and 10% of labels flipped.
 */
function syntheticProblem(n: number, seed: number) {
  const rng = new SeededRandom(seed);
  const truth = new Int32Array(n);
  const labels = new Int32Array(n);
  const probs = new Float32Array(n * K);
  const flipped = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    truth[i] = rng.int(K);
    labels[i] = truth[i];
    if (rng.next() < 0.1) {
      labels[i] = (truth[i] + 1 + rng.int(K - 1)) % K;
      flipped[i] = 1;
    }
    const logits = Array.from({ length: K }, (_, c) => (c === truth[i] ? 4 : 0) + rng.normal());
    if (truth[i] <= 1) logits[1 - truth[i]] += 1.5; // classes 0 and 1 look alike
    const m = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - m));
    const s = e.reduce((a, v) => a + v, 0);
    e.forEach((v, c) => (probs[i * K + c] = v / s));
  }
  return { truth, labels, probs, flipped };
}

function split<T extends Float32Array | Int32Array>(a: T, width: number, bounds: number[]): T[] {
  return bounds.slice(0, -1).map((b, k) => a.slice(b * width, bounds[k + 1] * width) as T);
}

const filters: FilterBy[] = ['prune_by_noise_rate', 'prune_by_class', 'both', 'confident_learning', 'predicted_neq_given', 'low_relative_confidence', 'auto'];

describe('confident learning', () => {
  const n = 3000;
  const data = syntheticProblem(n, 11);

  it('computes per-class thresholds as the mean self-confidence of each given label', () => {
    const t = thresholdsFrom(mergeThresholdSums([localThresholdSums(data.probs, data.labels, K)]));
    for (let c = 0; c < K; c++) {
      let s = 0;
      let cnt = 0;
      for (let i = 0; i < n; i++) {
        if (data.labels[i] !== c) continue;
        s += data.probs[i * K + c];
        cnt++;
      }
      expect(t[c]).toBeCloseTo(s / cnt, 8);
    }
  });

  it('calibrates the confident joint so each row sums to its label count', () => {
    const t = thresholdsFrom(mergeThresholdSums([localThresholdSums(data.probs, data.labels, K)]));
    const joint = localConfidentJoint(data.probs, data.labels, t);
    const counted = joint.counts.reduce((a, v) => a + v, 0);
    expect(counted).toBeGreaterThan(0.7 * n); // most samples are confident about something
    expect(counted).toBeLessThanOrEqual(n);
    const cal = calibrateConfidentJoint(joint);
    cal.forEach((row, i) => {
      expect(row.reduce((a, v) => a + v, 0)).toBe(joint.labelCounts[i]);
      row.forEach((v) => expect(Number.isInteger(v)).toBe(true));
    });
    // The estimated number of label errors is near the true 10%.
    const offDiagonal = cal.reduce((a, row, i) => a + row.reduce((b, v, j) => b + (i === j ? 0 : v), 0), 0);
    expect(offDiagonal / n).toBeGreaterThan(0.06);
    expect(offDiagonal / n).toBeLessThan(0.16);
  });

  it.each(filters)('gives exactly the pooled verdict when the data is split over 3 nodes (%s)', (filterBy) => {
    const bounds = [0, 700, 1900, n];
    const probsParts = split(data.probs, K, bounds);
    const labelParts = split(data.labels, 1, bounds);
    const fed = federatedLabelIssues(probsParts.map((p, k) => ({ probs: p, labels: labelParts[k] })), K, { filterBy });
    const pooledThresholds = thresholdsFrom(mergeThresholdSums([localThresholdSums(data.probs, data.labels, K)]));
    const pooledJoint = localConfidentJoint(data.probs, data.labels, pooledThresholds);
    expect(fed.joint.counts).toEqual(pooledJoint.counts);
    const pooled = findLabelIssues(data.probs, data.labels, pooledJoint, { filterBy, thresholds: pooledThresholds });
    const federatedFlags = fed.issues.flatMap((iss, k) => iss.indices.map((i) => i + bounds[k]));
    expect(federatedFlags).toEqual(pooled.indices);
    expect(pooled.indices.length).toBeGreaterThan(0);
  });

  it.each(filters)('finds the flipped labels of the synthetic problem (%s)', (filterBy) => {
    const { issues } = federatedLabelIssues([{ probs: data.probs, labels: data.labels }], K, { filterBy });
    let tp = 0;
    for (const i of issues[0].indices) tp += data.flipped[i];
    const flips = data.flipped.reduce((a, v) => a + v, 0);
    const precision = tp / issues[0].indices.length;
    const recall = tp / flips;
    expect(precision).toBeGreaterThan(0.6);
    expect(recall).toBeGreaterThan(0.6);
    // The suggested label of a found flip is usually the true one.
    const fixed = issues[0].indices.filter((i) => data.flipped[i] && issues[0].suggestedLabel[i] === data.truth[i]).length;
    expect(fixed / tp).toBeGreaterThan(0.8);
  });

  it('ranks by normalized margin when asked, flagging a different but overlapping set', () => {
    const bySelf = federatedLabelIssues([{ probs: data.probs, labels: data.labels }], K, { filterBy: 'prune_by_class' });
    const byMargin = federatedLabelIssues([{ probs: data.probs, labels: data.labels }], K, { filterBy: 'prune_by_class', rankBy: 'normalized_margin' });
    const a = new Set(bySelf.issues[0].indices);
    const common = byMargin.issues[0].indices.filter((i) => a.has(i)).length;
    expect(common).toBeGreaterThan(0.8 * a.size);
  });

  it('confusion sums add up exactly, their diagonal is the threshold sums, and they spread withheld cells by probability', () => {
    const pooled = localConfusionSums(data.probs, data.labels, K);
    const parts = [0, 300, 650, data.labels.length];
    const merged = mergeConfusionSums(parts.slice(1).map((end, k) => localConfusionSums(data.probs.subarray(parts[k] * K, end * K), data.labels.subarray(parts[k], end), K)));
    expect(merged).toEqual(pooled);
    expect(Array.from({ length: K }, (_, j) => pooled.sums[j * K + j])).toEqual(localThresholdSums(data.probs, data.labels, K).sums);

    // Row 0 withholds 6 samples; the row's probability on classes 1, 2, 3 is 3 : 1 : 2.
    const confusion = { classes: K, sums: [50, 30, 10, 20, ...new Array<number>(12).fill(1)] };
    const joint = mergeConfidentJoints([
      { classes: K, counts: [40, 3, 0, 0, 0, 9, 0, 0, 0, 0, 9, 0, 0, 0, 0, 9], labelCounts: [49, 9, 9, 9], unattributed: [6, 0, 0, 0] },
      { classes: K, counts: new Array<number>(16).fill(0), labelCounts: [0, 0, 0, 0] },
    ]);
    const spread = attributeConfidentJoint(joint, confusion);
    expect(spread.counts.slice(0, K)).toEqual([40, 6, 1, 2]);
    expect(spread.unattributed).toBeUndefined();
    expect(spread.counts.slice(K)).toEqual(joint.counts.slice(K));
    // Nothing withheld: the joint as it was.
    const plain = localConfidentJoint(data.probs, data.labels, thresholdsFrom(localThresholdSums(data.probs, data.labels, K)));
    expect(attributeConfidentJoint(plain, pooled)).toBe(plain);
  });

  it('names bad inputs', () => {
    expect(() => localThresholdSums(new Float32Array(5), [0, 1], K)).toThrow(BadRequestError);
    expect(() => localThresholdSums(new Float32Array(8), [0, 7], K)).toThrow(/label 7 at index 1/);
    const t = [0.5, 0.5, 0.5, 0.5];
    const joint = localConfidentJoint(data.probs, data.labels, t);
    expect(() => findLabelIssues(data.probs, data.labels, joint, { filterBy: 'confident_learning' })).toThrow(/needs 4 thresholds/);
  });

  describe('low_relative_confidence and auto', () => {
    const thresholds = () => thresholdsFrom(mergeThresholdSums([localThresholdSums(data.probs, data.labels, K)]));

    it('flags as many samples as the joint has off its diagonal, the lowest p(given) / t(given) first', () => {
      const t = thresholds();
      const joint = localConfidentJoint(data.probs, data.labels, t);
      let off = 0;
      for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) if (i !== j) off += joint.counts[i * K + j];
      const { indices } = findLabelIssues(data.probs, data.labels, joint, { filterBy: 'low_relative_confidence', thresholds: t });
      // at most the off-diagonal (samples predicted as their given label are never issues), and near it
      expect(indices.length).toBeLessThanOrEqual(off);
      expect(indices.length).toBeGreaterThan(0.9 * off);
      const score = (i: number) => data.probs[i * K + data.labels[i]] / t[data.labels[i]];
      const worstFlagged = Math.max(...indices.map(score));
      const flagged = new Set(indices);
      // every unflagged sample the model does not predict as its label scores at least as high
      for (let i = 0; i < data.labels.length; i++) {
        if (flagged.has(i)) continue;
        let best = 0;
        for (let j = 1; j < K; j++) if (data.probs[i * K + j] > data.probs[i * K + best]) best = j;
        if (best !== data.labels[i]) expect(score(i)).toBeGreaterThanOrEqual(worstFlagged);
      }
    });

    it('sends each node at most the global count of scores over all classes, per class so disclosure can withhold one', () => {
      const t = thresholds();
      const joint = localConfidentJoint(data.probs, data.labels, t);
      const part = { probs: data.probs.slice(0, 700 * K), labels: data.labels.slice(0, 700) };
      const c = localPruneCandidates(part.probs, part.labels, joint, { filterBy: 'low_relative_confidence', thresholds: t });
      expect(Object.keys(c).sort()).toEqual(['rc:0', 'rc:1', 'rc:2', 'rc:3']);
      let off = 0;
      for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) if (i !== j) off += joint.counts[i * K + j];
      expect(Object.values(c).reduce((a, v) => a + v.length, 0)).toBeLessThanOrEqual(off);
    });

    it('refuses to rank without thresholds, naming the filter', () => {
      const joint = localConfidentJoint(data.probs, data.labels, thresholds());
      expect(() => localPruneCandidates(data.probs, data.labels, joint, { filterBy: 'low_relative_confidence' })).toThrow(/low_relative_confidence needs 4 thresholds/);
    });

    it('auto prunes per class pair when the flips stay within a few pairs, and ranks all samples when they are spread', () => {
      const spread = localConfidentJoint(data.probs, data.labels, thresholds());
      expect(offDiagonalConcentration(spread)).toBeLessThan(0.6);
      expect(resolveFilter(spread, 'auto')).toBe('low_relative_confidence');
      // flips only 2 → 3 and 3 → 2
      const pairs = { ...spread, counts: spread.counts.map((v, k) => (Math.floor(k / K) === k % K ? v : 0)) };
      pairs.counts[2 * K + 3] = 40;
      pairs.counts[3 * K + 2] = 35;
      pairs.counts[0 * K + 1] = 2;
      expect(offDiagonalConcentration(pairs)).toBeGreaterThan(0.6);
      expect(resolveFilter(pairs, 'auto')).toBe('both');
      expect(resolveFilter(pairs, 'prune_by_class')).toBe('prune_by_class');
    });
  });
});
