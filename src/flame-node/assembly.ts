/**
 * Builds the `flame-node` profile's adapters from its config: one token and one pod server shared by
 * all of them, the broker adapter (which tells who this node is and who takes part), the stores on
 * the storage service, the Kong data sources and the log stream to the orchestrator. The
 * orchestrator's routes answer for a starting pod from the moment the server listens; the SDK mounts
 * the run's own on the same server when it starts.
 */
import { BadRequestError } from '../errors.js';
import type { FlameNodeBrokerConfig } from '../config.js';
import type { DataClient, DataSourceInfo } from '../data/port.js';
import type { ObjectInfo, ObjectStore, PutOptions } from '../results/port.js';
import { Readable, PassThrough } from 'node:stream';
import { AnalysisServer } from './analysis-server.js';
import { mountLifecycle } from './lifecycle.js';
import { FlameNodeBrokerAdapter, type FlameNodeSelf } from './broker.js';
import type { SharedObject } from './envelope.js';
import { readBounded } from './http.js';
import { assertSafeKey } from '../results/keys.js';
import { normaliseMetadata } from '../results/metadata.js';
import { FlameNodeDataApi } from './kong-data.js';
import { FlameLocalObjectStore } from './local-object-store.js';
import { OrchestratorLogStream } from './orchestrator-logs.js';
import { FlameStorageClient } from './storage.js';
import { TokenHolder } from './token.js';

/**
 * Largest message body the profile sends through the broker, in bytes. The node has no storage that
 * other nodes can list, so bodies go inline (as fragments) instead of through hub storage.
 */
export const FLAME_NODE_MAX_PAYLOAD = 64 * 1024 * 1024;

/** The profile's connected adapters. */
export interface FlameNodeParts {
  /** The shared Keycloak token. */
  token: TokenHolder;
  /** The pod's HTTP server (webhook and the orchestrator's routes). */
  server: AnalysisServer;
  /** The broker adapter. */
  broker: FlameNodeBrokerAdapter;
  /** This node as the broker names it. */
  self: FlameNodeSelf;
  /** Every node of the analysis as the broker lists them. */
  nodes: FlameNodeSelf[];
  /** The storage service's client. */
  storage: FlameStorageClient;
  /** Hub-side store: this node's copies of what it shared; final results also go to the hub's final results. */
  hub: ObjectStore;
  /** Node-local store on the storage service. */
  local: ObjectStore;
  /** The project's Kong data sources, as data clients. */
  dataClients: Array<{ info: DataSourceInfo; client: DataClient }>;
  /** Log lines to the orchestrator (its `sink` goes to the logger). */
  logs: OrchestratorLogStream;
  /** Set by the SDK once it has a run state: what the log stream reports with each line. */
  runState: { current: () => { status: string; progress: number } };
}

/**
 * Transfer objects (what the messenger parks for one recipient: large bodies, intermediate results,
 * sealed by the messenger) go to the storage service's intermediate results, which every node of the
 * analysis can read by id; the broker adapter tells the recipient the id before the message that
 * refers to it is sent. Everything else goes to `inner`.
 */
class TransfersStore implements ObjectStore {
  private readonly own = new Map<string, SharedObject>();

  constructor(
    private readonly inner: ObjectStore,
    private readonly storage: FlameStorageClient,
    private readonly broker: FlameNodeBrokerAdapter,
  ) {}

  async put(key: string, body: Uint8Array | Readable, options: PutOptions = {}): Promise<ObjectInfo> {
    const recipient = options.metadata?.recipient;
    if (!key.includes('/transfers/') || !recipient) return this.inner.put(key, body, options);
    assertSafeKey(key);
    const metadata = normaliseMetadata(options.metadata, key);
    let size = 0;
    const stored = await this.storage.putIntermediate(body, { filename: 'transfer.bin', onProgress: (n) => ((size = n), options.onProgress?.(n)) });
    const object: SharedObject = { key, objectId: stored.objectId, size, lastModified: new Date().toISOString(), metadata };
    this.own.set(key, object);
    await this.broker.shareObject(recipient, object);
    return { key, size, lastModified: object.lastModified, metadata: { ...metadata } };
  }

  private located(key: string): SharedObject | undefined {
    return this.own.get(key) ?? this.broker.sharedObject(key);
  }

  async getBytes(key: string): Promise<Uint8Array> {
    const o = this.located(key);
    if (!o) return this.inner.getBytes(key);
    return new Uint8Array(await readBounded(await this.storage.getIntermediate(o.objectId), Math.max(1, o.size), `transfer ${key}`));
  }

  async getStream(key: string): Promise<Readable> {
    const o = this.located(key);
    return o ? this.storage.getIntermediate(o.objectId) : this.inner.getStream(key);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const o = this.located(key);
    return o ? { key, size: o.size, lastModified: o.lastModified, metadata: { ...o.metadata } } : this.inner.head(key);
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    if (this.own.delete(key)) return;
    await this.inner.delete(key);
  }
}

/** Connects the profile: learns self and participants from the broker, lists the data sources. */
export async function connectFlameNode(cfg: FlameNodeBrokerConfig, analysisId: string, projectId: string): Promise<FlameNodeParts> {
  const token = new TokenHolder(cfg.keycloakToken);
  const server = new AnalysisServer({ port: cfg.port });
  // The server listens as soon as the broker subscribes, long before the SDK mounts the run's own
  // lifecycle: until then the orchestrator must see a starting pod (a 404 counts as failed) and be
  // able to refresh the token.
  mountLifecycle({ server, token, status: () => 'starting' });
  const broker = new FlameNodeBrokerAdapter({
    brokerUrl: `${cfg.nginxUrl}/message-broker`,
    analysisId,
    token,
    server,
    webhookUrl: `${cfg.analysisUrl}/webhook`,
    maxPayload: FLAME_NODE_MAX_PAYLOAD,
  });
  try {
    const self = await broker.self();
    const nodes = await broker.brokerParticipants();
    if (nodes.filter((n) => n.nodeType === 'aggregator').length !== 1) {
      throw new BadRequestError(`flame-node: the message broker lists ${nodes.filter((n) => n.nodeType === 'aggregator').length} aggregators for analysis ${analysisId}; expected 1`);
    }
    const storage = new FlameStorageClient({ storageUrl: `${cfg.nginxUrl}/storage`, token });
    const local = new FlameLocalObjectStore(storage, analysisId, 'local');
    const hub = new TransfersStore(new FinalResultsStore(new FlameLocalObjectStore(storage, analysisId, 'hub'), storage), storage, broker);
    const dataClients: FlameNodeParts['dataClients'] = [];
    if (cfg.dataSourceToken) {
      const data = new FlameNodeDataApi({ nginxUrl: cfg.nginxUrl, projectId, token, dataSourceToken: cfg.dataSourceToken });
      for (const s of await data.sources()) {
        const type = s.type ?? 'fhir';
        dataClients.push({ info: { id: s.name, type, location: `kong:${s.name}/${type}` }, client: type === 'fhir' ? data.fhir(s.name) : data.files(s.name) });
      }
    }
    const runState: FlameNodeParts['runState'] = { current: () => ({ status: 'executing', progress: 0 }) };
    const logs = new OrchestratorLogStream({ poUrl: `${cfg.nginxUrl}/po`, analysisId, token, state: () => runState.current() });
    return { token, server, broker, self, nodes, storage, hub, local, dataClients, logs, runState };
  } catch (e) {
    await broker.close().catch(() => undefined);
    await server.close();
    throw e;
  }
}

/**
 * The hub store of the profile: objects are kept (for this node to read back) on its storage, and a
 * final result (`…/final/…` keys, written by the aggregator) is also submitted to the hub's final
 * results for the analyst, streamed to both at once.
 */
class FinalResultsStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly storage: FlameStorageClient,
  ) {}

  async put(key: string, body: Uint8Array | Readable, options?: PutOptions): Promise<ObjectInfo> {
    if (!/(^|\/)final\//.test(key)) return this.inner.put(key, body, options);
    const filename = key.split('/').pop()!.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200) || 'result.bin';
    if (!(body instanceof Readable)) {
      const info = await this.inner.put(key, body, options);
      await this.storage.putFinal(body, { filename, contentType: options?.metadata?.['content-type'] });
      return info;
    }
    const a = new PassThrough();
    const b = new PassThrough();
    // Both uploads read at the pace of the slower one: the source pauses until both drained.
    body.on('data', (c) => {
      const okA = a.write(c);
      const okB = b.write(c);
      if (okA && okB) return;
      body.pause();
      let waiting = (okA ? 0 : 1) + (okB ? 0 : 1);
      const go = (): void => {
        if (--waiting === 0) body.resume();
      };
      if (!okA) a.once('drain', go);
      if (!okB) b.once('drain', go);
    });
    body.on('end', () => {
      a.end();
      b.end();
    });
    body.on('error', (e) => {
      a.destroy(e);
      b.destroy(e);
    });
    const [info] = await Promise.all([this.inner.put(key, a, options), this.storage.putFinal(b, { filename })]);
    return info;
  }

  getBytes(key: string): Promise<Uint8Array> {
    return this.inner.getBytes(key);
  }

  getStream(key: string): Promise<Readable> {
    return this.inner.getStream(key);
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.head(key);
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.inner.list(prefix);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
}
