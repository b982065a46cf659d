/**
 * FlameSDK: the one object an analysis talks to. It builds the broker, storage and data adapters from
 * configuration (embedded defaults when nothing is configured), announces the node, and exposes
 * seed 003's message broker client, result service and data API in TypeScript naming.
 */
import type { Readable } from 'node:stream';
import type { BrokerAdapter, ParticipantInfo } from './broker/port.js';
import { MemoryBrokerAdapter, MemoryBrokerHub } from './broker/memory.js';
import { NatsBrokerAdapter } from './broker/nats.js';
import type { ObjectStore } from './results/port.js';
import { FsObjectStore } from './results/fs.js';
import { S3ObjectStore } from './results/s3.js';
import { ResultService } from './results/service.js';
import type { FlameValue } from './codec/index.js';
import { exportPrivateKey, generateNodeKeys, importPrivateKey, publicKeyOf, type NodeKeys } from './crypto/seal.js';
import { DataApi } from './data/index.js';
import type { DataClient, DataSourceInfo } from './data/port.js';
import { resolveConfig, type FlameConfig, type FlameConfigInput, type Role, type StoreConfig } from './config.js';
import { createLogger, type Logger, type LogSink } from './logger.js';
import { RunState, startHealthServer, type HealthServer, type NodeRunStatus } from './health.js';
import { Messenger, type FlameMessage, type MessageFilter, type NodeStatus, type SendOptions } from './messenger.js';
import { BadRequestError, NotFoundError } from './errors.js';

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

async function buildBroker(config: FlameConfig): Promise<BrokerAdapter> {
  const b = config.broker;
  if (b.type === 'memory') return new MemoryBrokerAdapter(b.hub ?? defaultMemoryBrokerHub(), config.analysisId);
  return NatsBrokerAdapter.connect({ ...b, analysisId: config.analysisId, nodeId: config.nodeId, name: `flame-${config.nodeId}` });
}

/**
 * This node's X25519 keys for the analysis, kept in local storage so a node that restarts can still
 * open the intermediate results sealed for it before the restart (nothing is lost).
 */
async function loadOrCreateKeys(local: ObjectStore, config: FlameConfig): Promise<NodeKeys> {
  const key = `keys/${config.projectId}/${config.analysisId}/${config.nodeId}.key`;
  try {
    const privateKey = importPrivateKey(Buffer.from(await local.getBytes(key)).toString('utf8'));
    return { privateKey, publicKey: publicKeyOf(privateKey) };
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
  }
  const keys = generateNodeKeys();
  await local.put(key, Buffer.from(exportPrivateKey(keys.privateKey), 'utf8'));
  return keys;
}

/**
 * One node's connection to a FLAME analysis: messages, results, data sources and run status.
 * Create it with {@link FlameSDK.connect}; call {@link FlameSDK.close} when done.
 */
export class FlameSDK {
  /** This node's id. */
  readonly nodeId: string;
  /** The analysis this node takes part in. */
  readonly analysisId: string;
  /** The project the analysis belongs to. */
  readonly projectId: string;
  /** `aggregator` for the node that merges and submits the final result, else `analyzer`. */
  readonly role: Role;
  /** Structured JSON logger (stderr) with this node's ids on every line. */
  readonly log: Logger;
  /** The resolved configuration. */
  readonly config: FlameConfig;
  /** The result service (also reachable through the methods below). */
  readonly results: ResultService;
  /** The data API (also reachable through the methods below). */
  readonly data: DataApi;

  private readonly state = new RunState();
  private heartbeat?: NodeJS.Timeout;
  private health?: HealthServer;
  private closed = false;
  private observer = false;

  private constructor(
    config: FlameConfig,
    private readonly broker: BrokerAdapter,
    private readonly messenger: Messenger,
    results: ResultService,
    data: DataApi,
    log: Logger,
    private readonly publicKey: string,
  ) {
    this.config = config;
    this.nodeId = config.nodeId;
    this.analysisId = config.analysisId;
    this.projectId = config.projectId;
    this.role = config.aggregatorId === config.nodeId ? 'aggregator' : 'analyzer';
    this.results = results;
    this.data = data;
    this.log = log;
  }

  /**
   * Build every adapter from `input` (over `FLAME_*` env, over embedded defaults), connect, start
   * consuming this node's inbox and announce the node. Throws BadRequestError naming a bad config field.
   */
  static async connect(input: FlameConfigInput = {}, deps: FlameSDKDeps = {}): Promise<FlameSDK> {
    const config = resolveConfig(input);
    const log = createLogger(config.logLevel, { node: config.nodeId, analysis: config.analysisId }, deps.logSink);
    const [hub, local] = await Promise.all([deps.hub ?? buildStore(config.hub), deps.local ?? buildStore(config.local)]);
    const broker = deps.broker ?? (await buildBroker(config));
    // An observer never receives sealed results, so it needs no lasting key.
    const keys = deps.observer ? generateNodeKeys() : await loadOrCreateKeys(local, config);
    const isAggregator = config.aggregatorId === config.nodeId;
    const results = new ResultService({ hub, local, nodeId: config.nodeId, analysisId: config.analysisId, projectId: config.projectId, isAggregator, aggregatorId: config.aggregatorId });
    const messenger = new Messenger({
      nodeId: config.nodeId,
      projectId: config.projectId,
      analysisId: config.analysisId,
      participants: config.participants,
      broker,
      hub,
      privateKey: keys.privateKey,
      log,
    });
    const sdk = new FlameSDK(config, broker, messenger, results, new DataApi(config.dataSources), log, keys.publicKey);
    if (deps.observer) {
      sdk.observer = true;
      return sdk;
    }
    try {
      if (config.healthPort !== undefined) {
        sdk.health = await startHealthServer(sdk.state, () => ({ node_id: sdk.nodeId, analysis_id: sdk.analysisId, role: sdk.role }), config.healthPort);
      }
      await messenger.start();
      await sdk.announce();
      sdk.heartbeat = setInterval(() => {
        sdk.announce().catch((e) => log.warn('heartbeat failed', { error: e }));
      }, config.heartbeatMs);
      sdk.heartbeat.unref();
    } catch (e) {
      await sdk.close().catch(() => undefined);
      throw e;
    }
    log.info('node connected', { role: sdk.role, participants: config.participants });
    return sdk;
  }

  private announce(closed = false): Promise<void> {
    const info: ParticipantInfo = { nodeId: this.nodeId, role: this.role, publicKey: this.publicKey, lastSeen: new Date().toISOString(), ...(closed ? { closed } : {}) };
    return this.broker.announce(info);
  }

  // ---- role ----

  /** Seed 003's get_role: true when this node is the aggregator and may submit final results. */
  getRole(): boolean {
    return this.role === 'aggregator';
  }

  /** The aggregator's node id. */
  get aggregatorId(): string {
    return this.config.aggregatorId;
  }

  /** The ids of the other nodes of the analysis. */
  get otherNodes(): string[] {
    return this.config.participants.filter((p) => p !== this.nodeId);
  }

  // ---- message broker ----

  /** Every node of the analysis, with whether it has announced itself. */
  async getParticipants(): Promise<Participant[]> {
    const announced = new Map((await this.broker.participants()).map((p) => [p.nodeId, p]));
    return this.config.participants.map((nodeId) => {
      const a = announced.get(nodeId);
      return {
        nodeId,
        role: nodeId === this.config.aggregatorId ? 'aggregator' : 'analyzer',
        announced: a !== undefined,
        ...(a ? { lastSeen: a.lastSeen } : {}),
      };
    });
  }

  private assertParticipant(what: string): void {
    if (this.observer) throw new BadRequestError(`${what}: this FlameSDK is an observer of node "${this.nodeId}" and cannot send or receive messages`);
  }

  /** Send `data` (JSON, bytes, Arrow table or Tensor) to one or more nodes; returns the message ids. */
  async sendMessage(receivers: string | string[], data: FlameValue, opts?: SendOptions): Promise<string[]> {
    this.assertParticipant('sendMessage');
    return this.messenger.send(receivers, data, opts);
  }

  /** Answer `message` with `data` (the sender's sendMessageAndWaitForResponse receives it). */
  async respond(message: FlameMessage, data: FlameValue): Promise<string> {
    this.assertParticipant('respond');
    const [id] = await this.messenger.send(message.sender, data, { category: 'response', replyTo: message.id });
    return id;
  }

  /** Send `data` to `receiver` and wait for its answer (see respond). TimeoutError names the silent node. */
  async sendMessageAndWaitForResponse(receiver: string, data: FlameValue, opts: { timeoutMs?: number; category?: string } = {}): Promise<FlameMessage> {
    this.assertParticipant('sendMessageAndWaitForResponse');
    const [id] = await this.messenger.send(receiver, data, { category: opts.category });
    return this.messenger.await({ from: receiver, replyTo: id }, opts.timeoutMs ?? 30_000);
  }

  /**
   * Wait for the next message from `nodeId` (a node, several, or any when undefined), optionally of one
   * category. Each message is returned by awaitMessage once. TimeoutError names the node(s) waited for.
   */
  async awaitMessage(nodeId?: string | string[], opts: { timeoutMs?: number; category?: string | string[] } = {}): Promise<FlameMessage> {
    this.assertParticipant('awaitMessage');
    const filter: MessageFilter = { from: nodeId, ...(opts.category ? { category: opts.category } : {}) };
    return this.messenger.await(filter, opts.timeoutMs ?? 30_000);
  }

  /** All messages that have arrived so far, oldest first. */
  getMessages(filter?: MessageFilter): FlameMessage[] {
    return this.messenger.messages(filter);
  }

  /**
   * Status of every other node: `online` (answered a ping within `timeoutMs`), `offline` (announced
   * itself once but does not answer now), `not_connected` (never announced).
   */
  async askNodeStatus(opts: { timeoutMs?: number } = {}): Promise<Record<string, NodeStatus>> {
    const timeoutMs = opts.timeoutMs ?? 2000;
    const announced = new Set((await this.broker.participants()).map((p) => p.nodeId));
    const entries = await Promise.all(
      this.config.participants.map(async (id): Promise<[string, NodeStatus]> => {
        if (id === this.nodeId && !this.observer) return [id, 'online'];
        if (await this.broker.ping(id, timeoutMs)) return [id, 'online'];
        return [id, announced.has(id) ? 'offline' : 'not_connected'];
      }),
    );
    return Object.fromEntries(entries);
  }

  /**
   * Send an intermediate result to `receiver`: sealed for that node alone (X25519 + AES-256-GCM), stored
   * in hub storage, referenced by a broker message. The receiver gets it decrypted as the message's data.
   * Returns the result id.
   */
  async sendIntermediateResult(receiver: string, value: FlameValue, opts?: { category?: string; timeoutMs?: number }): Promise<string> {
    this.assertParticipant('sendIntermediateResult');
    return this.messenger.sendIntermediateResult(receiver, value, opts);
  }

  // ---- result service ----

  /** Submit the final result to the hub (aggregator only). Returns the result id. */
  sendResult(value: FlameValue, opts?: { name?: string }): Promise<string> {
    return this.results.sendResult(value, opts);
  }

  /** Stream a large final result to the hub (aggregator only). */
  sendResultStream(stream: Readable, opts?: { name?: string; onProgress?: (bytes: number) => void }): Promise<string> {
    return this.results.sendResultStream(stream, opts);
  }

  /** Save an intermediate result on the hub, for other nodes to fetch by id. */
  saveIntermediateResult(value: FlameValue, opts?: { name?: string }): Promise<string> {
    return this.results.saveIntermediateResult(value, opts);
  }

  /** Save an intermediate result in this node's local storage. */
  saveIntermediateResultLocal(value: FlameValue, opts?: { name?: string }): Promise<string> {
    return this.results.saveIntermediateResultLocal(value, opts);
  }

  /** Every intermediate result of this analysis on the hub (from any node), oldest first. */
  listIntermediateResults(): ReturnType<ResultService['listIntermediateResults']> {
    return this.results.listIntermediateResults();
  }

  /** Every result this node saved locally for the project (any analysis), oldest first. */
  listIntermediateResultsLocal(): ReturnType<ResultService['listIntermediateResultsLocal']> {
    return this.results.listIntermediateResultsLocal();
  }

  /** An intermediate result of this analysis from the hub, decoded; NotFoundError naming the id when absent. */
  getIntermediateResult(id: string): Promise<FlameValue> {
    return this.results.getIntermediateResult(id);
  }

  /** A result this node saved locally, decoded; NotFoundError naming the id when absent. */
  getIntermediateResultLocal(id: string): Promise<FlameValue> {
    return this.results.getIntermediateResultLocal(id);
  }

  // ---- data API ----

  /** The data sources of this project (no secrets). */
  getDataSources(): DataSourceInfo[] {
    return this.data.getDataSources();
  }

  /** A client for data source `id` (FHIR, S3 or local folder). */
  getDataClient(id: string): DataClient {
    return this.data.getDataClient(id);
  }

  // ---- lifecycle ----

  /** Report progress in [0, 1]; values lower than the last one are ignored. */
  setProgress(value: number): void {
    this.state.setProgress(value);
    this.log.debug('progress', { progress: this.state.progress });
  }

  /** Progress reported so far, in [0, 1] (1 once the status is `executed`). */
  get progress(): number {
    return this.state.progress;
  }

  /** The run's current status (as shown on /healthz). */
  get status(): NodeRunStatus {
    return this.state.status;
  }

  /** Mark the run as executing, executed or failed (shown on /healthz). */
  setStatus(status: NodeRunStatus, error?: unknown): void {
    if (!['starting', 'executing', 'executed', 'failed'].includes(status)) throw new BadRequestError(`status: unknown status ${JSON.stringify(status)}`);
    this.state.setStatus(status, error);
    this.log.info('status', { status, ...(error ? { error } : {}) });
  }

  /** Port of the /healthz endpoint, when enabled. */
  get healthPort(): number | undefined {
    return this.health?.port;
  }

  /** Stop heartbeats, mark the node closed, stop consuming, release connections. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.messenger.cancelWaiters(`node "${this.nodeId}" closed`);
    if (!this.observer) await this.announce(true).catch(() => undefined);
    await this.broker.close();
    await this.health?.close();
  }
}

export type { FlameMessage, MessageFilter, NodeStatus, SendOptions };
