/**
 * flame-sdk/testing's createLocalFederation, used as an analysis author would: a two-node analysis
 * through runStar on the in-process broker and on NATS (a private server and the run's shared one),
 * and cleanup() leaves neither a folder nor the analysis' streams behind.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { federatedMean, parseColumn, SOURCE_ID, FILE } from '../../analyses/federated-mean/index.js';
import { analysisNames } from '../../src/broker/nats/names.js';
import { runStar, type StarAnalysis } from '../../src/index.js';
import { createLocalFederation, startNatsServer, type LocalFederationBroker, type NatsServerHandle } from '../../src/testing/index.js';
import { NATS_URL } from '../helpers/nats.js';

const DATA = path.resolve('data/example');
const ANALYZERS = ['node-a', 'node-b'];

let privateNats: NatsServerHandle;
beforeAll(async () => {
  privateNats = await startNatsServer();
});
afterAll(async () => {
  await privateNats.stop();
});

async function pooled(): Promise<{ count: number; mean: number }> {
  const all: number[] = [];
  for (const id of ANALYZERS) all.push(...parseColumn(await fs.readFile(path.join(DATA, id, FILE), 'utf8'), id));
  return { count: all.length, mean: all.reduce((x, y) => x + y, 0) / all.length };
}

const brokers: [string, () => LocalFederationBroker][] = [
  ['the in-process broker', () => 'memory'],
  ['a private NATS server', () => ({ natsUrl: privateNats.url })],
  ['the shared NATS server', () => ({ natsUrl: NATS_URL })],
];

describe.each(brokers)('on %s', (_name, broker) => {
  test('two nodes run the federated mean with runStar and get the pooled mean; cleanup() deletes the folder', async () => {
    const fed = await createLocalFederation({
      nodes: [...ANALYZERS.map((id) => ({ id, dataSources: [{ id: SOURCE_ID, type: 'folder' as const, path: path.join(DATA, id) }] })), 'agg'],
      aggregatorId: 'agg',
      broker: broker(),
    });
    try {
      expect(fed.sdks.map((s) => s.nodeId)).toEqual(['node-a', 'node-b', 'agg']);
      expect(fed.aggregator.role).toBe('aggregator');
      expect(fed.node('node-a').role).toBe('analyzer');
      expect(fed.roster.nodes.map((n) => n.node_id).sort()).toEqual(['agg', 'node-a', 'node-b']);
      const outcomes = await Promise.all(fed.sdks.map((sdk) => runStar(sdk, federatedMean)));
      const expected = await pooled();
      const result = outcomes[2].result;
      expect(result.count).toBe(expected.count);
      expect(result.mean).toBeCloseTo(expected.mean, 10);
      expect(result.perNode).toEqual({ 'node-a': 120, 'node-b': 80 });
      // Each node's keys were made in its own local folder.
      for (const id of ['node-a', 'node-b', 'agg']) expect((await fs.readdir(path.join(fed.dir, 'nodes', id))).length).toBeGreaterThan(0);
    } finally {
      await fed.cleanup();
    }
    await expect(fs.stat(fed.dir)).rejects.toMatchObject({ code: 'ENOENT' });
    await fed.cleanup(); // twice is fine
  });
});

test('a two-node federation: one analyzer and the aggregator, by default the last node', async () => {
  const sum: StarAnalysis<{ n: number }, { total: number }> = {
    analyze: ({ sdk }) => ({ n: sdk.nodeId.length }),
    aggregate: (results) => ({ total: results.reduce((s, r) => s + r.value.n, 0) }),
  };
  const fed = await createLocalFederation({ nodes: ['clinic', 'hub'], config: { disclosure: { minCount: 1 } } });
  try {
    expect(fed.aggregator.nodeId).toBe('hub');
    const [clinic, hub] = await Promise.all(fed.sdks.map((sdk) => runStar(sdk, sum)));
    // The aggregator only aggregates: the total is the analyzer's alone.
    expect(hub.result).toEqual({ total: 'clinic'.length });
    expect(clinic.rounds).toBe(1);
  } finally {
    await fed.cleanup();
  }
});

test('cleanup() on NATS deletes the analysis streams; a folder the caller gave is kept', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-testing-kept-'));
  const fed = await createLocalFederation({ nodes: ['x', 'agg'], broker: { natsUrl: privateNats.url }, dir });
  const nc = await connect({ servers: privateNats.url });
  try {
    const jsm = await nc.jetstreamManager();
    const { stream, kvStream } = analysisNames(fed.analysisId);
    const names = async (): Promise<string[]> => (await jsm.streams.names().next()).filter((n) => n === stream || n === kvStream);
    expect((await names()).sort()).toEqual([stream, kvStream].sort());
    await fed.cleanup();
    expect(await names()).toEqual([]);
    expect(await fs.readdir(dir)).toEqual(expect.arrayContaining(['nodes', 'roster.json']));
  } finally {
    await nc.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('bad options are named before anything is made', async () => {
  await expect(createLocalFederation({ nodes: [] })).rejects.toThrow(/at least one node/);
  await expect(createLocalFederation({ nodes: ['a', 'a'] })).rejects.toThrow(/node ids must be unique, got a, a/);
  await expect(createLocalFederation({ nodes: ['a', 'b'], aggregatorId: 'c' })).rejects.toThrow(/aggregatorId "c" is not one of the nodes \(a, b\)/);
  await expect(createLocalFederation({ nodes: ['a'], broker: { natsUrl: '' } })).rejects.toThrow(/broker must be 'memory' or \{ natsUrl \}/);
});

test('a federation that cannot connect closes what it made and deletes its folder', async () => {
  const before = new Set((await fs.readdir(os.tmpdir())).filter((f) => f.startsWith('flame-federation-')));
  const dead = privateNats.url;
  await privateNats.kill();
  try {
    await expect(createLocalFederation({ nodes: ['x', 'agg'], broker: { natsUrl: dead } })).rejects.toThrow();
  } finally {
    await privateNats.restart();
  }
  const after = (await fs.readdir(os.tmpdir())).filter((f) => f.startsWith('flame-federation-') && !before.has(f));
  expect(after).toEqual([]);
});
