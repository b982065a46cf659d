/**
 * Confident learning, step 2: nodes count their confident joint (given × confident class) under
 * the global thresholds, with the soft confusion sums; the aggregator adds them up and spreads the
 * cells the nodes' disclosure policy withheld by the confusion sums.
 */
import {
  attributeConfidentJoint,
  localConfidentJoint,
  localConfusionSums,
  mergeConfidentJoints,
  mergeConfusionSums,
  type ConfidentJoint,
  type ConfusionSums,
} from 'flame-sdk/ml';
import type { Phase } from 'flame-sdk';
import { discloseConfusion, discloseJoint } from '../disclosure.js';
import type { DiagnosisAggregate } from '../global.js';
import { thresholdsOf } from './cl-thresholds.js';
import { probabilitiesOf, settled, confidentLearningPhase, type DiagnosisContext, type NodeState } from './context.js';

/**
 * What a node sends in the cl-joint round.
 *
 * @property joint The node's confident joint under the global thresholds.
 * @property confusion Its soft confusion sums (probabilities summed per given label).
 */
export type JointPartial = { joint: ConfidentJoint; confusion: ConfusionSums };

/** Node side: the node's confident joint and confusion sums, under its disclosure policy. */
export function jointLocal(s: NodeState, g: DiagnosisAggregate): JointPartial {
  const { labels } = settled(s.features, 'features');
  const probs = probabilitiesOf(s);
  const joint = discloseJoint(s.control, localConfidentJoint(probs, labels, thresholdsOf(g)));
  return { joint, confusion: discloseConfusion(joint, localConfusionSums(probs, labels, joint.classes)) };
}

/** Aggregator side: the global confident joint, withheld cells spread by the merged confusion sums. */
export function mergeJoint(partials: readonly JointPartial[], prev: DiagnosisAggregate): DiagnosisAggregate {
  const joint = mergeConfidentJoints(partials.map((p) => p.joint));
  return { ...prev, joint: attributeConfidentJoint(joint, mergeConfusionSums(partials.map((p) => settled(p.confusion, 'confusion sums')))) };
}

/** The cl-joint phase. */
export function jointPhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, JointPartial> {
  return confidentLearningPhase(ctx, { name: 'cl-joint', progress: 0.89, local: jointLocal, merge: mergeJoint });
}
