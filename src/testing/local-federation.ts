/**
 * A whole federation in one process for testing an analysis: every node's keys made in its own local
 * folder, the pinned roster of them, and one connected FlameSDK per node on an in-process broker or
 * on a NATS server, sharing a folder as hub storage. Run the analysis with `runStar` on every SDK.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { MemoryBrokerHub } from '../broker/memory.js';
import { NatsBrokerAdapter } from '../broker/nats/adapter.js';
import type { BrokerConfig, FlameConfigInput, LogLevel } from '../config.js';
import type { DataSourceConfig } from '../data/port.js';
import { BadRequestError } from '../errors.js';
import type { LogSink } from '../logger.js';
import { FlameSDK } from '../sdk.js';
import type { Roster } from '../trust/roster.js';
import { writeLocalRoster } from './federation-keys.js';

/** One node of {@link createLocalFederation} with more than its id. */
export interface LocalFederationNode {
  /** The node's id. */
  id: string;
  /** The data sources this node may read (default none). */
  dataSources?: DataSourceConfig[];
  /** More config for this node only, over {@link LocalFederationOptions.config}. */
  config?: FlameConfigInput;
}

/** Where the nodes of {@link createLocalFederation} exchange messages. */
export type LocalFederationBroker =
  | 'memory'
  | {
      /** A NATS server with JetStream (e.g. the `url` of {@link startNatsServer}). */
      natsUrl: string;
    };

/** Options of {@link createLocalFederation}. */
export interface LocalFederationOptions {
  /** Every node of the analysis, the aggregator included: ids, or ids with data sources and config. */
  nodes: (string | LocalFederationNode)[];
  /** The aggregator, one of `nodes` (default the last node). */
  aggregatorId?: string;
  /** The in-process broker (`'memory'`, default: a new one for this federation) or a NATS server. */
  broker?: LocalFederationBroker;
  /**
   * Storage root: `hub/`, `nodes/<id>/` (each node's local storage and keys) and `roster.json`.
   * Default a new temporary folder, deleted by cleanup(); a folder given here is kept.
   */
  dir?: string;
  /** The analysis id (default `local-` plus 8 random hex digits, so runs on a shared NATS server do not meet). */
  analysisId?: string;
  /** The project id (default `local-project`). */
  projectId?: string;
  /** Log level of every node (default `warn`). */
  logLevel?: LogLevel;
  /** Where every node's JSON log lines go (default stderr). */
  logSink?: LogSink;
  /** Heartbeat interval of every node in ms (default 200, so a lost node is noticed quickly). */
  heartbeatMs?: number;
  /** More config for every node (e.g. `disclosure`, `limits`). */
  config?: FlameConfigInput;
}

/** What {@link createLocalFederation} returns. */
export interface LocalFederation {
  /** The analysis id every node uses. */
  analysisId: string;
  /** The storage root (see {@link LocalFederationOptions.dir}); final results are under `hub/`. */
  dir: string;
  /** The pinned roster every node trusts. */
  roster: Roster;
  /** The roster's file, for node processes (`FLAME_ROSTER`). */
  rosterFile: string;
  /** Every node's connected SDK, in the order of `nodes`. */
  sdks: FlameSDK[];
  /** The aggregator's SDK. */
  aggregator: FlameSDK;
  /** The SDK of node `id` (throws BadRequestError for an unknown id). */
  node(id: string): FlameSDK;
  /** Closes every node, deletes the analysis' streams from the NATS server and the storage root it created. Safe to call twice. */
  cleanup(): Promise<void>;
}

/**
 * Makes every node's keys, the pinned roster and a connected FlameSDK per node. On NATS the
 * aggregator connects first (it creates the analysis' streams), then the others.
 *
 * @example
 * ```ts
 * const fed = await createLocalFederation({ nodes: ['clinic-a', 'agg'] });
 * try {
 *   const [, outcome] = await Promise.all(fed.sdks.map((sdk) => runStar(sdk, myAnalysis)));
 *   expect(outcome.result).toEqual(expected);
 * } finally {
 *   await fed.cleanup();
 * }
 * ```
 */
export async function createLocalFederation(opts: LocalFederationOptions): Promise<LocalFederation> {
  const nodes = opts.nodes.map((n) => (typeof n === 'string' ? { id: n } : n));
  const ids = nodes.map((n) => n.id);
  if (ids.length === 0) throw new BadRequestError('createLocalFederation: at least one node is needed');
  if (new Set(ids).size !== ids.length) throw new BadRequestError(`createLocalFederation: node ids must be unique, got ${ids.join(', ')}`);
  const aggregatorId = opts.aggregatorId ?? ids[ids.length - 1];
  if (!ids.includes(aggregatorId)) throw new BadRequestError(`createLocalFederation: aggregatorId "${aggregatorId}" is not one of the nodes (${ids.join(', ')})`);
  const brokerOpt = opts.broker ?? 'memory';
  if (brokerOpt !== 'memory' && (typeof brokerOpt !== 'object' || typeof brokerOpt.natsUrl !== 'string' || brokerOpt.natsUrl === '')) {
    throw new BadRequestError(`createLocalFederation: broker must be 'memory' or { natsUrl }, got ${JSON.stringify(brokerOpt)}`);
  }
  const analysisId = opts.analysisId ?? `local-${randomUUID().slice(0, 8)}`;
  const projectId = opts.projectId ?? 'local-project';
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'flame-federation-')));
  const localDir = (id: string): string => path.join(dir, 'nodes', id);
  const broker: BrokerConfig = brokerOpt === 'memory' ? { type: 'memory', hub: new MemoryBrokerHub() } : { type: 'nats', servers: [brokerOpt.natsUrl] };

  const sdks = new Map<string, FlameSDK>();
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      const closing = await Promise.allSettled([...sdks.values()].map((s) => s.close()));
      if (broker.type === 'nats') await NatsBrokerAdapter.purgeAnalysis({ servers: broker.servers, analysisId }).catch(() => undefined);
      if (ownDir) await fs.rm(dir, { recursive: true, force: true });
      const failed = closing.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    })());

  try {
    const keys = await writeLocalRoster({ dir, analysisId, nodes: ids, aggregatorId, localDir, projectId });
    const connect = async (n: LocalFederationNode): Promise<void> => {
      const sdk = await FlameSDK.connect(
        {
          nodeId: n.id,
          analysisId,
          projectId,
          participants: ids,
          aggregatorId,
          broker,
          hub: { type: 'fs', dir: path.join(dir, 'hub') },
          local: { type: 'fs', dir: localDir(n.id) },
          trust: keys.trust,
          dataSources: n.dataSources ?? [],
          logLevel: opts.logLevel ?? 'warn',
          heartbeatMs: opts.heartbeatMs ?? 200,
          ...opts.config,
          ...n.config,
        },
        { logSink: opts.logSink },
      );
      sdks.set(n.id, sdk);
    };
    // The aggregator creates the analysis' streams on NATS; the other nodes check them.
    await connect(nodes.find((n) => n.id === aggregatorId)!);
    // All of them settle before a failure is thrown, so cleanup() closes every node that did connect.
    const others = await Promise.allSettled(nodes.filter((n) => n.id !== aggregatorId).map(connect));
    const failed = others.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const node = (id: string): FlameSDK => {
      const sdk = sdks.get(id);
      if (!sdk) throw new BadRequestError(`createLocalFederation: no node "${id}" (nodes: ${ids.join(', ')})`);
      return sdk;
    };
    return { analysisId, dir, roster: keys.roster, rosterFile: keys.rosterFile, sdks: ids.map(node), aggregator: node(aggregatorId), node, cleanup };
  } catch (e) {
    await cleanup().catch(() => undefined);
    throw e;
  }
}
