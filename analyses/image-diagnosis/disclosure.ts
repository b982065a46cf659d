/**
 * The diagnosis under the node's disclosure policy (src/star/disclosure.ts): every count a node
 * shares goes through its {@link DisclosureControl}, under these kinds (the names its report uses):
 *
 * - a node with fewer images than its minimum count refuses to take part (load and features rounds);
 * - `histogram_bins`: the six signal histograms of the load round (three luma percentiles, sharpness,
 *   area, aspect): bins merged into neighbours, totals kept, so the quality cut-offs move at most
 *   by the width of a merged group; so too, with the opt-in tasks, the chroma and entropy
 *   histograms (checks.ts) and the outliers task's score histogram (phases/outliers.ts);
 * - `shape_counts`: thumbnail shape → images, merged into the node's most common shape;
 * - `colour_images`: whether the node has colour images is a count in disguise (sent as "none" below
 *   the minimum; those images are then converted to grey for the features);
 * - `class_counts`: per-class label counts of the threshold sums (with their sums), of the
 *   outliers task's class feature sums (with their sums) and of the confident joint (with its rows
 *   of confusion sums); `confident_joint`: its small cells, which leave their row as one
 *   unattributed count (row sums kept) that the aggregator spreads by the confusion sums;
 * - `prune_candidates`: score lists of classes the node holds fewer than the minimum of (the list
 *   length would tell the count);
 * - `fold_sums`: a fold's sums (Gram matrix and label cross-products of its images' features) over
 *   fewer images than the minimum are withheld.
 *
 * Not counts, and shared as before: the class names a node holds, channel sums (over pixels),
 * feature sums and covariance products (over at least the minimum of images), the confusion sums
 * (probabilities summed over a class's images), the temperature log-losses, the duplicates task's
 * per-image hashes (duplicates.ts says why), the candidates' scores, and the decide round's
 * per-file verdicts, which go to the aggregator only (views.ts).
 */
import type { DisclosureControl } from 'flame-sdk';
import type { ConfidentJoint, ConfusionSums, GramSums, PruneCandidates, ThresholdSums } from 'flame-sdk/ml';
import { SIGNAL_BINS, type SignalHistograms, type SignalName } from './distribution.js';

/** The load round's counts under the policy. */
export function discloseLoadCounts(
  control: DisclosureControl,
  counts: { histograms: SignalHistograms; shapes: Record<string, number>; colourImages: number },
): { histograms: SignalHistograms; shapes: Record<string, number>; colour: boolean } {
  const histograms = {} as SignalHistograms;
  for (const k of Object.keys(SIGNAL_BINS) as SignalName[]) histograms[k] = control.histogram('histogram_bins', counts.histograms[k]);
  return {
    histograms,
    shapes: control.categories('shape_counts', counts.shapes),
    colour: control.count('colour_images', counts.colourImages) > 0,
  };
}

/** Threshold sums without the classes the node holds fewer than the minimum of. */
export function discloseThresholdSums(control: DisclosureControl, t: ThresholdSums): ThresholdSums {
  const counts = control.counts('class_counts', t.counts);
  return { classes: t.classes, sums: t.sums.map((s, j) => (counts[j] === 0 ? 0 : s)), counts };
}

/** The confident joint with small cells unattributed within their rows and small classes left out. */
export function discloseJoint(control: DisclosureControl, joint: ConfidentJoint): ConfidentJoint {
  return control.confidentJoint('confident_joint', joint);
}

/** Confusion sums without the rows of classes the disclosed joint left out (the count was tallied there). */
export function discloseConfusion(joint: ConfidentJoint, confusion: ConfusionSums): ConfusionSums {
  const { classes } = confusion;
  return { classes, sums: confusion.sums.map((v, k) => (joint.labelCounts[Math.floor(k / classes)] === 0 ? 0 : v)) };
}

/** Prune candidates without the lists of classes the node holds fewer than the minimum of. */
export function disclosePruneCandidates(control: DisclosureControl, candidates: PruneCandidates, labels: ArrayLike<number>, classes: number): PruneCandidates {
  const held = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) held[labels[i]]++;
  const out: PruneCandidates = {};
  let withheld = 0;
  for (const [key, scores] of Object.entries(candidates)) {
    // Keys are `nr:<given>:<other>`, `pc:<given>` or `rc:<given>` (confident-learning.ts).
    const given = Number(key.split(':')[1]);
    const small = held[given] > 0 && held[given] < control.minCount;
    if (small && scores.length > 0) withheld++;
    out[key] = small ? [] : scores;
  }
  control.withheld('prune_candidates', withheld);
  return out;
}

/** Per-fold sums, with the folds the node holds fewer images of than its minimum withheld (zeros, count 0). */
export function discloseGramSums(control: DisclosureControl, sums: GramSums): GramSums {
  const out: GramSums = { ...sums, counts: [...sums.counts], gram: [...sums.gram], cross: [...sums.cross] };
  sums.counts.forEach((n, f) => {
    if (control.count('fold_sums', n) === n) return;
    out.counts[f] = 0;
    out.gram[f] = new Float64Array(sums.gram[f].length);
    out.cross[f] = new Float64Array(sums.cross[f].length);
  });
  return out;
}
