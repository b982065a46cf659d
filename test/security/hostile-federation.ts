/**
 * The stage of the hostile-node tests: a private nats-server with the per-node logins that
 * `natsAuthorizationConfig` generates (analyzers a and b, aggregator c, and an operator's admin login),
 * a real S3 API as the hub, every node's identity in its own local folder and the roster of their keys.
 * Node b is the attacker: it has a valid login and its own credentials, and uses them for anything the
 * broker and the storage let it do.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { analysisNames, natsAuthorizationConfig } from '../../src/broker/nats/index.js';
import type { FlameConfigInput } from '../../src/config.js';
import { FsObjectStore } from '../../src/results/fs.js';
import { FlameSDK } from '../../src/sdk.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../src/trust/identity.js';
import { MessageAuthenticator } from '../../src/trust/message-auth.js';
import { makeFederation, type TestFederation } from '../helpers/federation.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

/** The nodes: a and b analyze, c aggregates. */
export const NODES = ['a', 'b', 'c'] as const;
export type NodeName = (typeof NODES)[number];

/** A running stage; see the module comment. */
export interface Stage {
  analysisId: string;
  dir: string;
  nats: TestNatsServer;
  s3: S3TestServer;
  bucket: string;
  federation: TestFederation;
  passwords: Record<NodeName | 'admin', string>;
  names: ReturnType<typeof analysisNames>;
  /** Config of node `n` (its own NATS login, the hub, its local folder, the roster). */
  config(n: NodeName, extra?: FlameConfigInput): FlameConfigInput;
  /** Connects node `n` as FlameSDK (closed by stop()). */
  connect(n: NodeName, extra?: FlameConfigInput): Promise<FlameSDK>;
  /** A raw NATS connection with node `n`'s login (or the admin's), for attacks below the SDK. */
  raw(n: NodeName | 'admin'): Promise<NatsConnection>;
  /** Node `n`'s identity (private keys included: what the attacker holds of itself). */
  identity(n: NodeName): Promise<NodeIdentity>;
  /** A tagger with node `n`'s keys, as a hostile node would use to craft its own valid messages. */
  tagger(n: NodeName): Promise<MessageAuthenticator>;
  stop(): Promise<void>;
}

/** Starts the stage. `aggregatorProvisions: false` leaves the streams to the test. */
export async function startStage(): Promise<Stage> {
  const analysisId = `sec-${randomUUID().slice(0, 8)}`;
  const passwords = { a: randomBytes(12).toString('hex'), b: randomBytes(12).toString('hex'), c: randomBytes(12).toString('hex'), admin: randomBytes(12).toString('hex') };
  const nats = await startNatsServer({
    config: natsAuthorizationConfig({
      analysisId,
      aggregatorId: 'c',
      nodes: NODES.map((nodeId) => ({ nodeId, password: passwords[nodeId] })),
      admin: { user: 'admin', password: passwords.admin },
    }),
  });
  const bucket = 'hub';
  const s3 = await startS3Server([bucket]);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-sec-'));
  const localDir = (n: string): string => path.join(dir, 'nodes', n);
  const federation = await makeFederation({ dir, analysisId, nodes: [...NODES], aggregatorId: 'c', localDir });
  const sdks: FlameSDK[] = [];
  const raws: NatsConnection[] = [];
  const names = analysisNames(analysisId);
  const config = (n: NodeName, extra: FlameConfigInput = {}): FlameConfigInput => ({
    nodeId: n,
    analysisId,
    participants: [...NODES],
    aggregatorId: 'c',
    broker: { type: 'nats', servers: [nats.url], user: n, pass: passwords[n] },
    hub: { type: 's3', endpoint: s3.endpoint, region: s3.region, bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true },
    local: { type: 'fs', dir: localDir(n) },
    trust: federation.trust,
    logLevel: 'silent',
    heartbeatMs: 500,
    ...extra,
  });
  const identity = (n: NodeName) => loadOrCreateIdentity({ local: new FsObjectStore(localDir(n)), projectId: 'local-project', analysisId, nodeId: n });
  return {
    analysisId,
    dir,
    nats,
    s3,
    bucket,
    federation,
    passwords,
    names,
    config,
    async connect(n, extra) {
      const sdk = await FlameSDK.connect(config(n, extra));
      sdks.push(sdk);
      return sdk;
    },
    async raw(n) {
      const nc = await connect({ servers: nats.url, user: n, pass: passwords[n], inboxPrefix: n === 'admin' ? undefined : names.replyPrefix(n) });
      raws.push(nc);
      return nc;
    },
    identity,
    async tagger(n) {
      return new MessageAuthenticator(analysisId, await identity(n), { keysOf: (x) => federation.roster.nodes.find((r) => r.node_id === x)?.keys });
    },
    async stop() {
      await Promise.all(sdks.map((s) => s.close().catch(() => undefined)));
      await Promise.all(raws.map((r) => r.close().catch(() => undefined)));
      await nats.stop();
      await s3.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a stage before the file's tests (`all`) or before each test (`each`) and stops it after;
 * returns it (a stand-in that forwards to the running stage).
 */
export function useStage(scope: 'all' | 'each' = 'all'): Stage {
  let current: Stage | undefined;
  (scope === 'all' ? beforeAll : beforeEach)(async () => {
    current = await startStage();
  });
  (scope === 'all' ? afterAll : afterEach)(async () => {
    await current?.stop();
    current = undefined;
  });
  return new Proxy({} as Stage, {
    get: (_t, prop) => {
      if (!current) throw new Error('the stage is not running (useStage runs it around the tests)');
      return current[prop as keyof Stage];
    },
  });
}

/** Polls `cond` until true or `timeoutMs` passes (then fails, saying what was awaited). */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
