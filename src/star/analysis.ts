/**
 * The shape of a star-pattern analysis: analyzer nodes compute local results from their own data, the
 * aggregator merges them, and rounds repeat until the analysis says it has converged.
 */
import type { FlameSDK } from '../sdk.js';
import type { FlameValue } from '../codec/index.js';
import type { DisclosurePolicy } from '../config.js';
import type { NoiseRecord } from './noise.js';

/** What an analyzer sees in one round. */
export interface AnalyzeContext<G> {
  /** This node's SDK (data sources, logger, messages). */
  sdk: FlameSDK;
  /** Round number, starting at 0. */
  round: number;
  /** The aggregator's output of the previous round; undefined in round 0. */
  global: G | undefined;
}

/** What the aggregator sees in one round. */
export interface AggregateContext<G> {
  /** The aggregator's SDK. */
  sdk: FlameSDK;
  /** Round number, starting at 0. */
  round: number;
  /** The aggregator's output of the previous round; undefined in round 0. */
  previous: G | undefined;
  /** Analyzers left out of the run so far (quorum), with the round they were lost in. */
  excluded: ExcludedNode[];
}

/** An analyzer the run went on without. */
export interface ExcludedNode {
  /** The node. */
  nodeId: string;
  /** The round it gave no result in. */
  round: number;
  /** Why: `straggler` (past the round's deadline), `lost` (its heartbeats stopped), `failed` (its analyze threw). */
  reason: 'straggler' | 'lost' | 'failed';
}

/** What {@link StarAnalysis.tolerates} is asked. */
export interface ToleranceContext<G> {
  /** The round that has nodes missing. */
  round: number;
  /** The global the round was started with (undefined in round 0). */
  global: G | undefined;
  /** The analyzers without a result. */
  missing: string[];
}

/** One analyzer's local result of a round. */
export interface NodeResult<L> {
  /** The analyzer that computed it. */
  nodeId: string;
  /** What its `analyze` returned. */
  value: L;
  /** The disclosure policy the node declared with it (its `config.disclosure`); set by the runner. */
  disclosure?: DisclosurePolicy;
}

/** What {@link StarAnalysis.finalFor} gets besides the result. */
export interface FinalInfo {
  /** Hub id of the final result the aggregator submitted. */
  resultId: string;
  /** Number of rounds run. */
  rounds: number;
}

/** The end message of {@link completionNotice}: the run finished, and where its result is. */
export interface CompletionNotice {
  /** Always true: the run finished. */
  done: true;
  /** Hub id of the final result (readable by whoever may read the hub's final results). */
  result_id: string;
  /** Number of rounds run. */
  rounds: number;
  [key: string]: unknown;
}

/**
 * A {@link StarAnalysis.finalFor} that sends analyzers only a completion notice instead of the
 * final aggregate: `finalFor: completionNotice`.
 */
export function completionNotice(_result: unknown, _nodeId: string, info: FinalInfo): CompletionNotice {
  return { done: true, result_id: info.resultId, rounds: info.rounds };
}

/**
 * A federated analysis in the star pattern. `L` is a node's local result, `G` the aggregate (sent back
 * to the analyzers for the next round, and submitted as the final result once converged), `F` what an
 * analyzer receives at the end (default the aggregate itself).
 */
export interface StarAnalysis<L extends FlameValue = FlameValue, G extends FlameValue = FlameValue, F extends FlameValue = G> {
  /** Analyzer side: compute this node's local result from its own data. */
  analyze(ctx: AnalyzeContext<G>): Promise<L> | L;
  /** Aggregator side: merge the analyzers' local results. */
  aggregate(results: NodeResult<L>[], ctx: AggregateContext<G>): Promise<G> | G;
  /** Whether to stop after this round; default: stop after the first round. */
  converged?(current: G, previous: G | undefined, round: number): boolean;
  /** Rounds this analysis needs at most; the runner's default cap when StarOptions.maxRounds is absent. */
  maxRounds?: number;
  /**
   * Aggregator side: what analyzer `nodeId` receives of a round's aggregate as its next `global`
   * (one message per analyzer). Default: the whole aggregate. Return only that node's part when the
   * aggregate holds per-node records.
   */
  globalFor?(global: G, nodeId: string): G;
  /**
   * Aggregator side: the value stored on the hub as the final result, from the converged aggregate
   * (noise included). Default: the aggregate itself. An analysis whose aggregate carries working
   * state (a phase, a setup) returns only the answer a person downloads, e.g. the seed-000 response.
   */
  submit?(final: G): FlameValue;
  /**
   * Aggregator side: what analyzer `nodeId` receives at the end, from the final result as submitted
   * (noise included). Default: the whole final aggregate — what every participant of a study of
   * aggregate statistics (a mean, a model) expects to get back, and already disclosure-controlled by
   * the nodes' minimum counts and noise. Per-record results should send each node its own records, or
   * `completionNotice` (only that the run finished, and the result id).
   */
  finalFor?(result: G, nodeId: string, info: FinalInfo): F;
  /**
   * Which numbers of the final aggregate get the Laplace noise a node's policy asks for
   * (`disclosure.noiseScale`): dot paths, `*` for every key or index (see `addLaplaceNoise`).
   * Default `['*']`: every finite number of the aggregate (float tensors included), as FLAME's
   * `StarLocalDPModel` does. Declare the statistics, so that ids, sizes and counts stay exact.
   */
  noiseFields?: readonly string[];
  /** Dot path of the object field where the runner records the noise it added (default `disclosure`). */
  disclosureField?: string;
  /**
   * Analyzer side, after a restart: rebuild what the node keeps in memory between rounds, so that
   * `analyze` can go on with `round` and `global` (for instance reload and re-derive from the node's
   * data). Called once, before the first round the restarted node works on, when that round is not the
   * first. Analyses that keep nothing between rounds need none.
   */
  resume?(ctx: AnalyzeContext<G>): Promise<void> | void;
  /**
   * Aggregator side: whether the run may go on without `missing` in this round (quorum). Default:
   * never — the run fails, naming them. An analyzer left out stays out for the rest of the run.
   */
  tolerates?(ctx: ToleranceContext<G>): boolean;
}

/** Options of a star run. */
export interface StarOptions {
  /** Upper bound on rounds (default: the analysis' own maxRounds, else 10). Reaching it without convergence fails the run. */
  maxRounds?: number;
  /** How long the aggregator waits for each round's local results, and analyzers for the next round (default 120 s). */
  timeoutMs?: number;
  /** Name of the final result on the hub (default `result`). */
  resultName?: string;
  /**
   * Fewest analyzers a round may close with when the analysis tolerates missing ones: a count, or a
   * fraction (0–1) of the analyzers (default: all of them).
   */
  minNodes?: number;
  /**
   * Per-round deadline for stragglers, in ms from the round's start: after it a round the analysis
   * tolerates closes with the analyzers that answered (at least `minNodes`). Default: `timeoutMs`.
   */
  stragglerMs?: number;
  /**
   * A node whose heartbeats have stopped this long (and that has not answered) is lost: left out when
   * tolerated, else the run fails at once, naming it. Default: 3 heartbeat intervals. Raise it to wait
   * for nodes that restart (they resume where they were).
   */
  lossAfterMs?: number;
}

/** What a star run returns on every node. */
export interface StarOutcome<G, F = G> {
  /** On the aggregator the final aggregate as submitted; on an analyzer what it received at the end (`finalFor`, default the same). */
  result: G | F;
  /** Hub id of the final result (set on the aggregator). */
  resultId?: string;
  /** Number of rounds run. */
  rounds: number;
  /** The Laplace noise added to the final result (set on the aggregator when a node's policy asks for it). */
  noise?: NoiseRecord;
  /** Analyzers whose results made the final round (set on the aggregator). */
  contributors?: string[];
  /** Analyzers the run went on without (set on the aggregator). */
  excluded?: ExcludedNode[];
  /** True when this node resumed the run after a restart. */
  resumed?: boolean;
}
