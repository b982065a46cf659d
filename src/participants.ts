/**
 * The analysis' nodes as the broker sees them: who has announced itself (getParticipants) and who
 * answers a ping now (askNodeStatus). Liveness from heartbeats is `liveness.ts`.
 */
import type { BrokerAdapter } from './broker/port.js';
import type { Role } from './config.js';
import type { NodeStatus } from './messenger/index.js';

/** A participant of the analysis as `getParticipants()` reports it. */
export interface Participant {
  /** The node's id. */
  nodeId: string;
  /** Whether it is the aggregator or an analyzer. */
  role: Role;
  /** Whether the node has announced itself on the broker. */
  announced: boolean;
  /** ISO-8601 time of its last heartbeat, when it has announced itself. */
  lastSeen?: string;
}

/** Every node of `participants`, with whether and when it last announced itself. */
export async function participantsOf(broker: BrokerAdapter, participants: readonly string[], aggregatorId: string): Promise<Participant[]> {
  const announced = new Map((await broker.participants()).map((p) => [p.nodeId, p]));
  return participants.map((nodeId) => {
    const a = announced.get(nodeId);
    return {
      nodeId,
      role: nodeId === aggregatorId ? 'aggregator' : 'analyzer',
      announced: a !== undefined,
      ...(a ? { lastSeen: a.lastSeen } : {}),
    };
  });
}

/** Pings every node of `participants` at once; `self`, when given, counts as online unasked. */
export async function statusOfNodes(broker: BrokerAdapter, participants: readonly string[], self: string | undefined, timeoutMs: number): Promise<Record<string, NodeStatus>> {
  const announced = new Set((await broker.participants()).map((p) => p.nodeId));
  const entries = await Promise.all(
    participants.map(async (id): Promise<[string, NodeStatus]> => {
      if (id === self) return [id, 'online'];
      if (await broker.ping(id, timeoutMs)) return [id, 'online'];
      return [id, announced.has(id) ? 'offline' : 'not_connected'];
    }),
  );
  return Object.fromEntries(entries);
}
