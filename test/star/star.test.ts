/** The star runner and simulator: equality with the pooled computation, timeouts and failures named. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { federatedMean, parseColumn, SOURCE_ID } from '../../analyses/federated-mean/index.js';
import { MemoryBrokerHub } from '../../src/broker/memory.js';
import { makeFederation } from '../helpers/federation.js';
import { FsObjectStore } from '../../src/results/fs.js';
import { FlameSDK } from '../../src/sdk.js';
import type { StarAnalysis } from '../../src/star/analysis.js';
import { runStar } from '../../src/star/runner.js';
import { simulate } from '../../src/star/simulator.js';

const DATA = path.resolve('data/example');
const NODES = ['node-a', 'node-b', 'node-c'];

function nodes() {
  return NODES.map((id) => ({ id, dataSources: [{ id: SOURCE_ID, type: 'folder' as const, path: path.join(DATA, id) }] }));
}

test('the federated mean and std equal the pooled ones, and the aggregator stores the result', async () => {
  const { outcome, dir } = await simulate(federatedMean, { nodes: nodes() });
  const all: number[] = [];
  for (const id of NODES) all.push(...parseColumn(await fs.readFile(path.join(DATA, id, 'ages.csv'), 'utf8'), id));
  const mean = all.reduce((x, y) => x + y, 0) / all.length;
  const std = Math.sqrt(all.reduce((x, v) => x + (v - mean) ** 2, 0) / all.length);
  expect(outcome.rounds).toBe(2);
  expect(outcome.result.count).toBe(all.length);
  expect(outcome.result.mean).toBeCloseTo(mean, 10);
  expect(outcome.result.std).toBeCloseTo(std, 10);
  expect(outcome.result.perNode).toEqual({ 'node-a': 120, 'node-b': 80, 'node-c': 150 });
  // The final result is on the (filesystem) hub, listed under the aggregator's name.
  const hub = new FsObjectStore(path.join(dir, 'hub'));
  const finals = (await hub.list('')).filter((o) => o.key.includes('/final/'));
  expect(finals).toHaveLength(1);
  await fs.rm(dir, { recursive: true, force: true });
});

test('rounds repeat until converged, with the previous aggregate sent back', async () => {
  const seen: number[] = [];
  const counter: StarAnalysis<{ v: number }, { total: number }> = {
    analyze: ({ round, global }) => {
      if (round > 0) seen.push(global!.total);
      return { v: 1 };
    },
    aggregate: (results, { previous }) => ({ total: (previous?.total ?? 0) + results.reduce((s, r) => s + r.value.v, 0) }),
    converged: (current) => current.total >= 9,
  };
  const { outcome } = await simulate(counter, { nodes: [{ id: 'x' }, { id: 'y' }, { id: 'z' }] });
  expect(outcome.result.total).toBe(9);
  expect(outcome.rounds).toBe(3);
  expect(seen.sort((p, q) => p - q)).toEqual([3, 3, 3, 6, 6, 6]);
});

/** Connect memory-broker nodes by hand, so each node's own outcome can be inspected. */
async function connectNodes(ids: string[], participants: string[]) {
  const hub = new MemoryBrokerHub();
  const dir = await fs.mkdtemp('/tmp/flame-star-');
  const aggregatorId = participants[participants.length - 1];
  const { trust } = await makeFederation({ dir, analysisId: 'star-test', nodes: participants, aggregatorId, localDir: (n) => `${dir}/${n}` });
  const base = { analysisId: 'star-test', participants, aggregatorId, broker: { type: 'memory' as const, hub }, logLevel: 'silent' as const, trust };
  const sdks = await Promise.all(ids.map((nodeId) => FlameSDK.connect({ ...base, nodeId, hub: { type: 'fs', dir: `${dir}/hub` }, local: { type: 'fs', dir: `${dir}/${nodeId}` } })));
  const cleanup = async () => {
    await Promise.all(sdks.map((s) => s.close()));
    await fs.rm(dir, { recursive: true, force: true });
  };
  return { sdks, cleanup };
}

test('an analyzer that throws is named by the aggregator', async () => {
  const failing: StarAnalysis<{ v: number }, { v: number }> = {
    analyze: ({ sdk }) => {
      if (sdk.nodeId === 'y') throw new Error('cannot read images.csv');
      return { v: 1 };
    },
    aggregate: (r) => ({ v: r.length }),
  };
  const { sdks, cleanup } = await connectNodes(['x', 'y', 'agg'], ['x', 'y', 'agg']);
  const [x, y, agg] = sdks;
  const runs = [runStar(x, failing, { timeoutMs: 500 }), runStar(y, failing), runStar(agg, failing)].map((p) => p.then(() => 'ok', (e: Error) => e.message));
  const [, yOut, aggOut] = await Promise.all(runs);
  expect(yOut).toBe('cannot read images.csv');
  expect(aggOut).toBe('node "y" failed in round 0: cannot read images.csv');
  expect([y.status, agg.status]).toEqual(['failed', 'failed']);
  await cleanup();
});

test('a node that never answers is named in the aggregator timeout', async () => {
  const { sdks, cleanup } = await connectNodes(['x', 'agg'], ['x', 'ghost', 'agg']);
  const [x, agg] = sdks;
  const analysis: StarAnalysis<number, number> = { analyze: () => 1, aggregate: (r) => r.length };
  const xRun = runStar(x, analysis, { timeoutMs: 1500 }).catch((e: Error) => e);
  await expect(runStar(agg, analysis, { timeoutMs: 400 })).rejects.toThrow(/round 0: no local result from "ghost" within 400 ms/);
  expect(agg.status).toBe('failed');
  // The analyzer is told at once why the run stopped, instead of timing out itself.
  expect(String(await xRun)).toMatch(/aggregator "agg" stopped the analysis: round 0: no local result from "ghost"/);
  await cleanup();
});

test('a single node is analyzer and aggregator at once', async () => {
  const { sdks, cleanup } = await connectNodes(['solo'], ['solo']);
  const rounds: number[] = [];
  const analysis: StarAnalysis<{ n: number }, { total: number }> = {
    analyze: ({ round, sdk }) => {
      rounds.push(round);
      return { n: sdk.nodeId.length };
    },
    aggregate: (results, { previous }) => ({ total: (previous?.total ?? 0) + results[0].value.n }),
    converged: (_c, _p, round) => round >= 1,
  };
  const outcome = await runStar(sdks[0], analysis);
  await cleanup();
  expect(outcome).toMatchObject({ rounds: 2, result: { total: 8 } });
  expect(rounds).toEqual([0, 1]);
  expect(typeof outcome.resultId).toBe('string');
});

test('an analysis that does not converge within its own round cap fails instead of submitting', async () => {
  const { sdks, cleanup } = await connectNodes(['x', 'agg'], ['x', 'agg']);
  const endless: StarAnalysis<number, number> = { analyze: () => 1, aggregate: (r, { previous }) => (previous ?? 0) + r[0].value, converged: () => false, maxRounds: 3 };
  const [xOut, aggOut] = await Promise.all(sdks.map((s) => runStar(s, endless).then(() => 'ok', (e: Error) => e.message)));
  expect(aggOut).toBe('analysis did not converge within 3 rounds (raise maxRounds / --max-rounds)');
  expect(xOut).toMatch(/aggregator "agg" stopped the analysis: analysis did not converge within 3 rounds/);
  expect(await sdks[1].results.listResults()).toEqual([]);
  await cleanup();
});

test("the runner takes only its own messages: an analysis' messages to the aggregator stay for it", async () => {
  const { sdks, cleanup } = await connectNodes(['x', 'agg'], ['x', 'agg']);
  const chatty: StarAnalysis<number, string> = {
    async analyze({ sdk }) {
      await sdk.sendMessage(sdk.aggregatorId, { note: 'side channel' }, { category: 'analysis.note' });
      return 1;
    },
    // The aggregator reads the note the analyzer sent before its local result.
    async aggregate(_results, { sdk }) {
      const note = await sdk.awaitMessage('x', { category: 'analysis.note', timeoutMs: 2000 });
      return (note.data as { note: string }).note;
    },
  };
  const [, aggOut] = await Promise.all(sdks.map((s) => runStar(s, chatty)));
  expect(aggOut.result).toBe('side channel');
  await cleanup();
});

test('a simulation in which a node fails rejects with its error only once every node has stopped', async () => {
  const failing: StarAnalysis<{ v: number }, { v: number }> = {
    analyze: ({ sdk }) => {
      if (sdk.nodeId === 'y') throw new Error('cannot read images.csv');
      return { v: 1 };
    },
    aggregate: (r) => ({ v: r.length }),
  };
  const sdks: FlameSDK[] = [];
  const err = await simulate(failing, { nodes: [{ id: 'x' }, { id: 'y' }, { id: 'agg' }], logLevel: 'silent', timeoutMs: 30_000, onConnect: (s) => sdks.push(s) }).catch((e: Error) => e);
  expect(String(err)).toMatch(/cannot read images\.csv/);
  // Nobody is still running (and writing into the run's folders) when the caller gets the error.
  expect(sdks.map((s) => s.status).every((st) => st === 'failed' || st === 'executed')).toBe(true);
  // A closed node's wait ends at once instead of at its timeout.
  const t = Date.now();
  await expect(sdks[0].awaitMessage(undefined, { timeoutMs: 20_000 })).rejects.toThrow(/is closed/);
  expect(Date.now() - t).toBeLessThan(1000);
});

test('an analyzer whose first round arrived before it started the run answers it once', async () => {
  const { memoryFederation } = await import('../helpers/memory-federation.js');
  const f = await memoryFederation(['x', 'agg'], 'early-round-');
  try {
    const [x, agg] = await Promise.all([f.connect('x'), f.connect('agg')]);
    const sum: StarAnalysis<{ v: number }, { total: number }> = {
      analyze: () => ({ v: 7 }),
      aggregate: (results) => ({ total: results.reduce((t, r) => t + r.value.v, 0) }),
    };
    const aggregated = runStar(agg, sum, { timeoutMs: 20_000 });
    // The round waits in x's inbox, not yet taken, when x begins.
    const t0 = Date.now();
    while (x.getMessages({ from: 'agg' }).length === 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
    const [ox, oagg] = await Promise.all([runStar(x, sum, { timeoutMs: 20_000 }), aggregated]);
    expect([ox.result, oagg.result]).toEqual([{ total: 7 }, { total: 7 }]);
    expect(agg.getMessages({ from: 'x' })).toHaveLength(1);
  } finally {
    await f.cleanup();
  }
});
