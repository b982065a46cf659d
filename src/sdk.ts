/**
 * FlameSDK: the one object an analysis talks to. It builds the broker, storage and data adapters from
 * configuration (embedded defaults when nothing is configured; the assembly is `node-assembly.ts`),
 * starts and announces the node, and exposes
 * seed 003's message broker client, result service and data API in TypeScript naming.
 */
import type { Readable } from 'node:stream';
import type { BrokerAdapter, ParticipantInfo } from './broker/port.js';
import { publicKeySet, type NodeIdentity, type PublicKeySet } from './trust/identity.js';
import type { PeerTrust } from './trust/peers.js';
import type { FinalResultInfo, FinalResultOptions, GetResultOptions, LocalResultInfo, LocalResultOptions, ResultService, TagOption } from './results/service.js';
import type { FlameValue } from './codec/index.js';
import { DataApi } from './data/index.js';
import type { DataClient, DataSourceInfo } from './data/port.js';
import type { FlameConfig, FlameConfigInput, Role } from './config.js';
import type { Logger } from './logger.js';
import { RunState, startHealthServer, type HealthServer, type NodeRunStatus } from './health.js';
import type { AcknowledgedSend, AwaitedMessages, ClearOptions, FlameMessage, MessageFilter, MessageStats, MessageStatus, Messenger, NodeStatus, SendOptions } from './messenger/index.js';
import { BadRequestError } from './errors.js';
import { freezeWatch, livenessOf, waitForNodes, type PeerLiveness, type ReadyCheckOptions } from './liveness.js';
import { assembleNode, type FlameSDKDeps } from './node-assembly.js';
import type { FlameNodeParts } from './flame-node/assembly.js';
import { mountLifecycle, orchestratorStatus } from './flame-node/lifecycle.js';
import { participantsOf, statusOfNodes, type Participant } from './participants.js';
import { FINISHED, type FinishStatus } from './star/protocol.js';
import { applyLocalDp, type LocalDpOptions } from './star/noise.js';

export { defaultMemoryBrokerHub, type FlameSDKDeps } from './node-assembly.js';
export type { Participant } from './participants.js';

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

  private readonly state: RunState;
  private heartbeat?: NodeJS.Timeout;
  /** Whether this node holds a share of the process' freeze watch (released on close). */
  private watchingFreezes = false;
  private health?: HealthServer;
  /** The flame-node profile's adapters (pod server, token, log stream), when that profile runs. */
  private flameNode?: FlameNodeParts;
  private closed = false;
  private observer = false;

  private constructor(
    config: FlameConfig,
    private readonly broker: BrokerAdapter,
    private readonly messenger: Messenger,
    results: ResultService,
    data: DataApi,
    log: Logger,
    private readonly identity: NodeIdentity,
    private readonly trust: PeerTrust | undefined,
  ) {
    this.config = config;
    this.state = new RunState(config.stuckAfterMs);
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
    // eslint-disable-next-line prefer-const -- assigned below; the messenger's activity hook reads it late
    let sdk: FlameSDK | undefined;
    const { config, log, broker, identity, trust, results, messenger, flameNode } = await assembleNode(input, deps, () => sdk?.state.touch());
    sdk = new FlameSDK(config, broker, messenger, results, new DataApi(config.dataSources, {}, flameNode?.dataClients ?? []), log, identity, trust);
    sdk.flameNode = flameNode;
    if (deps.observer) {
      sdk.observer = true;
      return sdk;
    }
    try {
      if (flameNode) {
        // On a FLAME node the orchestrator polls the pod's own server, in its schema.
        const state = sdk.state;
        flameNode.runState.current = () => ({ status: orchestratorStatus(state.status), progress: state.progress * 100 });
        mountLifecycle({ server: flameNode.server, token: flameNode.token, status: () => state.status, logger: log, onPartnerStatus: (s) => log.debug('partner status', { partners: s }) });
      } else if (config.healthPort !== undefined) {
        sdk.health = await startHealthServer(sdk.state, () => ({ node_id: sdk.nodeId, analysis_id: sdk.analysisId, role: sdk.role }), config.healthPort);
      }
      await messenger.start();
      await sdk.announce();
      sdk.heartbeat = setInterval(() => {
        sdk.announce().catch((e) => log.warn('heartbeat failed', { error: e }));
      }, config.heartbeatMs);
      sdk.heartbeat.unref();
      freezeWatch.start();
      sdk.watchingFreezes = true;
    } catch (e) {
      await sdk.close().catch(() => undefined);
      throw e;
    }
    log.info('node connected', { role: sdk.role, participants: config.participants });
    return sdk;
  }

  private announce(closed = false): Promise<void> {
    const info: ParticipantInfo = { nodeId: this.nodeId, role: this.role, keys: publicKeySet(this.identity.keys[0]), lastSeen: new Date().toISOString(), ...(closed ? { closed } : {}) };
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

  /** This node's public keys (the key set it sends with). */
  get publicKeys(): PublicKeySet {
    return publicKeySet(this.identity.keys[0]);
  }

  /** Counts of received, duplicate, refused, quarantined and held-back messages since this node started. */
  messageStats(): MessageStats {
    return structuredClone(this.messenger.stats);
  }

  /** The ids of the other nodes of the analysis. */
  get otherNodes(): string[] {
    return this.config.participants.filter((p) => p !== this.nodeId);
  }

  // ---- message broker ----

  /** Every node of the analysis, with whether it has announced itself. */
  async getParticipants(): Promise<Participant[]> {
    return participantsOf(this.broker, this.config.participants, this.config.aggregatorId);
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

  /**
   * Wait for the next message of each of `senders` at once (python-sdk's `await_messages`), up to
   * `timeoutMs` (default 30 s) for all: returns each sender's message, the senders that sent nothing in
   * time (`missing`, never a throw) and those whose message could not be read (`unreadable`).
   */
  async awaitMessages(senders: string[], opts: { timeoutMs?: number; category?: string | string[] } = {}): Promise<AwaitedMessages> {
    this.assertParticipant('awaitMessages');
    return this.messenger.awaitEach(senders, opts.category ? { category: opts.category } : {}, opts.timeoutMs ?? 30_000);
  }

  /**
   * Send `data` to every one of `receivers` and wait up to `timeoutMs` (default 30 s) for their receipts:
   * a receiver is acknowledged once its SDK has the message in its durable inbox (the receipt is an
   * authenticated message its messenger sends). The others are listed as not acknowledged; this does
   * not throw for them.
   */
  async sendMessageAcknowledged(receivers: string[], data: FlameValue, opts: { category?: string; timeoutMs?: number } = {}): Promise<AcknowledgedSend> {
    this.assertParticipant('sendMessageAcknowledged');
    return this.messenger.sendAcknowledged(receivers, data, opts);
  }

  /** All messages that have arrived so far, oldest first; `filter.status` selects read (awaited) or unread ones. */
  getMessages(filter?: MessageFilter): FlameMessage[] {
    return this.messenger.messages(filter);
  }

  /** Delete messages by id from this node's inbox, durably (they do not come back after a restart); returns how many were removed. */
  deleteMessages(ids: string[]): number {
    this.assertParticipant('deleteMessages');
    return this.messenger.deleteMessages(ids);
  }

  /** Delete every message of `status` (both when absent) that arrived at least `minAgeMs` ago, durably; returns how many. */
  clearMessages(opts: ClearOptions = {}): number {
    this.assertParticipant('clearMessages');
    return this.messenger.clearMessages(opts);
  }

  /**
   * Liveness of every other node from its heartbeats: online while its last heartbeat is younger than
   * `lossAfterMs` (default 3 heartbeat intervals) and it has not closed.
   */
  async peerLiveness(opts: { lossAfterMs?: number } = {}): Promise<Record<string, PeerLiveness>> {
    return livenessOf(this.otherNodes, await this.broker.participants(), opts.lossAfterMs ?? 3 * this.config.heartbeatMs);
  }

  /**
   * FLAME's ready check: waits until at least `min` of `nodes` (default every other node, all of them)
   * are online, logging who is still missing; resolves with each node's state, rejects with a
   * TimeoutError naming the missing ones after `timeoutMs` (default 60 s).
   */
  async waitForParticipants(opts: ReadyCheckOptions = {}): Promise<Record<string, boolean>> {
    const nodes = opts.nodes ?? this.otherNodes;
    nodes.forEach((n) => {
      if (!this.config.participants.includes(n)) throw new BadRequestError(`waitForParticipants: "${n}" is not a participant`);
    });
    return waitForNodes(() => this.broker.participants(), nodes, {
      min: opts.min ?? nodes.length,
      timeoutMs: opts.timeoutMs ?? 60_000,
      intervalMs: opts.intervalMs ?? this.config.heartbeatMs,
      lossAfterMs: 3 * this.config.heartbeatMs,
      log: this.log,
    });
  }

  /**
   * FLAME's `analysis_finished`: tells `to` (default every other node) that the analysis is over for
   * them — `finished`, `failed` or `excluded` — with an optional reason and what each receives of the
   * result. The star runner sends it at the end of a run; a node's `runStar` returns or throws on it.
   */
  async analysisFinished(opts: { status?: FinishStatus; reason?: string; to?: string[]; resultFor?: (nodeId: string) => FlameValue; resultId?: string; rounds?: number } = {}): Promise<void> {
    this.assertParticipant('analysisFinished');
    const to = opts.to ?? this.otherNodes;
    for (const n of to) {
      const msg = {
        status: opts.status ?? 'finished',
        ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
        ...(opts.resultFor ? { result: opts.resultFor(n) } : {}),
        ...(opts.resultId !== undefined ? { result_id: opts.resultId } : {}),
        ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}),
      };
      // A result goes sealed (it may be the node's own records); a bare status inline.
      if (opts.resultFor) await this.messenger.sendIntermediateResult(n, msg, { category: FINISHED });
      else await this.messenger.send(n, msg, { category: FINISHED });
    }
  }

  /**
   * Status of every other node: `online` (answered a ping within `timeoutMs`), `offline` (announced
   * itself once but does not answer now), `not_connected` (never announced).
   */
  async askNodeStatus(opts: { timeoutMs?: number } = {}): Promise<Record<string, NodeStatus>> {
    return statusOfNodes(this.broker, this.config.participants, this.observer ? undefined : this.nodeId, opts.timeoutMs ?? 2000);
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

  /**
   * Submit a final result to the hub (aggregator only); several may be sent, each under its `name`.
   * `outputType` is checked against the value; `localDp` adds Laplace(0, sensitivity/epsilon) noise to
   * every number first (numeric values only: anything else, or bad parameters, is refused with a
   * BadRequestError). Returns the result id.
   */
  async sendResult(value: FlameValue, opts: FinalResultOptions & { localDp?: LocalDpOptions } = {}): Promise<string> {
    const { localDp, ...rest } = opts;
    if (localDp !== undefined) value = applyLocalDp(value, localDp, 'sendResult').value;
    return this.results.sendResult(value, rest);
  }

  /** Every final result of this analysis, oldest first, with name, output type and whether it verifies. */
  listResults(): Promise<FinalResultInfo[]> {
    return this.results.listResults();
  }

  /** A final result by id, verified (see ResultService.getResult). */
  getResult(id: string, opts?: GetResultOptions): Promise<FlameValue> {
    return this.results.getResult(id, opts);
  }

  /** The final result last sent under `name`, verified; NotFoundError naming it when there is none. */
  getResultByName(name: string, opts?: GetResultOptions): Promise<FlameValue> {
    return this.results.getResultByName(name, opts);
  }

  /** Stream a large final result to the hub (aggregator only). */
  sendResultStream(stream: Readable, opts?: { name?: string; onProgress?: (bytes: number) => void }): Promise<string> {
    return this.results.sendResultStream(stream, opts);
  }

  /** Save an intermediate result on the hub, for other nodes to fetch by id. */
  saveIntermediateResult(value: FlameValue, opts?: { name?: string }): Promise<string> {
    return this.results.saveIntermediateResult(value, opts);
  }

  /** Save an intermediate result in this node's local storage, grouped under `opts.tag` when given. */
  saveIntermediateResultLocal(value: FlameValue, opts?: LocalResultOptions): Promise<string> {
    return this.results.saveIntermediateResultLocal(value, opts);
  }

  /** The tags of this node's local results (python-sdk's `get_local_tags`), only those containing `filter` when given. */
  getLocalTags(filter?: string): Promise<string[]> {
    return this.results.getLocalTags(filter);
  }

  /** This node's local results under `tag`, in save order. */
  listLocalResultsByTag(tag: string): Promise<LocalResultInfo[]> {
    return this.results.listLocalByTag(tag);
  }

  /**
   * Local results under `tag`, decoded (python-sdk's `get_intermediate_data(location='local', tag, tag_option)`):
   * all (oldest first), or the first or last saved. NotFoundError naming the tag when there is none.
   */
  getLocalResultsByTag(tag: string, option: 'first' | 'last'): Promise<FlameValue>;
  getLocalResultsByTag(tag: string, option?: 'all'): Promise<FlameValue[]>;
  getLocalResultsByTag(tag: string, option: TagOption = 'all'): Promise<FlameValue | FlameValue[]> {
    return this.results.getLocalByTag(tag, option);
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
    if (!['starting', 'executing', 'executed', 'failed', 'stuck'].includes(status)) throw new BadRequestError(`status: unknown status ${JSON.stringify(status)}`);
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
    if (this.watchingFreezes) freezeWatch.stop();
    this.messenger.cancelWaiters(`node "${this.nodeId}" closed`);
    if (!this.observer) await this.announce(true).catch(() => undefined);
    await this.broker.close();
    this.messenger.close();
    await this.health?.close();
    if (this.flameNode) {
      await this.flameNode.logs.flush();
      await this.flameNode.server.close();
    }
  }
}

export type { AcknowledgedSend, AwaitedMessages, ClearOptions, FlameMessage, MessageFilter, MessageStats, MessageStatus, NodeStatus, SendOptions };
export type { LocalDpOptions } from './star/noise.js';
