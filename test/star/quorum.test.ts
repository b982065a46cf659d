/**
 * Quorum and liveness of a star run: the ready check names who is missing; a round the analysis
 * tolerates closes without a node that never started, went silent or missed the straggler deadline
 * (that node is told it is excluded and its late result is discarded); a round it does not tolerate
 * fails within 3 heartbeats of the loss, naming the node.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryBrokerHub } from '../../src/broker/memory.js';
import { ExcludedError, TimeoutError } from '../../src/errors.js';
import { FlameSDK } from '../../src/sdk.js';
import type { StarAnalysis } from '../../src/star/analysis.js';
import { runStar } from '../../src/star/runner.js';
import { makeFederation } from '../helpers/federation.js';

const HEARTBEAT = 200;

async function federation(nodes: string[]) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-quorum-'));
  const hub = new MemoryBrokerHub();
  const analysisId = `quorum-${path.basename(dir)}`;
  const { trust } = await makeFederation({ dir, analysisId, nodes, aggregatorId: 'agg', localDir: (n) => path.join(dir, n) });
  const sdks: FlameSDK[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const connect = async (nodeId: string): Promise<FlameSDK> => {
    const sdk = await FlameSDK.connect(
      { nodeId, analysisId, participants: nodes, aggregatorId: 'agg', broker: { type: 'memory', hub }, hub: { type: 'fs', dir: path.join(dir, 'hub') }, local: { type: 'fs', dir: path.join(dir, nodeId) }, trust, logLevel: 'info', heartbeatMs: HEARTBEAT },
      { logSink: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) },
    );
    sdks.push(sdk);
    return sdk;
  };
  const cleanup = async () => {
    await Promise.all(sdks.map((s) => s.close().catch(() => undefined)));
    await fs.rm(dir, { recursive: true, force: true });
  };
  return { connect, cleanup, logs };
}

const sum = (delay: (node: string, round: number) => number = () => 0, rounds = 3): StarAnalysis<{ v: number }, { total: number; rounds: number }> => ({
  async analyze({ sdk, round }) {
    await new Promise((r) => setTimeout(r, delay(sdk.nodeId, round)));
    return { v: sdk.nodeId.charCodeAt(0) };
  },
  aggregate: (results, { previous }) => ({ total: (previous?.total ?? 0) + results.reduce((t, r) => t + r.value.v, 0), rounds: (previous?.rounds ?? 0) + 1 }),
  converged: (c) => c.rounds === rounds,
  tolerates: () => true,
});

test('waitForParticipants names who is missing and resolves once enough are online', async () => {
  const f = await federation(['x', 'y', 'agg']);
  try {
    const agg = await f.connect('agg');
    await expect(agg.waitForParticipants({ timeoutMs: 700 })).rejects.toThrow(/0 of 2 nodes online .* missing "x", "y"/);
    expect(f.logs.some((l) => l.msg === 'waiting for nodes' && JSON.stringify(l.missing) === '["x","y"]')).toBe(true);
    const waiting = agg.waitForParticipants({ min: 2, timeoutMs: 10_000 });
    await f.connect('x');
    await new Promise((r) => setTimeout(r, 300));
    await f.connect('y');
    expect(await waiting).toEqual({ x: true, y: true });
    expect(await agg.waitForParticipants({ nodes: ['x'], timeoutMs: 1000 })).toEqual({ x: true });
  } finally {
    await f.cleanup();
  }
});

test('3 of 4: a node that never starts is left out, named, and the run finishes within the straggler deadline plus one round', async () => {
  const f = await federation(['x', 'y', 'z', 'agg']);
  try {
    const [x, y, agg] = await Promise.all(['x', 'y', 'agg'].map((n) => f.connect(n)));
    const t0 = Date.now();
    const opts = { stragglerMs: 4000, timeoutMs: 30_000, minNodes: 2 };
    const [ox, , oagg] = await Promise.all([runStar(x, sum(), opts), runStar(y, sum(), opts), runStar(agg, sum(), opts)]);
    const ms = Date.now() - t0;
    console.log(`3 of 4 with one node never started: finished in ${ms} ms (straggler deadline 4000 ms, loss after ${3 * HEARTBEAT} ms)`);
    expect(ms).toBeLessThan(4000 + 5000);
    expect(oagg.excluded).toEqual([{ nodeId: 'z', round: 0, reason: 'lost' }]);
    expect(oagg.contributors).toEqual(['x', 'y']);
    expect(oagg.result).toEqual({ total: 3 * ('x'.charCodeAt(0) + 'y'.charCodeAt(0)), rounds: 3 });
    expect(ox.result).toEqual(oagg.result);
    expect(f.logs.some((l) => l.msg === 'going on without nodes' && JSON.stringify(l.nodes) === '["z"]' && /never started/.test(String(l.why)))).toBe(true);
  } finally {
    await f.cleanup();
  }
}, 60_000);

test('a straggler past the deadline is left out, told so, and its late result is discarded', async () => {
  const f = await federation(['x', 'y', 'agg']);
  try {
    const [x, y, agg] = await Promise.all(['x', 'y', 'agg'].map((n) => f.connect(n)));
    const opts = { stragglerMs: 2500, timeoutMs: 30_000, minNodes: 1 };
    // y is late in round 1 (5 s); x takes 1.2 s in rounds 2 to 4, so y's late answer arrives while they are collected.
    const slow = sum((node, round) => (node === 'y' && round === 1 ? 5000 : node === 'x' && round >= 2 ? 1200 : 0), 5);
    const [ox, oy, oagg] = await Promise.allSettled([runStar(x, slow, opts), runStar(y, slow, opts), runStar(agg, slow, opts)]);
    expect(oagg.status === 'fulfilled' && oagg.value.excluded).toEqual([{ nodeId: 'y', round: 1, reason: 'straggler' }]);
    expect(oagg.status === 'fulfilled' && oagg.value.result).toEqual({ total: 5 * 'x'.charCodeAt(0) + 'y'.charCodeAt(0), rounds: 5 });
    expect(ox.status).toBe('fulfilled');
    // y learns it was left out: its run ends with the excluded error (flame run: exit code 7).
    expect(oy.status === 'rejected' && oy.reason).toBeInstanceOf(ExcludedError);
    expect(String(oy.status === 'rejected' && oy.reason)).toMatch(/went on without this node: left out of the analysis in round 1/);
    expect(f.logs.some((l) => l.msg === 'discarded a message of a node left out of the run' && l.sender === 'y')).toBe(true);
  } finally {
    await f.cleanup();
  }
}, 60_000);

test('a run that does not tolerate a loss fails within 3 heartbeats of it, naming the node', async () => {
  const f = await federation(['x', 'y', 'agg']);
  try {
    const [x, y, agg] = await Promise.all(['x', 'y', 'agg'].map((n) => f.connect(n)));
    let lostAt = 0;
    const strict: StarAnalysis<{ v: number }, { total: number; rounds: number }> = {
      ...sum(),
      tolerates: undefined,
      async analyze({ sdk, round }) {
        if (sdk.nodeId === 'y' && round === 1) {
          // y dies silently: its heartbeats stop and it never answers.
          clearInterval((sdk as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
          lostAt = Date.now();
          await new Promise(() => undefined);
        }
        return { v: 1 };
      },
    };
    void runStar(x, strict, { timeoutMs: 60_000 }).catch(() => undefined);
    void runStar(y, strict, { timeoutMs: 60_000 }).catch(() => undefined);
    const err = await runStar(agg, strict, { timeoutMs: 60_000 }).then(() => undefined, (e: Error) => e);
    const ms = Date.now() - lostAt;
    console.log(`loss detected ${ms} ms after the last heartbeat (heartbeats every ${HEARTBEAT} ms: ${(ms / HEARTBEAT).toFixed(1)} intervals)`);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err?.message).toMatch(/round 1: "y" stopped answering \("y" silent for \d+ ms; heartbeats every 200 ms\); the analysis does not tolerate a missing node/);
    // 3 heartbeats of silence, plus the aggregator's polling (one heartbeat) and a loaded machine's slack.
    expect(ms).toBeLessThan(3 * HEARTBEAT + 3000);
  } finally {
    await f.cleanup();
  }
}, 60_000);

test("this process' own freeze is not held against the others: a stall longer than the loss window loses nobody", async () => {
  const f = await federation(['x', 'agg']);
  try {
    const [x, agg] = await Promise.all([f.connect('x'), f.connect('agg')]);
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT));
    expect((await agg.peerLiveness()).x.online).toBe(true);
    // Synchronous work holds the loop (in a simulation: every node's heartbeats with it) for 5 heartbeats.
    const until = Date.now() + 5 * HEARTBEAT;
    while (Date.now() < until);
    const after = (await agg.peerLiveness()).x;
    expect(after.silentMs).toBeGreaterThan(3 * HEARTBEAT);
    expect(after.online).toBe(true);
    // A node that really stops is still lost after the window.
    clearInterval((x as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
    await new Promise((r) => setTimeout(r, 5 * HEARTBEAT));
    expect((await agg.peerLiveness()).x.online).toBe(false);
  } finally {
    await f.cleanup();
  }
});
