/**
 * The two ways a set of SDK nodes can be wired in tests: the embedded default (in-process broker,
 * folders) and production (NATS with JetStream at NATS_URL, hub on a real S3 API server).
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { MemoryBrokerHub } from '../../src/broker/memory.js';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import type { FlameConfigInput } from '../../src/config.js';
import { FsObjectStore } from '../../src/results/fs.js';
import { FlameSDK } from '../../src/sdk.js';
import { localRoster } from '../../src/trust/local-roster.js';
import type { Roster } from '../../src/trust/roster.js';
import { NATS_URL } from '../helpers/nats.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { startFlameNodeDouble } from '../helpers/flame-node-double.js';

export interface Cluster {
  analysisId: string;
  dir: string;
  /** The pinned roster every node of the cluster trusts (their keys are made when the cluster is); none on flame-node (first-use trust). */
  roster?: Roster;
  /** Connect one node of the cluster (extra config merged in). */
  connect(nodeId: string, extra?: FlameConfigInput): Promise<FlameSDK>;
  /** Close every connected node and delete what the cluster created. */
  cleanup(): Promise<void>;
}

export interface Backend {
  name: string;
  /** `participants` are all node ids; the last one is the aggregator. */
  cluster(participants: string[]): Promise<Cluster>;
}

async function baseCluster(participants: string[], config: (dir: string, analysisId: string) => FlameConfigInput, extraCleanup: (analysisId: string) => Promise<void>): Promise<Cluster> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-sdk-test-'));
  const analysisId = `t-${randomUUID().slice(0, 12)}`;
  const sdks: FlameSDK[] = [];
  const localDir = (nodeId: string): string => path.join(dir, 'nodes', nodeId);
  const roster = await localRoster({
    projectId: 'local-project',
    analysisId,
    aggregatorId: participants[participants.length - 1],
    nodes: participants.map((nodeId) => ({ nodeId, local: new FsObjectStore(localDir(nodeId)) })),
  });
  return {
    analysisId,
    dir,
    roster,
    async connect(nodeId, extra = {}) {
      const sdk = await FlameSDK.connect({
        nodeId,
        analysisId,
        participants,
        aggregatorId: participants[participants.length - 1],
        projectId: 'local-project',
        local: { type: 'fs', dir: localDir(nodeId) },
        trust: { mode: 'roster', roster },
        logLevel: 'silent',
        heartbeatMs: 200,
        ...config(dir, analysisId),
        ...extra,
      });
      sdks.push(sdk);
      return sdk;
    },
    async cleanup() {
      await Promise.all(sdks.map((s) => s.close()));
      await extraCleanup(analysisId);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export const embedded: Backend = {
  name: 'embedded (memory broker + folders)',
  async cluster(participants) {
    const hub = new MemoryBrokerHub();
    return baseCluster(participants, (dir) => ({ broker: { type: 'memory', hub }, hub: { type: 'fs', dir: path.join(dir, 'hub') } }), async () => undefined);
  },
};

let s3: S3TestServer | undefined;

/**
 * The flame-node profile on the FLAME node services double: node ids and roles come from the double's
 * message broker, results go to its storage service, each node runs its pod server on a free port.
 * First-use trust (the profile's keys are announced through the broker), state in the cluster folder.
 */
export const flameNode: Backend = {
  name: 'flame-node (FLAME node services double)',
  async cluster(participants) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-sdk-fn-'));
    const analysisId = `fn-${randomUUID().slice(0, 12)}`;
    const aggregatorId = participants[participants.length - 1];
    const double = await startFlameNodeDouble({
      analysisId,
      projectId: 'fn-project',
      nodes: participants.map((nodeId) => ({ nodeId, nodeType: nodeId === aggregatorId ? ('aggregator' as const) : ('default' as const) })),
    });
    const sdks: FlameSDK[] = [];
    return {
      analysisId,
      dir,
      async connect(nodeId, extra = {}) {
        const port = await freePort();
        const sdk = await FlameSDK.connect({
          analysisId,
          projectId: 'fn-project',
          broker: { type: 'flame-node', nginxUrl: double.nginxUrl(nodeId), analysisUrl: `http://127.0.0.1:${port}`, port, keycloakToken: double.token(nodeId) },
          trust: { mode: 'tofu' },
          stateDir: path.join(dir, 'state', nodeId),
          logLevel: 'silent',
          heartbeatMs: 200,
          ...extra,
        });
        sdks.push(sdk);
        return sdk;
      },
      async cleanup() {
        await Promise.all(sdks.map((s) => s.close()));
        await double.close();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  },
};

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Production wiring; call `stopSharedS3()` in afterAll. */
export const production: Backend = {
  name: 'production (NATS JetStream + S3 API)',
  async cluster(participants) {
    s3 ??= await startS3Server(['flame-hub']);
    const server = s3;
    return baseCluster(
      participants,
      () => ({
        broker: { type: 'nats', servers: [NATS_URL] },
        hub: { type: 's3', endpoint: server.endpoint, region: server.region, bucket: 'flame-hub', accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, forcePathStyle: true },
      }),
      (analysisId) => NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId }),
    );
  },
};

export async function stopSharedS3(): Promise<void> {
  await s3?.close();
  s3 = undefined;
}
