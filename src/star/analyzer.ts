/**
 * An analyzer's side of a star run. It answers each round of the aggregator once, checkpointing the
 * answer; a repeated round (the aggregator restarted) gets the kept answer again. Restarted itself, it
 * finds in its inbox the round it was working on (messages are kept across restarts), lets the
 * analysis rebuild its state (`resume`), and goes on. The run ends with the aggregator's
 * `flame.finished`: finished (the result), failed (the reason) or excluded (quorum).
 */
import type { FlameValue } from '../codec/index.js';
import { ExcludedError, FlameError, InternalError, TimeoutError } from '../errors.js';
import type { FlameMessage } from '../messenger/index.js';
import type { FlameSDK } from '../sdk.js';
import type { StarAnalysis, StarOptions, StarOutcome } from './analysis.js';
import { runSettings } from './aggregator.js';
import { openCheckpoint, type AnalyzerCheckpoint } from './checkpoint.js';
import { FINISHED, parseFinished, parseRound, STAR_FAILED, STAR_LOCAL, STAR_ROUND, type LocalMessage } from './protocol.js';

/** The newest round or end message from the aggregator among those kept from before a restart. */
function latestKept(sdk: FlameSDK): FlameMessage | undefined {
  const kept = sdk.getMessages({ from: sdk.aggregatorId, category: [STAR_ROUND, FINISHED] });
  return kept.length > 0 ? kept[kept.length - 1] : undefined;
}

/** The analyzer's side; see the module comment. */
export async function analyzerRun<L extends FlameValue, G extends FlameValue, F extends FlameValue>(
  sdk: FlameSDK,
  analysis: StarAnalysis<L, G, F>,
  o: StarOptions,
): Promise<StarOutcome<G, F>> {
  const s = runSettings(sdk, analysis, o);
  const opened = await openCheckpoint(sdk, 'analyzer');
  const store = opened.store;
  let ckpt: AnalyzerCheckpoint | undefined = opened.saved;
  let resumed = Boolean(ckpt);
  // State to rebuild: a restarted node (or one whose inbox kept a round it had taken) that is past round 0.
  let needsResume = true;
  if (ckpt) sdk.log.info('resuming the analysis from a checkpoint', { answered_round: ckpt.round });

  const answer = async (round: number, global: G | undefined): Promise<void> => {
    if (ckpt && round === ckpt.round) {
      // A repeat of the round answered last (the aggregator restarted): the same answer again.
      await sdk.sendIntermediateResult(sdk.aggregatorId, ckpt.local, { category: STAR_LOCAL });
      return;
    }
    if (ckpt && round < ckpt.round) return; // an older round: already answered
    if (needsResume && round > 0 && analysis.resume) {
      sdk.log.info('rebuilding the local state to go on', { round });
      await analysis.resume({ sdk, round, global });
      resumed = true;
    }
    needsResume = false;
    let value: L;
    try {
      value = await analysis.analyze({ sdk, round, global });
    } catch (e) {
      const error = e instanceof FlameError || e instanceof Error ? e.message : String(e);
      await sdk.sendMessage(sdk.aggregatorId, { round, error }, { category: STAR_FAILED }).catch(() => undefined);
      throw e;
    }
    const local: LocalMessage = { round, value, disclosure: sdk.config.disclosure };
    ckpt = { role: 'analyzer', round, local: local as unknown as FlameValue };
    // Checkpoint first: once the aggregator has the answer, a restart must not compute it differently.
    await store.save(ckpt);
    await sdk.sendIntermediateResult(sdk.aggregatorId, local as unknown as FlameValue, { category: STAR_LOCAL });
    sdk.setProgress(Math.min(0.99, (round + 1) / s.maxRounds));
  };

  const handle = async (msg: FlameMessage): Promise<StarOutcome<G, F> | undefined> => {
    const what = `${msg.category} from "${msg.sender}"`;
    if (msg.category === FINISHED) {
      const f = parseFinished(msg.data, what);
      if (f.status === 'failed') throw new InternalError(`aggregator "${sdk.aggregatorId}" stopped the analysis: ${f.reason ?? 'no reason given'}`);
      if (f.status === 'excluded') throw new ExcludedError(`aggregator "${sdk.aggregatorId}" went on without this node: ${f.reason ?? 'no reason given'}`);
      return { result: f.result as F, rounds: f.rounds ?? (ckpt ? ckpt.round + 1 : 0), ...(f.result_id ? { resultId: f.result_id } : {}), ...(resumed ? { resumed } : {}) };
    }
    const r = parseRound(msg.data, what);
    await answer(r.round, (r.global ?? undefined) as G | undefined);
    return undefined;
  };

  // After a restart: the round (or end) the node had taken but not answered is in its kept messages.
  // The round it checkpointed last counts too: it may have stopped before sending the answer (resent as kept).
  const kept = latestKept(sdk);
  if (kept && (kept.category === FINISHED || !ckpt || parseRound(kept.data, 'kept round').round >= ckpt.round)) {
    const outcome = await handle(kept);
    if (outcome) return outcome;
  }
  // The kept message may not have been taken yet (it arrived before the run began): awaitMessage would
  // hand it over again, and a second answer would go out.
  const handledId = kept?.id;
  let lastHeard = Date.now();
  let warned = false;
  for (;;) {
    let msg: FlameMessage;
    try {
      msg = await sdk.awaitMessage(sdk.aggregatorId, { timeoutMs: Math.min(s.timeoutMs, Math.max(sdk.config.heartbeatMs, 1000)), category: [STAR_ROUND, FINISHED] });
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
      const silent = Date.now() - lastHeard;
      if (silent >= s.timeoutMs) throw new TimeoutError(`aggregator "${sdk.aggregatorId}" sent no round within ${s.timeoutMs} ms`);
      // An aggregator whose heartbeats stopped may be restarting (it resumes): say so once, keep waiting.
      const live = (await sdk.peerLiveness({ lossAfterMs: s.lossAfterMs }))[sdk.aggregatorId];
      if (live && !live.online && !warned) {
        warned = true;
        sdk.log.warn('the aggregator is offline; waiting for it to come back', { aggregator: sdk.aggregatorId, silent_ms: live.silentMs, waiting_up_to_ms: s.timeoutMs });
      }
      continue;
    }
    lastHeard = Date.now();
    warned = false;
    if (msg.id === handledId) continue;
    const outcome = await handle(msg);
    if (outcome) return outcome;
  }
}
