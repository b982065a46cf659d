/**
 * The shape of a star-pattern analysis: analyzer nodes compute local results from their own data, the
 * aggregator merges them, and rounds repeat until the analysis says it has converged.
 */
import type { FlameSDK } from '../sdk.js';
import type { FlameValue } from '../codec/index.js';

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
}

/** One analyzer's local result of a round. */
export interface NodeResult<L> {
  /** The analyzer that computed it. */
  nodeId: string;
  /** What its `analyze` returned. */
  value: L;
}

/**
 * A federated analysis in the star pattern. `L` is a node's local result, `G` the aggregate (sent back
 * to the analyzers for the next round, and submitted as the final result once converged).
 */
export interface StarAnalysis<L extends FlameValue = FlameValue, G extends FlameValue = FlameValue> {
  /** Analyzer side: compute this node's local result from its own data. */
  analyze(ctx: AnalyzeContext<G>): Promise<L> | L;
  /** Aggregator side: merge the analyzers' local results. */
  aggregate(results: NodeResult<L>[], ctx: AggregateContext<G>): Promise<G> | G;
  /** Whether to stop after this round; default: stop after the first round. */
  converged?(current: G, previous: G | undefined, round: number): boolean;
  /** Rounds this analysis needs at most; the runner's default cap when StarOptions.maxRounds is absent. */
  maxRounds?: number;
}

/** Options of a star run. */
export interface StarOptions {
  /** Upper bound on rounds (default: the analysis' own maxRounds, else 10). Reaching it without convergence fails the run. */
  maxRounds?: number;
  /** How long the aggregator waits for each round's local results, and analyzers for the next round (default 120 s). */
  timeoutMs?: number;
  /** Name of the final result on the hub (default `result`). */
  resultName?: string;
}

/** What a star run returns on every node. */
export interface StarOutcome<G> {
  /** The final aggregate (also on analyzers, which receive it with the end message). */
  result: G;
  /** Hub id of the final result (set on the aggregator). */
  resultId?: string;
  /** Number of rounds run. */
  rounds: number;
}
