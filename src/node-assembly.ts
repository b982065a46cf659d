/**
 * How FlameSDK.connect assembles a node from configuration: the stores, the node's identity, the
 * broker adapter (the aggregator provisions the streams, the others check them), the trust anchor,
 * the result service and the messenger. Starting them is the SDK's part.
 */
import path from 'node:path';
import type { BrokerAdapter } from './broker/port.js';
import { MemoryBrokerAdapter, MemoryBrokerHub } from './broker/memory.js';
import { NatsBrokerAdapter } from './broker/nats/index.js';
import { ephemeralIdentity, loadOrCreateIdentity, type NodeIdentity } from './trust/identity.js';
import { PeerTrust } from './trust/peers.js';
import type { ObjectStore } from './results/port.js';
import { FsObjectStore } from './results/fs.js';
import { S3ObjectStore } from './results/s3.js';
import { ResultService } from './results/service.js';
import { resolveConfig, type FlameConfig, type FlameConfigInput, type StoreConfig } from './config.js';
import { createLogger, type Logger, type LogSink } from './logger.js';
import { Messenger } from './messenger/index.js';
import { connectFlameNode, type FlameNodeParts } from './flame-node/assembly.js';

/** Adapters a caller may hand in instead of having them built from config (tests, the simulator). */
export interface FlameSDKDeps {
  /** Broker to use instead of `config.broker`. */
  broker?: BrokerAdapter;
  /** Hub storage to use instead of `config.hub`. */
  hub?: ObjectStore;
  /** Local storage to use instead of `config.local`. */
  local?: ObjectStore;
  /** Where JSON log lines go (default stderr). */
  logSink?: LogSink;
  /**
   * Inspect only: read results, participants and node status with this node's configuration, but do
   * not consume its inbox, announce it or send heartbeats, so a CLI run beside the node's analysis
   * never takes a message meant for that analysis. Messaging methods throw BadRequestError.
   */
  observer?: boolean;
}

let defaultHub: MemoryBrokerHub | undefined;

/** The process-wide in-process broker used when no broker is configured. */
export function defaultMemoryBrokerHub(): MemoryBrokerHub {
  defaultHub ??= new MemoryBrokerHub();
  return defaultHub;
}

async function buildStore(cfg: StoreConfig): Promise<ObjectStore> {
  if (cfg.type === 'fs') return new FsObjectStore(cfg.dir);
  const store = new S3ObjectStore(cfg);
  await store.ensureBucket();
  return store;
}

async function buildBroker(config: FlameConfig, log: Logger, observer: boolean): Promise<BrokerAdapter> {
  const b = config.broker;
  if (b.type === 'memory') return new MemoryBrokerAdapter(b.hub ?? defaultMemoryBrokerHub(), config.analysisId);
  if (b.type === 'flame-node') throw new Error('flame-node brokers are built by connectFlameNode');
  // Only the aggregator creates the analysis' streams; everyone else waits for them and checks them.
  const provision = observer ? 'verify' : config.aggregatorId === config.nodeId ? 'create' : 'verify';
  return NatsBrokerAdapter.connect({
    ...b,
    analysisId: config.analysisId,
    nodeId: config.nodeId,
    participants: config.participants,
    name: `flame-${config.nodeId}`,
    provision,
    log,
  });
}

/** A node's parts, built and connected but not started. */
export interface NodeParts {
  config: FlameConfig;
  log: Logger;
  broker: BrokerAdapter;
  identity: NodeIdentity;
  /** Undefined only for an observer without a roster. */
  trust: PeerTrust | undefined;
  results: ResultService;
  messenger: Messenger;
  /** The `flame-node` profile's adapters, when that profile is chosen. */
  flameNode?: FlameNodeParts;
}

/**
 * Builds a node's parts from `input` (over `FLAME_*` env, over embedded defaults); `onActivity` is
 * told of every message sent or taken in. A broker it built is closed again when trust fails.
 */
export async function assembleNode(input: FlameConfigInput, deps: FlameSDKDeps, onActivity: () => void): Promise<NodeParts> {
  let config = resolveConfig(input);
  let flameNode: FlameNodeParts | undefined;
  if (config.broker.type === 'flame-node' && !deps.broker) {
    // On a FLAME node the message broker says who this node is, who takes part and who aggregates.
    flameNode = await connectFlameNode(config.broker, config.analysisId, config.projectId);
    config = resolveConfig({
      ...input,
      broker: config.broker,
      nodeId: flameNode.self.nodeId,
      participants: flameNode.nodes.map((n) => n.nodeId),
      aggregatorId: flameNode.nodes.find((n) => n.nodeType === 'aggregator')!.nodeId,
    });
  }
  const logSink = flameNode && !deps.logSink ? flameNode.logs.sink : deps.logSink;
  const log = createLogger(config.logLevel, { node: config.nodeId, analysis: config.analysisId }, logSink);
  const [hub, local] = await Promise.all([
    deps.hub ?? flameNode?.hub ?? buildStore(config.hub),
    deps.local ?? flameNode?.local ?? buildStore(config.local),
  ]);
  // An observer never receives sealed results, so it needs no lasting key.
  const identity = deps.observer
    ? ephemeralIdentity(config.nodeId)
    : await loadOrCreateIdentity({ local, projectId: config.projectId, analysisId: config.analysisId, nodeId: config.nodeId });
  const broker: BrokerAdapter = deps.broker ?? flameNode?.broker ?? (await buildBroker(config, log, Boolean(deps.observer)));
  const stateDir = path.join(config.stateDir, config.projectId, config.analysisId);
  let trust: PeerTrust | undefined;
  try {
    trust = await PeerTrust.create({
      analysisId: config.analysisId,
      nodeId: config.nodeId,
      participants: config.participants,
      aggregatorId: config.aggregatorId,
      identity,
      config: config.trust,
      brokerRoster: broker.roster ? () => broker.roster!() : undefined,
      announced: async () => (await broker.participants()).map((p) => ({ nodeId: p.nodeId, keys: p.keys })),
      stateDir,
      log,
      observer: deps.observer,
    });
  } catch (e) {
    // An observer without a roster still lists nodes and results; it just cannot verify them.
    if (!deps.observer) {
      if (!deps.broker) await broker.close().catch(() => undefined);
      await flameNode?.server.close();
      throw e;
    }
  }
  const isAggregator = config.aggregatorId === config.nodeId;
  const results = new ResultService({
    hub,
    local,
    nodeId: config.nodeId,
    analysisId: config.analysisId,
    projectId: config.projectId,
    isAggregator,
    aggregatorId: config.aggregatorId,
    ...(isAggregator && !deps.observer ? { signingKey: identity.keys[0].signPrivate } : {}),
    limits: config.limits,
    ...(trust ? { trust: { aggregatorId: config.aggregatorId, signKeysOf: (n: string) => trust!.keysOf(n)?.map((k) => k.sign) } } : {}),
  });
  const messenger = new Messenger({
    nodeId: config.nodeId,
    projectId: config.projectId,
    analysisId: config.analysisId,
    participants: config.participants,
    broker,
    hub,
    identity,
    trust: trust ?? { keysOf: () => undefined, refresh: async () => false },
    limits: config.limits,
    log,
    stateDir,
    onActivity,
  });
  return { config, log, broker, identity, trust, results, messenger, ...(flameNode ? { flameNode } : {}) };
}
