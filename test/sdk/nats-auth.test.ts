/**
 * FlameSDK with per-node NATS credentials on a nats-server that enforces the generated permissions:
 * the whole SDK (messages, sealed intermediate results, status, star rounds) works for each node with
 * its own login, and a node cannot pose as another one.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { natsAuthorizationConfig } from '../../src/broker/nats/index.js';
import type { FlameConfigInput } from '../../src/config.js';
import { UnauthorizedError } from '../../src/errors.js';
import { FlameSDK } from '../../src/sdk.js';
import { runStar } from '../../src/star/runner.js';
import { makeFederation, type TestFederation } from '../helpers/federation.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.js';

const analysisId = 'auth-sdk';
const pw = { a: randomBytes(12).toString('hex'), agg: randomBytes(12).toString('hex') };
let server: TestNatsServer;
let dir: string;
let federation: TestFederation;

beforeAll(async () => {
  server = await startNatsServer({
    config: natsAuthorizationConfig({ analysisId, aggregatorId: 'agg', nodes: [{ nodeId: 'a', password: pw.a }, { nodeId: 'agg', password: pw.agg }] }),
  });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-auth-'));
  federation = await makeFederation({ dir, analysisId, nodes: ['a', 'agg'], aggregatorId: 'agg', localDir: (n) => path.join(dir, n) });
});
afterAll(async () => {
  await server.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

function config(nodeId: string, user: string, pass: string): FlameConfigInput {
  return {
    trust: federation.trust,
    nodeId,
    analysisId,
    participants: ['a', 'agg'],
    aggregatorId: 'agg',
    broker: { type: 'nats', servers: [server.url], user, pass },
    hub: { type: 'fs', dir: path.join(dir, 'hub') },
    local: { type: 'fs', dir: path.join(dir, nodeId) },
    logLevel: 'silent',
  };
}

test('each node works with its own login; posing as another node is refused', async () => {
  const [agg, a] = await Promise.all([FlameSDK.connect(config('agg', 'agg', pw.agg)), FlameSDK.connect(config('a', 'a', pw.a))]);
  try {
    await a.sendMessage('agg', { hi: 1 });
    expect((await agg.awaitMessage('a', { timeoutMs: 5000 })).data).toEqual({ hi: 1 });
    expect(await agg.askNodeStatus({ timeoutMs: 1000 })).toEqual({ a: 'online', agg: 'online' });
    const outcome = await Promise.all([
      runStar(a, { analyze: () => 20, aggregate: (r) => r[0].value + 1 }),
      runStar(agg, { analyze: () => 20, aggregate: (r) => r[0].value + 1 }),
    ]);
    expect(outcome[1].result).toBe(21);
    // Node a's login cannot consume the aggregator's inbox.
    const posing = await FlameSDK.connect(config('agg', 'a', pw.a)).then(() => undefined, (e: Error) => e);
    expect(posing).toBeInstanceOf(UnauthorizedError);
    expect(posing?.message).toMatch(/agg/);
  } finally {
    await Promise.all([a.close(), agg.close()]);
  }
}, 60_000);
