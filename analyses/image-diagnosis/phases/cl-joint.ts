/**
 * Confident learning, step 2: nodes count their confident joint (given × confident class) under
 * the global thresholds; the aggregator adds them up.
 */
import { localConfidentJoint, mergeConfidentJoints, type ConfidentJoint } from 'flame-sdk/ml';
import type { Phase } from 'flame-sdk';
import { discloseJoint } from '../disclosure.js';
import type { DiagnosisAggregate } from '../global.js';
import { thresholdsOf } from './cl-thresholds.js';
import { probabilitiesOf, settled, confidentLearningPhase, type DiagnosisContext, type NodeState } from './context.js';

/**
 * What a node sends in the cl-joint round.
 *
 * @property joint The node's confident joint under the global thresholds.
 */
export type JointPartial = { joint: ConfidentJoint };

/** Node side: the node's confident joint, under its disclosure policy. */
export function jointLocal(s: NodeState, g: DiagnosisAggregate): JointPartial {
  const { labels } = settled(s.features, 'features');
  return { joint: discloseJoint(s.control, localConfidentJoint(probabilitiesOf(s, g), labels, thresholdsOf(g))) };
}

/** Aggregator side: the global confident joint. */
export function mergeJoint(partials: readonly JointPartial[], prev: DiagnosisAggregate): DiagnosisAggregate {
  return { ...prev, joint: mergeConfidentJoints(partials.map((p) => p.joint)) };
}

/** The cl-joint phase. */
export function jointPhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, JointPartial> {
  return confidentLearningPhase(ctx, { name: 'cl-joint', progress: 0.89, local: jointLocal, merge: mergeJoint });
}
