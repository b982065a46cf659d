/**
 * Provisioning of an analysis' JetStream resources, and the check every node makes before it sends.
 *
 * Two streams per analysis: the inbox stream (every (recipient, sender) subject, work-queue retention,
 * a message kept until its recipient's durable acknowledges it) and the participants bucket (a KV
 * bucket without rollups, deletes or purges). Only the aggregator or an operator creates them; every
 * node checks their config and refuses to run when something could leak or block messages: a republish
 * rule, a mirror or source, other subjects, allowed rollups, tiny size limits.
 */
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  nanos,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from 'nats';
import { ConflictError, TimeoutError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { jsErrorCode, JS_STREAM_NAME_IN_USE, JS_STREAM_NOT_FOUND } from './errors.js';
import type { AnalysisNames } from './names.js';

/** Settings of the provisioned streams (all have defaults). */
export interface ProvisionOptions {
  /** Messages one sender may have waiting for one recipient on the broker (default 10,000). */
  maxMsgsPerSubject?: number;
  /** How long an unacknowledged message is kept, in ms (default 7 days). */
  maxAgeMs?: number;
  /** Stream replicas in a NATS cluster (default 1). */
  replicas?: number;
}

const DAY_MS = 24 * 3600_000;
/** Largest value in the participants bucket (a participant record or the roster). */
export const KV_MAX_VALUE_BYTES = 1024 * 1024;

/** The inbox stream's config. */
export function inboxStreamConfig(names: AnalysisNames, o: ProvisionOptions = {}): Partial<StreamConfig> {
  return {
    name: names.stream,
    subjects: [names.inboxWildcard],
    // Work-queue retention: a message is gone once its recipient acknowledged it.
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    // A sender over its per-recipient limit gets an error instead of silently pushing out older messages.
    discard: DiscardPolicy.New,
    discard_new_per_subject: true,
    max_msgs_per_subject: o.maxMsgsPerSubject ?? 10_000,
    max_age: nanos(o.maxAgeMs ?? 7 * DAY_MS),
    duplicate_window: nanos(2 * 60_000),
    num_replicas: o.replicas ?? 1,
    allow_rollup_hdrs: false,
    deny_delete: true,
    deny_purge: true,
  };
}

/** The participants bucket's stream config (a KV bucket that refuses rollups, deletes and purges). */
export function kvStreamConfig(names: AnalysisNames, o: ProvisionOptions = {}): Partial<StreamConfig> {
  return {
    name: names.kvStream,
    subjects: [`$KV.${names.bucket}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    max_msgs_per_subject: 1,
    max_msg_size: KV_MAX_VALUE_BYTES,
    num_replicas: o.replicas ?? 1,
    allow_rollup_hdrs: false,
    deny_delete: true,
    deny_purge: true,
    allow_direct: true,
  };
}

function sameSubjects(a: string[] | undefined, b: string[]): boolean {
  return Array.isArray(a) && a.length === b.length && a.every((s, i) => s === b[i]);
}

/** What in `info` differs from what a node needs to trust the stream; empty when it is fine. */
function problems(info: StreamInfo, expected: Partial<StreamConfig>, extra: (c: StreamConfig) => string[]): string[] {
  const c = info.config;
  const out: string[] = [];
  if (!sameSubjects(c.subjects, expected.subjects!)) out.push(`subjects are ${JSON.stringify(c.subjects)}, expected ${JSON.stringify(expected.subjects)}`);
  if (c.republish) out.push(`a republish rule sends its messages to ${JSON.stringify(c.republish.dest)}`);
  if (c.mirror) out.push('it mirrors another stream');
  if (c.sources && c.sources.length > 0) out.push('it sources other streams');
  const transform = (c as StreamConfig & { subject_transform?: unknown }).subject_transform;
  if (transform) out.push('it transforms subjects');
  if (c.allow_rollup_hdrs) out.push('rollups are allowed (a node could wipe other nodes\' records)');
  if (!c.deny_delete) out.push('messages may be deleted through the API');
  if (!c.deny_purge) out.push('the stream may be purged');
  if (c.storage !== StorageType.File) out.push(`storage is ${c.storage}, expected file (memory storage loses messages on a restart)`);
  if (c.sealed) out.push('the stream is sealed');
  return [...out, ...extra(c)];
}

function inboxProblems(info: StreamInfo, names: AnalysisNames, needPayload: number): string[] {
  return problems(info, inboxStreamConfig(names), (c) => {
    const out: string[] = [];
    if (c.retention !== RetentionPolicy.Workqueue) out.push(`retention is ${c.retention}, expected workqueue`);
    if (c.max_msg_size !== -1 && c.max_msg_size !== undefined && c.max_msg_size < needPayload) out.push(`max_msg_size is ${c.max_msg_size}, below the ${needPayload} bytes nodes send`);
    if (c.max_bytes !== -1 && c.max_bytes !== undefined && c.max_bytes < 64 * 1024 * 1024) out.push(`max_bytes is ${c.max_bytes}, below 64 MiB`);
    if (c.max_msgs !== -1 && c.max_msgs !== undefined && c.max_msgs < 10_000) out.push(`max_msgs is ${c.max_msgs}, below 10000`);
    if (c.max_msgs_per_subject !== -1 && c.max_msgs_per_subject < 100) out.push(`max_msgs_per_subject is ${c.max_msgs_per_subject}, below 100`);
    if (c.discard !== DiscardPolicy.New || !c.discard_new_per_subject) out.push('discard must be "new" per subject (else one sender could push out another\'s messages)');
    if (c.max_age !== 0 && c.max_age < nanos(DAY_MS)) out.push('max_age is under a day');
    return out;
  });
}

function kvProblems(info: StreamInfo, names: AnalysisNames): string[] {
  return problems(info, kvStreamConfig(names), (c) => {
    const out: string[] = [];
    if (c.max_msgs_per_subject !== 1) out.push(`history is ${c.max_msgs_per_subject}, expected 1`);
    if (c.max_msg_size !== -1 && c.max_msg_size < 16 * 1024) out.push(`max_msg_size is ${c.max_msg_size}, below 16 KiB`);
    if (!c.allow_direct) out.push('direct get is off');
    return out;
  });
}

async function info(jsm: JetStreamManager, stream: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(stream);
  } catch (e) {
    if (jsErrorCode(e) === JS_STREAM_NOT_FOUND) return undefined;
    throw e;
  }
}

async function create(jsm: JetStreamManager, config: Partial<StreamConfig>): Promise<void> {
  try {
    await jsm.streams.add(config);
  } catch (e) {
    // Created concurrently by the operator: the check that follows decides whether it is acceptable.
    if (jsErrorCode(e) !== JS_STREAM_NAME_IN_USE) throw e;
  }
}

/**
 * Checks both streams of the analysis; ConflictError listing every problem when a stream is not as
 * a node needs it (nothing is sent through a stream that fails the check).
 */
export async function verifyAnalysis(jsm: JetStreamManager, names: AnalysisNames, needPayload: number): Promise<void> {
  const [inbox, kv] = await Promise.all([info(jsm, names.stream), info(jsm, names.kvStream)]);
  const found: string[] = [];
  if (!inbox) found.push(`stream ${names.stream} does not exist`);
  else found.push(...inboxProblems(inbox, names, needPayload).map((p) => `stream ${names.stream}: ${p}`));
  if (!kv) found.push(`bucket stream ${names.kvStream} does not exist`);
  else found.push(...kvProblems(kv, names).map((p) => `bucket stream ${names.kvStream}: ${p}`));
  if (found.length > 0) {
    throw new ConflictError(
      `broker: the analysis' JetStream resources are not provisioned as this SDK requires — ${found.join('; ')}. Refusing to send; an operator should delete them and run flame analysis provision`,
    );
  }
}

/** Creates both streams where missing (aggregator or operator), then checks them. */
export async function provisionAnalysis(jsm: JetStreamManager, names: AnalysisNames, needPayload: number, o: ProvisionOptions = {}): Promise<void> {
  if (!(await info(jsm, names.stream))) await create(jsm, inboxStreamConfig(names, o));
  if (!(await info(jsm, names.kvStream))) await create(jsm, kvStreamConfig(names, o));
  await verifyAnalysis(jsm, names, needPayload);
}

/**
 * Waits until the aggregator (or the operator) has provisioned both streams, logging who is waited
 * for, then checks them. TimeoutError after `timeoutMs`.
 */
export async function awaitProvisioning(
  jsm: JetStreamManager,
  names: AnalysisNames,
  needPayload: number,
  o: { timeoutMs: number; log?: Logger; aggregatorId?: string },
): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  let logged = false;
  for (let attempt = 0; ; attempt++) {
    const [a, b] = await Promise.all([info(jsm, names.stream), info(jsm, names.kvStream)]);
    if (a && b) return verifyAnalysis(jsm, names, needPayload);
    if (Date.now() >= deadline) {
      throw new TimeoutError(
        `broker: stream ${names.stream} of the analysis was not provisioned within ${o.timeoutMs} ms (by the aggregator${o.aggregatorId ? ` "${o.aggregatorId}"` : ''} or flame analysis provision)`,
      );
    }
    if (!logged && attempt >= 2) {
      o.log?.info('waiting for the analysis to be provisioned', { stream: names.stream, by: o.aggregatorId ?? 'the aggregator' });
      logged = true;
    }
    await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
  }
}
