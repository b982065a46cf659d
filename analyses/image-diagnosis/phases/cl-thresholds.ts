/**
 * Confident learning, step 1 (src/ml/confident-learning.ts): nodes send per-class sums of their
 * out-of-sample probabilities; the aggregator turns them into the per-class thresholds.
 */
import { localThresholdSums, mergeThresholdSums, thresholdsFrom, type ThresholdSums } from 'flame-sdk/ml';
import type { Phase } from 'flame-sdk';
import { discloseThresholdSums } from '../disclosure.js';
import type { DiagnosisAggregate } from '../global.js';
import { probabilitiesOf, settled, confidentLearningPhase, type DiagnosisContext, type NodeState } from './context.js';

/**
 * What a node sends in the cl-thresholds round.
 *
 * @property thresholdSums The node's per-class self-confidence sums and label counts.
 */
export type ThresholdsPartial = { thresholdSums: ThresholdSums };

/** The thresholds as the global carries them (+∞, a class without samples, travels as null). */
export function thresholdsOf(g: DiagnosisAggregate): number[] {
  return settled(g.thresholds, 'thresholds').map((t) => t ?? Number.POSITIVE_INFINITY);
}

/** Node side: the node's threshold sums, under its disclosure policy. */
export function thresholdsLocal(s: NodeState, g: DiagnosisAggregate): ThresholdsPartial {
  const { labels } = settled(s.features, 'features');
  return { thresholdSums: discloseThresholdSums(s.control, localThresholdSums(probabilitiesOf(s), labels, g.setup.classes.length)) };
}

/** Aggregator side: the thresholds. */
export function mergeThresholds(partials: readonly ThresholdsPartial[], prev: DiagnosisAggregate): DiagnosisAggregate {
  const thresholds = thresholdsFrom(mergeThresholdSums(partials.map((p) => p.thresholdSums)));
  return { ...prev, thresholds: thresholds.map((v) => (Number.isFinite(v) ? v : null)) };
}

/** The cl-thresholds phase (with the mislabeled_images task). */
export function thresholdsPhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, ThresholdsPartial> {
  return confidentLearningPhase(ctx, { name: 'cl-thresholds', progress: 0.87, local: thresholdsLocal, merge: mergeThresholds });
}
