/**
 * Confident learning, step 3 (ranking filters only): nodes send their top prune scores per cell of
 * the global joint; the aggregator finds each cell's cut-off score.
 */
import { localPruneCandidates, pruneCutoffsFrom, type FilterBy, type PruneCandidates, type RankBy } from 'flame-sdk/ml';
import type { Phase } from 'flame-sdk';
import { disclosePruneCandidates } from '../disclosure.js';
import type { DiagnosisAggregate } from '../global.js';
import { thresholdsOf } from './cl-thresholds.js';
import { probabilitiesOf, settled, confidentLearningPhase, type DiagnosisContext, type NodeState } from './context.js';

/**
 * What a node sends in the cl-cutoffs round.
 *
 * @property candidates The node's top scores per prune cell.
 */
export type CutoffsPartial = { candidates: PruneCandidates };

/** Filters that rank prune candidates, and so need the cut-offs. */
export function ranks(filterBy: FilterBy): boolean {
  return filterBy !== 'confident_learning' && filterBy !== 'predicted_neq_given';
}

/** The cut-offs as the global carries them (−∞ travels as null); undefined before this phase. */
export function cutoffsOf(g: DiagnosisAggregate): Record<string, number> | undefined {
  return g.cutoffs ? Object.fromEntries(Object.entries(g.cutoffs).map(([k, v]) => [k, v ?? Number.NEGATIVE_INFINITY])) : undefined;
}

/** Node side: the node's prune candidates, under its disclosure policy. */
export function cutoffsLocal(s: NodeState, g: DiagnosisAggregate, choice: { filterBy: FilterBy; rankBy: RankBy }): CutoffsPartial {
  const { labels } = settled(s.features, 'features');
  const candidates = localPruneCandidates(probabilitiesOf(s), labels, settled(g.joint, 'confident joint'), { ...choice, thresholds: thresholdsOf(g) });
  return { candidates: disclosePruneCandidates(s.control, candidates, labels, g.setup.classes.length) };
}

/** Aggregator side: every prune cell's cut-off. */
export function mergeCutoffs(partials: readonly CutoffsPartial[], prev: DiagnosisAggregate, choice: { filterBy: FilterBy; rankBy: RankBy }): DiagnosisAggregate {
  const cutoffs = pruneCutoffsFrom(
    partials.map((p) => p.candidates),
    settled(prev.joint, 'confident joint'),
    choice,
  );
  return { ...prev, cutoffs: Object.fromEntries(Object.entries(cutoffs).map(([k, v]) => [k, Number.isFinite(v) ? v : null])) };
}

/** The cl-cutoffs phase (ranking filters only). */
export function cutoffsPhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, CutoffsPartial> {
  const choice = { filterBy: ctx.filterBy, rankBy: ctx.rankBy };
  return confidentLearningPhase(ctx, {
    name: 'cl-cutoffs',
    progress: 0.9,
    runs: ranks(ctx.filterBy),
    local: (s, g) => cutoffsLocal(s, g, choice),
    merge: (partials, previous) => mergeCutoffs(partials, previous, choice),
  });
}
