/**
 * Chaos: federated runs over real node processes (two analyzers and an aggregator, `flame run` of the
 * compiled package) on a private nats-server and a real S3 API. In every run one node, chosen with a
 * seeded generator (the aggregator included), is killed with SIGKILL at a random moment and started
 * again after a random pause; every run must end with the result of the undisturbed run, on every node.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { makeFederation } from '../helpers/federation.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { ensureBuilt, killHard, outcomeOf, startNode, type NodeProcess } from './node-process.js';
import { SeededRandom } from '../../src/ml/random.js';

jest.setTimeout(600_000);

const SEED = Number(process.env.FLAME_CHAOS_SEED ?? 20261201);
const RUNS = Number(process.env.FLAME_CHAOS_RUNS ?? 20);
const NODES = ['a', 'b', 'agg'] as const;
const MODULE = 'test/chaos/fixtures/rounds.mjs';
const ARGS = ['--timeout-ms', '90000', '--loss-after-ms', '90000'];

let nats: TestNatsServer;
let s3: S3TestServer;
let dir: string;

beforeAll(async () => {
  ensureBuilt();
  nats = await startNatsServer({ jetstream: true });
  s3 = await startS3Server(['chaos-hub']);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-chaos-'));
}, 240_000);
afterAll(async () => {
  await nats?.stop();
  await s3?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Uniform numbers in [0, 1) from a seed (the SDK's mulberry32). */
function prng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

interface RunReport {
  result: unknown;
  results: Record<string, unknown>;
  killed?: string;
  restarts: number;
  duplicates: number;
  received: number;
  resumed: string[];
}

/** Resolves once the aggregator has closed its first round (its checkpoint exists): the run is under way. */
async function underWay(checkpoint: string, procs: Iterable<NodeProcess>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fs.stat(checkpoint).then(() => true, () => false)) return;
    // A node that ended before the first round closed: say why at once, not after the timeout.
    for (const p of procs) {
      if (p.child.exitCode !== null && p.child.exitCode !== 0) throw new Error(`node ${p.name} exited with ${p.child.exitCode} before the run got under way:\n${p.stderr.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the run did not get under way within ${timeoutMs} ms (no ${checkpoint}); node output:\n${[...procs].map((p) => `${p.name}: ${p.stderr.slice(-1000)}`).join('\n')}`);
}

/**
 * One federated run; `chaos` says whom to kill (`afterMs` after the first round closed, so the kill
 * lands anywhere in the run, the first round too when it is 0) and how long to wait before starting it again.
 */
async function federatedRun(run: number, chaos?: { victim: (typeof NODES)[number]; afterMs: number; pauseMs: number }): Promise<RunReport> {
  const analysisId = `chaos-${run}`;
  const runDir = path.join(dir, analysisId);
  await fs.mkdir(runDir, { recursive: true });
  const localDir = (n: string): string => path.join(runDir, n);
  const fed = await makeFederation({ dir: runDir, analysisId, nodes: [...NODES], aggregatorId: 'agg', localDir });
  const env = (n: string): Record<string, string> => ({
    FLAME_NODE_ID: n,
    FLAME_ANALYSIS_ID: analysisId,
    FLAME_PARTICIPANTS: NODES.join(','),
    FLAME_AGGREGATOR_ID: 'agg',
    FLAME_NATS_URL: nats.url,
    FLAME_HUB_S3_ENDPOINT: s3.endpoint,
    FLAME_HUB_S3_BUCKET: 'chaos-hub',
    FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    FLAME_LOCAL_DIR: localDir(n),
    FLAME_HEARTBEAT_MS: '500',
    FLAME_LOG_LEVEL: 'warn',
    ...fed.env,
  });
  const procs = new Map<string, NodeProcess>(NODES.map((n) => [n, startNode(n, MODULE, ARGS, env(n))]));
  const ended: NodeProcess[] = [];
  let restarts = 0;
  let killed: string | undefined;
  if (chaos) {
    await underWay(path.join(localDir('agg'), 'objects', 'star', 'local-project', analysisId, 'agg.checkpoint'), procs.values());
    await new Promise((r) => setTimeout(r, chaos.afterMs));
    const victim = procs.get(chaos.victim)!;
    if (victim.child.exitCode === null) {
      await killHard(victim);
      killed = chaos.victim;
      ended.push(victim);
      await new Promise((r) => setTimeout(r, chaos.pauseMs));
      procs.set(chaos.victim, startNode(chaos.victim, MODULE, ARGS, env(chaos.victim)));
      restarts++;
    }
  }
  const codes = await Promise.all([...procs.values()].map((p) => p.exited));
  const finals = [...procs.values()];
  finals.forEach((p, i) => {
    if (codes[i] !== 0) throw new Error(`run ${run}: node ${p.name} exited with ${codes[i]}${killed ? ` (${killed} was killed)` : ''}:\n${p.stderr.slice(-3000)}`);
  });
  const outcomes = Object.fromEntries(finals.map((p) => [p.name, outcomeOf(p)]));
  const stats = finals.map((p) => (outcomes[p.name]?.message_stats ?? {}) as { duplicates?: number; received?: number });
  return {
    result: outcomes.agg?.result,
    results: Object.fromEntries(finals.map((p) => [p.name, outcomes[p.name]?.result])),
    killed,
    restarts,
    duplicates: stats.reduce((t, s) => t + (s.duplicates ?? 0), 0),
    received: stats.reduce((t, s) => t + (s.received ?? 0), 0),
    resumed: finals.filter((p) => outcomes[p.name]?.resumed).map((p) => p.name),
  };
}

test(`${RUNS} runs, each with one node killed (SIGKILL) and restarted at a random moment, all end with the undisturbed result`, async () => {
  const baseline = await federatedRun(0);
  expect(baseline.result).toBeDefined();
  for (const n of NODES) expect(baseline.results[n]).toEqual(baseline.result);
  const rnd = prng(SEED);
  const tally = { kills: 0, restarts: 0, duplicatesDropped: 0, messages: 0, resumed: 0, byVictim: {} as Record<string, number> };
  const t0 = Date.now();
  for (let run = 1; run <= RUNS; run++) {
    const victim = NODES[Math.floor(rnd() * NODES.length)];
    // the rounds take ~0.3 s each: anywhere from the first round's end to past the last
    const afterMs = Math.floor(rnd() * 3200);
    const pauseMs = 100 + Math.floor(rnd() * 1500);
    const r = await federatedRun(run, { victim, afterMs, pauseMs });
    expect({ run, victim, afterMs, result: r.result }).toEqual({ run, victim, afterMs, result: baseline.result });
    for (const n of NODES) expect({ run, node: n, result: r.results[n] }).toEqual({ run, node: n, result: baseline.result });
    if (r.killed) {
      tally.kills++;
      tally.byVictim[victim] = (tally.byVictim[victim] ?? 0) + 1;
    }
    process.stdout.write(`run ${run}: killed ${r.killed ?? '(nobody: finished first)'} after ${afterMs} ms, restarted after ${pauseMs} ms; resumed: ${r.resumed.join(', ') || '-'}\n`);
    tally.restarts += r.restarts;
    tally.duplicatesDropped += r.duplicates;
    tally.messages += r.received;
    tally.resumed += r.resumed.length;
  }
  console.log(
    `chaos, seed ${SEED}: ${RUNS} runs in ${((Date.now() - t0) / 1000).toFixed(0)} s, every one with the undisturbed result; ` +
      `${tally.kills} kills (${JSON.stringify(tally.byVictim)}), ${tally.restarts} restarts, ${tally.resumed} nodes resumed from a checkpoint, ` +
      `${tally.messages} messages received by the final processes, ${tally.duplicatesDropped} redelivered duplicates dropped`,
  );
  expect(tally.kills).toBeGreaterThanOrEqual(Math.floor(RUNS * 0.75));
});
