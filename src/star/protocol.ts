/**
 * The star protocol's messages and their checks. Payloads come from other nodes (authenticated, but
 * still another node's bytes), so each is checked before the runner uses it.
 *
 *   aggregator → analyzer   star.round      {round, global}: work on this round (sent again after an
 *                                           aggregator restart; an analyzer answers a round once and
 *                                           resends its kept answer to a repeat)
 *   analyzer → aggregator   star.local      {round, value, disclosure}: a round's local result (sealed)
 *   analyzer → aggregator   star.failed     {round, error}: its analyze threw
 *   aggregator → any node   flame.finished  {status, reason?, result?, result_id?, rounds?}: the run is
 *                                           over for this node: finished, failed, or excluded (quorum)
 */
import type { FlameValue } from '../codec/index.js';
import type { DisclosurePolicy } from '../config.js';
import { BadRequestError } from '../errors.js';

/** Aggregator → analyzers: start a round. */
export const STAR_ROUND = 'star.round';
/** Analyzer → aggregator: a round's local result (sealed as an intermediate result). */
export const STAR_LOCAL = 'star.local';
/** Analyzer → aggregator: its `analyze` failed. */
export const STAR_FAILED = 'star.failed';
/** Any node → the others: the analysis is over for the receiver (FLAME's `analysis_finished`). */
export const FINISHED = 'flame.finished';

/** A round to work on. */
export interface RoundMessage {
  round: number;
  global: FlameValue;
}

/** A round's local result. */
export interface LocalMessage {
  round: number;
  value: FlameValue;
  disclosure?: DisclosurePolicy;
}

/** How the run ended for the receiver. */
export type FinishStatus = 'finished' | 'failed' | 'excluded';

/** The end of the run for one node. */
export interface FinishedMessage {
  status: FinishStatus;
  /** Why it failed or the node was excluded. */
  reason?: string;
  /** What the node receives of the final result (`finalFor`). */
  result?: FlameValue;
  /** Hub id of the final result. */
  result_id?: string;
  /** Rounds run. */
  rounds?: number;
}

function object(data: unknown, what: string): Record<string, unknown> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new BadRequestError(`${what}: expected an object`);
  return data as Record<string, unknown>;
}

function roundOf(o: Record<string, unknown>, what: string): number {
  const r = o.round;
  if (!Number.isSafeInteger(r) || (r as number) < 0) throw new BadRequestError(`${what}: round must be a whole number >= 0, got ${JSON.stringify(r)}`);
  return r as number;
}

/** A round message from the aggregator. */
export function parseRound(data: unknown, what: string): RoundMessage {
  const o = object(data, what);
  return { round: roundOf(o, what), global: (o.global ?? null) as FlameValue };
}

/** A local result from an analyzer. */
export function parseLocal(data: unknown, what: string): LocalMessage {
  const o = object(data, what);
  return { round: roundOf(o, what), value: (o.value ?? null) as FlameValue, ...(o.disclosure !== undefined ? { disclosure: o.disclosure as DisclosurePolicy } : {}) };
}

/** A failure report from an analyzer. */
export function parseFailed(data: unknown, what: string): { round: number; error: string } {
  const o = object(data, what);
  return { round: roundOf(o, what), error: typeof o.error === 'string' ? o.error.slice(0, 2000) : 'unknown error' };
}

/** The end of the run. */
export function parseFinished(data: unknown, what: string): FinishedMessage {
  const o = object(data, what);
  if (o.status !== 'finished' && o.status !== 'failed' && o.status !== 'excluded') throw new BadRequestError(`${what}: status must be finished, failed or excluded`);
  return {
    status: o.status,
    ...(typeof o.reason === 'string' ? { reason: o.reason.slice(0, 2000) } : {}),
    ...('result' in o ? { result: o.result as FlameValue } : {}),
    ...(typeof o.result_id === 'string' ? { result_id: o.result_id } : {}),
    ...(Number.isSafeInteger(o.rounds) ? { rounds: o.rounds as number } : {}),
  };
}

/** Checks the disclosure policy an analyzer declared with its local result. */
export function declaredPolicy(sender: string, d: unknown): DisclosurePolicy | undefined {
  if (d === undefined || d === null) return undefined;
  const p = d as Partial<DisclosurePolicy>;
  const ok =
    typeof d === 'object' &&
    Number.isSafeInteger(p.minCount) &&
    (p.minCount as number) >= 1 &&
    (p.noiseScale === undefined || (typeof p.noiseScale === 'number' && Number.isFinite(p.noiseScale) && p.noiseScale > 0));
  if (!ok) throw new BadRequestError(`node "${sender}" sent a malformed disclosure policy with its local result (expected {minCount >= 1, noiseScale? > 0})`);
  return p.noiseScale === undefined ? { minCount: p.minCount as number } : { minCount: p.minCount as number, noiseScale: p.noiseScale };
}
