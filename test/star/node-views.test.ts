/**
 * The runner's per-node views (`globalFor`, `finalFor`) and the node policy it carries: the noise
 * scale any node asks for, applied by the aggregator to the final result and recorded in it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { federatedMean, parseColumn, SOURCE_ID } from '../../analyses/federated-mean/index.js';
import { MemoryBrokerHub } from '../../src/broker/memory.js';
import { FlameSDK } from '../../src/sdk.js';
import { completionNotice, type StarAnalysis } from '../../src/star/analysis.js';
import { runStar, STAR_LOCAL, STAR_ROUND } from '../../src/star/runner.js';
import { simulate } from '../../src/star/simulator.js';
import { makeFederation } from '../helpers/federation.js';

const DATA = path.resolve('data/example');
const NODES = ['node-a', 'node-b', 'node-c'];

function meanNodes() {
  return NODES.map((id) => ({ id, dataSources: [{ id: SOURCE_ID, type: 'folder' as const, path: path.join(DATA, id) }] }));
}

/** Each node's records keyed by node: the aggregate holds everyone's, each node should see its own. */
type Ledger = { round: number; byNode: Record<string, number[]> };

const ledger: StarAnalysis<{ own: number[] }, Ledger, { mine: number[] }> = {
  analyze: ({ sdk, round }) => ({ own: [round, sdk.nodeId.length] }),
  aggregate: (results, { round, previous }) => ({
    round,
    byNode: Object.fromEntries(results.map((r) => [r.nodeId, [...(previous?.byNode[r.nodeId] ?? []), ...r.value.own]])),
  }),
  converged: (_c, _p, round) => round >= 2,
  globalFor: (g, nodeId) => ({ round: g.round, byNode: { [nodeId]: g.byNode[nodeId] } }),
  finalFor: (g, nodeId) => ({ mine: g.byNode[nodeId] }),
};

test('each analyzer receives only its own part of every round and of the final result', async () => {
  const seen = new Map<string, Ledger[]>();
  const watched: typeof ledger = {
    ...ledger,
    analyze: (ctx) => {
      if (ctx.global) seen.set(ctx.sdk.nodeId, [...(seen.get(ctx.sdk.nodeId) ?? []), ctx.global]);
      return ledger.analyze(ctx);
    },
  };
  const { outcome, outcomes } = await simulate(watched, { nodes: [{ id: 'x' }, { id: 'yy' }, { id: 'zzz' }] });
  // The aggregator keeps (and submits) everyone's records.
  expect(outcome.result).toEqual({ round: 2, byNode: { x: [0, 1, 1, 1, 2, 1], yy: [0, 2, 1, 2, 2, 2], zzz: [0, 3, 1, 3, 2, 3] } });
  for (const id of ['x', 'yy', 'zzz']) {
    const rounds = seen.get(id)!;
    expect(rounds).toHaveLength(2);
    for (const g of rounds) expect(Object.keys(g.byNode)).toEqual([id]);
    expect(outcomes[id].result).toEqual({ mine: (outcome.result as Ledger).byNode[id] });
  }
});

test('completionNotice sends analyzers only that the run finished and where its result is', async () => {
  const { outcome, outcomes } = await simulate({ ...ledger, finalFor: completionNotice }, { nodes: [{ id: 'x' }, { id: 'y' }] });
  for (const id of ['x', 'y']) expect(outcomes[id].result).toEqual({ done: true, result_id: outcome.resultId, rounds: 3 });
});

test('without views every analyzer gets the whole aggregate, as before', async () => {
  const { outcome, outcomes } = await simulate(federatedMean, { nodes: meanNodes(), disclosure: { minCount: 1 } });
  for (const id of NODES) expect(outcomes[id].result).toEqual(outcome.result);
  expect(outcome.result.disclosure).toBeUndefined();
  expect(outcome.noise).toBeUndefined();
});

test('an analyzer whose policy asks for noise gets it: Laplace noise of its scale on mean and std, recorded; counts exact', async () => {
  const all: number[] = [];
  for (const id of NODES) all.push(...parseColumn(await fs.readFile(path.join(DATA, id, 'ages.csv'), 'utf8'), id));
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const std = Math.sqrt(all.reduce((a, v) => a + (v - mean) ** 2, 0) / all.length);
  const scale = 2;
  const deviations: number[] = [];
  const runs = 25;
  for (let k = 0; k < runs; k++) {
    const nodes = meanNodes().map((n) => (n.id === 'node-b' ? { ...n, disclosure: { noiseScale: scale } } : n));
    const { outcome, outcomes } = await simulate(federatedMean, { nodes, logLevel: 'error' });
    const r = outcome.result;
    expect({ count: r.count, perNode: r.perNode }).toEqual({ count: 350, perNode: { 'node-a': 120, 'node-b': 80, 'node-c': 150 } });
    expect(outcome.noise).toEqual({ mechanism: 'laplace', scale, values: 2, fields: ['mean', 'std'], requested_by: ['node-b'] });
    expect(r.disclosure).toMatchObject({ min_count: { 'node-a': 3, 'node-b': 3, 'node-c': 3 }, suppressed_total: 0, noise: outcome.noise });
    // The analyzers get the noised values too, never the exact ones.
    for (const id of NODES) expect(outcomes[id].result).toEqual(r);
    deviations.push(r.mean - mean, r.std! - std);
  }
  const meanAbs = deviations.reduce((a, d) => a + Math.abs(d), 0) / deviations.length;
  process.stdout.write(`federated mean with noise scale ${scale}: mean |noise| ${meanAbs.toFixed(3)} over ${deviations.length} values (expected ${scale})\n`);
  expect(deviations.every((d) => d !== 0)).toBe(true);
  // Mean |x| of Laplace(0, b) is b; over 50 draws its sd is b/7: bounds at about -4 and +7 sd.
  expect(meanAbs).toBeGreaterThan(0.4 * scale);
  expect(meanAbs).toBeLessThan(2 * scale);
}, 60_000);

test('a node holding fewer values than its minimum refuses to share, and the run fails naming it and the policy', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-small-'));
  await fs.writeFile(path.join(dir, 'ages.csv'), 'age\n41\n57\n');
  const nodes = [...meanNodes().slice(0, 2), { id: 'small', dataSources: [{ id: SOURCE_ID, type: 'folder' as const, path: dir }] }];
  // simulate rejects with the first node's error: the refusing node's own (the aggregator's names it too).
  await expect(simulate(federatedMean, { nodes, logLevel: 'silent' })).rejects.toThrow(
    'federated mean on node "small" (ages.csv): 2 records, fewer than this node\'s minimum count 3 (disclosure policy: config.disclosure.minCount / FLAME_MIN_COUNT): the node shares nothing',
  );
  // With the policy off the same node takes part.
  const { outcome } = await simulate(federatedMean, { nodes, disclosure: { minCount: 1 }, logLevel: 'silent' });
  expect(outcome.result.perNode.small).toBe(2);
  await fs.rm(dir, { recursive: true, force: true });
});

test('a malformed disclosure policy sent with a local result stops the run, naming the node', async () => {
  const hub = new MemoryBrokerHub();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-policy-'));
  const { trust } = await makeFederation({ dir, analysisId: 'policy-test', nodes: ['x', 'agg'], aggregatorId: 'agg', localDir: (n) => `${dir}/${n}` });
  const base = { analysisId: 'policy-test', participants: ['x', 'agg'], aggregatorId: 'agg', broker: { type: 'memory' as const }, logLevel: 'silent' as const, trust };
  const [x, agg] = await Promise.all(
    ['x', 'agg'].map((nodeId) => FlameSDK.connect({ ...base, broker: { type: 'memory', hub }, nodeId, hub: { type: 'fs', dir: `${dir}/hub` }, local: { type: 'fs', dir: `${dir}/${nodeId}` } })),
  );
  const analysis: StarAnalysis<number, number> = { analyze: () => 1, aggregate: (r) => r.length };
  const run = runStar(agg, analysis, { timeoutMs: 5000 });
  // A hand-written analyzer: answers round 0 with a policy no SDK would send.
  await x.awaitMessage('agg', { category: STAR_ROUND, timeoutMs: 5000 });
  await x.sendIntermediateResult('agg', { round: 0, value: 1, disclosure: { minCount: 0, noiseScale: -1 } }, { category: STAR_LOCAL });
  await expect(run).rejects.toThrow('node "x" sent a malformed disclosure policy with its local result (expected {minCount >= 1, noiseScale? > 0})');
  await Promise.all([x.close(), agg.close()]);
  await fs.rm(dir, { recursive: true, force: true });
});
