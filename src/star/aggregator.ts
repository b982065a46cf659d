/**
 * The aggregator's side of a star run: rounds, quorum, liveness and checkpoints.
 *
 * Each round it asks the analyzers still in the run, then collects their local results. A missing
 * analyzer is waited for until the round's straggler deadline, or until its heartbeats have stopped
 * for the loss window; then, if the analysis tolerates it and enough are left, the round closes
 * without it (it is told it is excluded, and its late messages are discarded), else the run fails at
 * once, naming it. After each round the aggregator checkpoints the round and its aggregate; restarted,
 * it asks the analyzers for the next round again and goes on, and once the final result is on the hub
 * it only tells the analyzers again.
 */
import type { FlameValue } from '../codec/index.js';
import { BadRequestError, FlameError, InternalError, TimeoutError } from '../errors.js';
import type { FlameMessage } from '../messenger/index.js';
import type { FlameSDK } from '../sdk.js';
import type { ExcludedNode, NodeResult, StarAnalysis, StarOptions, StarOutcome } from './analysis.js';
import { openCheckpoint, type AggregatorCheckpoint } from './checkpoint.js';
import { addLaplaceNoise, recordNoise, strictestNoiseScale, type NoiseRecord } from './noise.js';
import { declaredPolicy, parseFailed, parseLocal, STAR_FAILED, STAR_LOCAL, STAR_ROUND, type RoundMessage } from './protocol.js';

// The runner's functions take any analysis; its type parameters only matter to the caller.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyAnalysis = StarAnalysis<any, any, any>;

/** The run's settings, resolved. */
export interface RunSettings {
  maxRounds: number;
  timeoutMs: number;
  stragglerMs: number;
  lossAfterMs: number;
  minNodes: number;
}

/** StarOptions with their defaults; BadRequestError naming a bad one. */
export function runSettings(sdk: FlameSDK, analysis: AnyAnalysis, o: StarOptions): RunSettings {
  const maxRounds = o.maxRounds ?? analysis.maxRounds ?? 10;
  if (!Number.isInteger(maxRounds) || maxRounds < 1) throw new BadRequestError(`maxRounds: expected a whole number >= 1, got ${maxRounds}`);
  const timeoutMs = o.timeoutMs ?? 120_000;
  const stragglerMs = Math.min(o.stragglerMs ?? timeoutMs, timeoutMs);
  const lossAfterMs = o.lossAfterMs ?? 3 * sdk.config.heartbeatMs;
  const analyzers = sdk.otherNodes.length;
  const min = o.minNodes === undefined ? Math.max(1, analyzers) : o.minNodes > 0 && o.minNodes < 1 ? Math.ceil(o.minNodes * analyzers) : o.minNodes;
  if (!Number.isInteger(min) || min < 1) throw new BadRequestError(`minNodes: expected a count >= 1 or a fraction in (0, 1), got ${o.minNodes}`);
  return { maxRounds, timeoutMs, stragglerMs, lossAfterMs, minNodes: Math.min(min, Math.max(1, analyzers)) };
}

/** The final aggregate with the Laplace noise the strictest policy asks for, recorded where the analysis says. */
function withNoise<G extends FlameValue>(sdk: FlameSDK, analysis: AnyAnalysis, current: G, results: NodeResult<unknown>[]): { value: G; noise?: NoiseRecord } {
  const policies = [{ node: sdk.nodeId, policy: sdk.config.disclosure }, ...results.filter((r) => r.nodeId !== sdk.nodeId).map((r) => ({ node: r.nodeId, policy: r.disclosure }))];
  const strictest = strictestNoiseScale(policies);
  const field = analysis.disclosureField ?? 'disclosure';
  if (!strictest) return { value: recordNoise(current, field, null).value };
  const fields = [...((analysis.noiseFields as string[] | undefined) ?? ['*'])];
  const noised = addLaplaceNoise(current, strictest.scale, fields);
  const noise: NoiseRecord = { mechanism: 'laplace', scale: strictest.scale, values: noised.noised, fields, requested_by: strictest.nodes };
  const recorded = recordNoise(noised.value, field, noise);
  if (!recorded.recorded) sdk.log.warn('noise added to the final result but not recorded in it: no object holds its field', { field, scale: noise.scale });
  sdk.log.info('laplace noise added to the final result', { scale: noise.scale, values: noise.values, requested_by: noise.requested_by });
  return { value: recorded.value, noise };
}

/** Sends each analyzer in `to` the round: one message to all, or one each with its own view. */
async function sendRound(sdk: FlameSDK, to: string[], msg: RoundMessage, view: ((nodeId: string) => FlameValue) | undefined): Promise<void> {
  if (to.length === 0) return;
  if (!view) {
    await sdk.sendMessage(to, msg as unknown as FlameValue, { category: STAR_ROUND });
    return;
  }
  for (const a of to) await sdk.sendMessage(a, { ...msg, global: view(a) } as unknown as FlameValue, { category: STAR_ROUND });
}

/** The aggregator's side; see the module comment. */
export async function aggregatorRun<L extends FlameValue, G extends FlameValue, F extends FlameValue>(
  sdk: FlameSDK,
  analysis: StarAnalysis<L, G, F>,
  o: StarOptions,
): Promise<StarOutcome<G, F>> {
  const s = runSettings(sdk, analysis, o);
  const { store, saved: ckpt } = await openCheckpoint(sdk, 'aggregator');
  if (ckpt) sdk.log.info('resuming the analysis from a checkpoint', { round: ckpt.round, done: Boolean(ckpt.done), excluded: ckpt.excluded.map((e) => e.nodeId) });
  let excluded: ExcludedNode[] = ckpt?.excluded ?? [];
  const active = (): string[] => sdk.otherNodes.filter((n) => !excluded.some((e) => e.nodeId === n));
  const finishRun = async (done: NonNullable<AggregatorCheckpoint['done']>): Promise<StarOutcome<G, F>> => {
    const info = { resultId: done.resultId, rounds: done.rounds };
    const view = analysis.finalFor ? (a: string) => analysis.finalFor!(done.result as G, a, info) as FlameValue : (): FlameValue => done.result;
    await sdk.analysisFinished({ status: 'finished', to: active(), resultFor: view, resultId: done.resultId, rounds: done.rounds });
    sdk.log.info('analysis finished', { rounds: done.rounds, result_id: done.resultId, contributors: done.contributors, excluded: excluded.map((e) => e.nodeId) });
    return {
      result: done.result as G,
      resultId: done.resultId,
      rounds: done.rounds,
      contributors: done.contributors,
      excluded,
      ...(done.noise ? { noise: done.noise } : {}),
      ...(ckpt ? { resumed: true } : {}),
    };
  };
  if (ckpt?.done) return finishRun(ckpt.done);

  let previous = (ckpt ? ckpt.previous : undefined) as G | undefined;
  try {
    if (!ckpt && sdk.otherNodes.length > 0) {
      // The ready check: a line names who is awaited; the first round's deadline rules what follows.
      await sdk.waitForParticipants({ min: sdk.otherNodes.length, timeoutMs: s.stragglerMs }).catch((e: unknown) => {
        if (!(e instanceof TimeoutError)) throw e;
        sdk.log.warn('not every node is online yet; starting the first round anyway', { error: e });
      });
    }
    for (let round = ckpt ? ckpt.round + 1 : 0; round < s.maxRounds; round++) {
      let results: NodeResult<L>[];
      if (sdk.otherNodes.length === 0) {
        // A single-node run: the aggregator is also the only data holder.
        results = [{ nodeId: sdk.nodeId, value: await analysis.analyze({ sdk, round, global: previous }), disclosure: sdk.config.disclosure }];
      } else {
        const view = analysis.globalFor && previous !== undefined ? (a: string) => analysis.globalFor!(previous!, a) : undefined;
        await sendRound(sdk, active(), { round, global: previous ?? null }, view);
        const collected = await collectRound<L, G>(sdk, analysis, s, round, previous, active(), excluded);
        results = collected.results;
        excluded = collected.excluded;
      }
      const current = await analysis.aggregate(results, { sdk, round, previous, excluded });
      sdk.setProgress(Math.min(0.99, (round + 1) / s.maxRounds));
      const converged = analysis.converged ? analysis.converged(current, previous, round) : true;
      if (!converged && round === s.maxRounds - 1) {
        // Never submit an aggregate the analysis does not call final.
        throw new InternalError(`analysis did not converge within ${s.maxRounds} rounds (raise maxRounds / --max-rounds)`);
      }
      if (converged) {
        const { value: final, noise } = withNoise(sdk, analysis, current, results);
        const resultId = await sdk.sendResult(analysis.submit ? analysis.submit(final) : final, { name: o.resultName ?? 'result' });
        const done = { resultId, result: final as FlameValue, rounds: round + 1, contributors: results.map((r) => r.nodeId).filter((n) => n !== sdk.nodeId), ...(noise ? { noise } : {}) };
        await store.save({ role: 'aggregator', round, previous: current as FlameValue, excluded, done });
        return await finishRun(done);
      }
      await store.save({ role: 'aggregator', round, previous: current as FlameValue, excluded });
      previous = current;
    }
    throw new InternalError('unreachable: star loop ended without a result');
  } catch (e) {
    // Tell the analyzers why instead of letting them wait for a timeout.
    const reason = e instanceof Error ? e.message : String(e);
    await sdk.analysisFinished({ status: 'failed', reason, to: active() }).catch(() => undefined);
    throw e;
  }
}

/**
 * Collects the round's local results from `active` analyzers, leaving out (when tolerated) those
 * that miss the straggler deadline or whose heartbeats stop; returns the results in configured node
 * order (deterministic aggregation) and the updated exclusion list.
 */
async function collectRound<L, G>(
  sdk: FlameSDK,
  analysis: AnyAnalysis,
  s: RunSettings,
  round: number,
  global: G | undefined,
  active: string[],
  excludedBefore: ExcludedNode[],
): Promise<{ results: NodeResult<L>[]; excluded: ExcludedNode[] }> {
  const excluded = [...excludedBefore];
  const isExcluded = (n: string): boolean => excluded.some((e) => e.nodeId === n);
  const got = new Map<string, NodeResult<L>>();
  const started = Date.now();
  const deadline = started + s.timeoutMs;
  const stragglerAt = started + s.stragglerMs;
  // Liveness is looked at 4 times a heartbeat, so a loss is acted on within a quarter beat of showing.
  const pollMs = Math.max(50, Math.min(sdk.config.heartbeatMs / 4, 1000));
  const leaveOut = async (nodes: string[], reason: ExcludedNode['reason'], why: string): Promise<void> => {
    const tolerated = analysis.tolerates?.({ round, global, missing: nodes }) ?? false;
    const left = active.filter((n) => !isExcluded(n) && !nodes.includes(n)).length;
    if (!tolerated || left < s.minNodes) {
      const who = nodes.map((n) => `"${n}"`).join(', ');
      const rule = !tolerated ? 'the analysis does not tolerate a missing node in this round' : `only ${left} analyzers would be left, ${s.minNodes} needed (minNodes)`;
      throw new TimeoutError(`round ${round}: ${who} ${why}; ${rule}`);
    }
    for (const n of nodes) excluded.push({ nodeId: n, round, reason });
    sdk.log.warn('going on without nodes', { round, nodes, reason, why });
    await sdk.analysisFinished({ status: 'excluded', reason: `left out of the analysis in round ${round}: ${why}`, to: nodes }).catch(() => undefined);
  };
  for (;;) {
    const waiting = active.filter((n) => !got.has(n) && !isExcluded(n));
    if (waiting.length === 0) break;
    const now = Date.now();
    if (now >= deadline) {
      throw new TimeoutError(`round ${round}: no local result from ${waiting.map((m) => `"${m}"`).join(', ')} within ${s.timeoutMs} ms`);
    }
    if (now >= stragglerAt && s.stragglerMs < s.timeoutMs) {
      await leaveOut(waiting, 'straggler', `gave no result within the straggler deadline of ${s.stragglerMs} ms`);
      continue;
    }
    // Heartbeats: a node silent for the loss window is lost (a node that never started counts from the round's start).
    const live = await sdk.peerLiveness({ lossAfterMs: s.lossAfterMs });
    const lost = waiting.filter((n) => (live[n]?.announced ? live[n].lost : now - started > s.lossAfterMs));
    if (lost.length > 0) {
      const silent = lost.map((n) => (live[n]?.closed ? `"${n}" closed ${live[n].silentMs} ms ago` : live[n]?.announced ? `"${n}" silent for ${live[n].silentMs} ms` : `"${n}" never started`)).join(', ');
      await leaveOut(lost, 'lost', `stopped answering (${silent}; heartbeats every ${sdk.config.heartbeatMs} ms)`);
      continue;
    }
    let msg: FlameMessage;
    try {
      // Only star messages: anything else the analyzers send stays for the analysis to await.
      msg = await sdk.awaitMessage(undefined, { timeoutMs: Math.max(1, Math.min(pollMs, deadline - Date.now(), Math.max(1, stragglerAt - Date.now()))), category: [STAR_LOCAL, STAR_FAILED] });
    } catch (e) {
      if (e instanceof TimeoutError) continue;
      throw e;
    }
    const what = `${msg.category} from "${msg.sender}"`;
    if (!active.includes(msg.sender) || isExcluded(msg.sender)) {
      sdk.log.warn('discarded a message of a node left out of the run', { sender: msg.sender, category: msg.category, round });
      continue;
    }
    if (msg.category === STAR_FAILED) {
      const f = parseFailed(msg.data, what);
      if (f.round !== round) continue;
      await leaveOut([msg.sender], 'failed', `failed: ${f.error}`).catch((e: unknown) => {
        throw e instanceof FlameError ? new InternalError(`node "${msg.sender}" failed in round ${round}: ${f.error}`, { cause: e }) : e;
      });
      continue;
    }
    const local = parseLocal(msg.data, what);
    if (local.round !== round) continue; // an earlier round's result, or a repeat after a restart
    if (got.has(msg.sender)) continue;
    const disclosure = declaredPolicy(msg.sender, local.disclosure);
    got.set(msg.sender, { nodeId: msg.sender, value: local.value as L, ...(disclosure ? { disclosure } : {}) });
  }
  // Keep the configured node order so aggregation is deterministic.
  return { results: active.filter((n) => got.has(n)).map((n) => got.get(n)!), excluded };
}
