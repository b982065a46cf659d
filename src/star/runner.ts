/**
 * Runs a StarAnalysis on one node, as analyzer or aggregator depending on the node's role. The same
 * code runs in the simulator (embedded adapters) and on NATS + S3 with real node processes.
 */
import type { FlameSDK } from '../sdk.js';
import type { FlameValue } from '../codec/index.js';
import { BadRequestError, FlameError, InternalError, TimeoutError } from '../errors.js';
import type { NodeResult, StarAnalysis, StarOptions, StarOutcome } from './analysis.js';

/** Message category of the star protocol: aggregator → analyzers, start a round or stop. */
export const STAR_ROUND = 'star.round';
/** Message category of the star protocol: analyzer → aggregator, a round's local result (sealed as an intermediate result). */
export const STAR_LOCAL = 'star.local';
/** Message category of the star protocol: analyzer → aggregator, its `analyze` failed. */
export const STAR_FAILED = 'star.failed';

/** Aggregator → analyzers: start round `round` with `global`, or stop with the final result. */
interface RoundMessage {
  round: number;
  done: boolean;
  global: FlameValue;
  /** Set when the aggregator gave up: the analyzers stop with this reason. */
  error?: string;
}

function roundCap(analysis: StarAnalysis<never, never> | StarAnalysis, o: StarOptions): number {
  const cap = o.maxRounds ?? analysis.maxRounds ?? 10;
  if (!Number.isInteger(cap) || cap < 1) throw new BadRequestError(`maxRounds: expected a whole number >= 1, got ${cap}`);
  return cap;
}

/** Run `analysis` on this node until the aggregator declares it finished. */
export async function runStar<L extends FlameValue, G extends FlameValue>(
  sdk: FlameSDK,
  analysis: StarAnalysis<L, G>,
  options: StarOptions = {},
): Promise<StarOutcome<G>> {
  sdk.setStatus('executing');
  try {
    const outcome = sdk.role === 'aggregator' ? await aggregatorLoop(sdk, analysis, options) : await analyzerLoop(sdk, analysis, options);
    sdk.setStatus('executed');
    return outcome;
  } catch (e) {
    sdk.setStatus('failed', e);
    throw e;
  }
}

/** The aggregator's side; when it fails, the analyzers are told why instead of waiting for a timeout. */
async function aggregatorLoop<L extends FlameValue, G extends FlameValue>(sdk: FlameSDK, analysis: StarAnalysis<L, G>, o: StarOptions): Promise<StarOutcome<G>> {
  try {
    return await aggregatorRounds(sdk, analysis, o);
  } catch (e) {
    if (sdk.otherNodes.length > 0) {
      const stop: RoundMessage = { round: -1, done: true, global: null, error: e instanceof Error ? e.message : String(e) };
      await sdk.sendMessage(sdk.otherNodes, stop as unknown as FlameValue, { category: STAR_ROUND }).catch(() => undefined);
    }
    throw e;
  }
}

async function aggregatorRounds<L extends FlameValue, G extends FlameValue>(sdk: FlameSDK, analysis: StarAnalysis<L, G>, o: StarOptions): Promise<StarOutcome<G>> {
  const analyzers = sdk.otherNodes;
  const maxRounds = roundCap(analysis, o);
  const timeoutMs = o.timeoutMs ?? 120_000;
  let previous: G | undefined;
  for (let round = 0; round < maxRounds; round++) {
    let results: NodeResult<L>[];
    if (analyzers.length === 0) {
      // A single-node run: the aggregator is also the only data holder.
      results = [{ nodeId: sdk.nodeId, value: await analysis.analyze({ sdk, round, global: previous }) }];
    } else {
      const start: RoundMessage = { round, done: false, global: previous ?? null };
      await sdk.sendMessage(analyzers, start as unknown as FlameValue, { category: STAR_ROUND });
      results = await collectRound<L>(sdk, analyzers, round, timeoutMs);
    }
    const current = await analysis.aggregate(results, { sdk, round, previous });
    sdk.setProgress(Math.min(0.99, (round + 1) / maxRounds));
    const converged = analysis.converged ? analysis.converged(current, previous, round) : true;
    if (!converged && round === maxRounds - 1) {
      // Never submit an aggregate the analysis does not call final.
      throw new InternalError(`analysis did not converge within ${maxRounds} rounds (raise maxRounds / --max-rounds)`);
    }
    if (converged) {
      const resultId = await sdk.sendResult(current, { name: o.resultName ?? 'result' });
      const end: RoundMessage = { round, done: true, global: current };
      if (analyzers.length > 0) await sdk.sendMessage(analyzers, end as unknown as FlameValue, { category: STAR_ROUND });
      sdk.log.info('analysis finished', { rounds: round + 1, result_id: resultId });
      return { result: current, resultId, rounds: round + 1 };
    }
    previous = current;
  }
  throw new InternalError('unreachable: star loop ended without a result');
}

/** Wait for every analyzer's local result of `round`; fail fast when one reports a failure. */
async function collectRound<L>(sdk: FlameSDK, analyzers: string[], round: number, timeoutMs: number): Promise<NodeResult<L>[]> {
  const got = new Map<string, L>();
  const deadline = Date.now() + timeoutMs;
  while (got.size < analyzers.length) {
    const missing = analyzers.filter((a) => !got.has(a));
    const left = deadline - Date.now();
    let msg;
    try {
      if (left <= 0) throw new TimeoutError('');
      // Only star messages: anything else the analyzers send stays for the analysis to await.
      msg = await sdk.awaitMessage(missing, { timeoutMs: left, category: [STAR_LOCAL, STAR_FAILED] });
    } catch (e) {
      if (e instanceof TimeoutError) {
        throw new TimeoutError(`round ${round}: no local result from ${missing.map((m) => `"${m}"`).join(', ')} within ${timeoutMs} ms`);
      }
      throw e;
    }
    if (msg.category === STAR_FAILED) {
      const reason = (msg.data as { error?: string } | null)?.error ?? 'unknown error';
      throw new InternalError(`node "${msg.sender}" failed in round ${round}: ${reason}`);
    }
    const payload = msg.data as { round: number; value: L };
    if (payload.round !== round) continue; // a late duplicate from an earlier round
    got.set(msg.sender, payload.value);
  }
  // Keep the configured node order so aggregation is deterministic.
  return analyzers.map((nodeId) => ({ nodeId, value: got.get(nodeId) as L }));
}

async function analyzerLoop<L extends FlameValue, G extends FlameValue>(sdk: FlameSDK, analysis: StarAnalysis<L, G>, o: StarOptions): Promise<StarOutcome<G>> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  const maxRounds = roundCap(analysis, o);
  for (;;) {
    let msg;
    try {
      msg = await sdk.awaitMessage(sdk.aggregatorId, { timeoutMs, category: STAR_ROUND });
    } catch (e) {
      if (e instanceof TimeoutError) throw new TimeoutError(`aggregator "${sdk.aggregatorId}" sent no round within ${timeoutMs} ms`);
      throw e;
    }
    const { round, done, global, error } = msg.data as unknown as RoundMessage;
    if (error !== undefined) throw new InternalError(`aggregator "${sdk.aggregatorId}" stopped the analysis: ${error}`);
    if (done) return { result: global as G, rounds: round + 1 };
    let value: L;
    try {
      value = await analysis.analyze({ sdk, round, global: (global ?? undefined) as G | undefined });
    } catch (e) {
      const error = e instanceof FlameError || e instanceof Error ? e.message : String(e);
      await sdk.sendMessage(sdk.aggregatorId, { round, error }, { category: STAR_FAILED }).catch(() => undefined);
      throw e;
    }
    await sdk.sendIntermediateResult(sdk.aggregatorId, { round, value } as unknown as FlameValue, { category: STAR_LOCAL });
    sdk.setProgress(Math.min(0.99, (round + 1) / maxRounds));
  }
}
