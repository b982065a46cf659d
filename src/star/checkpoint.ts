/**
 * A node's place in a star run, kept in its local storage after every round so that a node that is
 * killed and restarted with the same configuration goes on from its last completed round:
 *
 * - the aggregator keeps the round it last closed, the global it made of it, who was left out, and —
 *   once it has submitted the final result — the result itself;
 * - an analyzer keeps the last round it answered and the answer (sent again, unchanged, when the
 *   aggregator asks for that round once more after its own restart).
 */
import { decodeValue, encodeValue, type FlameValue } from '../codec/index.js';
import { NotFoundError } from '../errors.js';
import type { ObjectStore } from '../results/port.js';
import type { ExcludedNode } from './analysis.js';
import type { NoiseRecord } from './noise.js';

/** The aggregator's place. */
export interface AggregatorCheckpoint {
  role: 'aggregator';
  /** The last round closed (its aggregate is `previous`). */
  round: number;
  previous: FlameValue;
  excluded: ExcludedNode[];
  /** Set once the final result is on the hub. */
  done?: { resultId: string; result: FlameValue; rounds: number; contributors: string[]; noise?: NoiseRecord };
}

/** An analyzer's place. */
export interface AnalyzerCheckpoint {
  role: 'analyzer';
  /** The last round answered. */
  round: number;
  /** The answer sent (the local message), to send again to a repeated round. */
  local: FlameValue;
}

/** One of the two. */
export type StarCheckpoint = AggregatorCheckpoint | AnalyzerCheckpoint;

const FORMAT = 'flame-star-checkpoint-v1';

/** Where a node's checkpoint of an analysis lives in its local storage. */
export function checkpointKey(projectId: string, analysisId: string, nodeId: string): string {
  return `star/${projectId}/${analysisId}/${nodeId}.checkpoint`;
}

/** Reads and writes one node's checkpoint. */
export class CheckpointStore {
  /** Bytes written by the last save (for the cost figures of bench/checkpoint). */
  lastBytes = 0;

  constructor(
    private readonly local: ObjectStore,
    private readonly key: string,
  ) {}

  /** The checkpoint, or undefined when the node has none (a first start) or it is unreadable. */
  async load(): Promise<StarCheckpoint | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = await this.local.getBytes(this.key);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
    const v = decodeValue(bytes, `checkpoint ${this.key}`) as { format?: string; checkpoint?: StarCheckpoint } | null;
    if (!v || v.format !== FORMAT || !v.checkpoint) return undefined;
    return v.checkpoint;
  }

  /** Replaces the checkpoint (a store's put is whole or absent). */
  async save(c: StarCheckpoint): Promise<void> {
    const bytes = encodeValue({ format: FORMAT, checkpoint: c as unknown as FlameValue });
    this.lastBytes = bytes.byteLength;
    await this.local.put(this.key, bytes);
  }
}

/** A node's checkpoint store for its current analysis, and its checkpoint of `role` if it has one. */
export async function openCheckpoint<R extends StarCheckpoint['role']>(
  sdk: { results: { local: ObjectStore }; projectId: string; analysisId: string; nodeId: string },
  role: R,
): Promise<{ store: CheckpointStore; saved: Extract<StarCheckpoint, { role: R }> | undefined }> {
  const store = new CheckpointStore(sdk.results.local, checkpointKey(sdk.projectId, sdk.analysisId, sdk.nodeId));
  const saved = await store.load();
  return { store, saved: saved?.role === role ? (saved as Extract<StarCheckpoint, { role: R }>) : undefined };
}
