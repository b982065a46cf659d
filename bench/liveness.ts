/**
 * Time to detect a dead node: a node process is killed with SIGKILL at a random point of its
 * heartbeat cycle and a watcher node asks `peerLiveness()` every few ms until it reports the node
 * offline. The bare contender does the same work with nats.js alone (a process putting its clock
 * into a KV key each interval, a watcher reading it and declaring the node dead after the same loss
 * window). Figures are in heartbeat intervals (target: under 3) and as a ratio to the bare one.
 *
 *   npx tsx bench/liveness.ts [--trials 12] [--heartbeat 200] [--nats nats://127.0.0.1:4222]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import { NatsBrokerAdapter } from '../src/broker/nats/index.js';
import { FlameSDK } from '../src/sdk.js';
import { makeFederation } from '../test/helpers/federation.js';
import { fmt, percentile, printTable } from './stats.js';

const { values: args } = parseArgs({
  options: {
    trials: { type: 'string', default: '12' },
    heartbeat: { type: 'string', default: '200' },
    nats: { type: 'string', default: process.env.FLAME_TEST_NATS_URL ?? 'nats://127.0.0.1:4222' },
  },
});
const TRIALS = Number(args.trials);
const HB = Number(args.heartbeat);
const LOSS = 3 * HB; // the SDK's default loss window
const POLL = 5;
const URL = args.nats!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startChild(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fixtures/idle-node.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', FLAME_NATS_URL: URL, FLAME_HEARTBEAT_MS: String(HB), FLAME_LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => c.toString().includes('ready') && resolve(child));
    child.once('exit', (code) => reject(new Error(`node process exited with ${code} before it was ready`)));
  });
}

async function kill(child: ChildProcess): Promise<void> {
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** Kills a ready node at a random point of its cycle and times until `isDead()` says so. */
async function trial(start: () => Promise<ChildProcess>, isAlive: () => Promise<boolean>): Promise<number> {
  const child = await start();
  while (!(await isAlive())) await sleep(POLL);
  await sleep(HB * (1 + Math.random()));
  const t0 = performance.now();
  await kill(child);
  while (await isAlive()) await sleep(POLL);
  return performance.now() - t0;
}

async function flame(): Promise<number[]> {
  const analysisId = `bench-live-${randomUUID().slice(0, 8)}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-liveness-'));
  const localDir = (n: string) => path.join(dir, n);
  const fed = await makeFederation({ dir, analysisId, nodes: ['watcher', 'node'], aggregatorId: 'watcher', localDir });
  const common = { FLAME_ANALYSIS_ID: analysisId, FLAME_PARTICIPANTS: 'watcher,node', FLAME_AGGREGATOR_ID: 'watcher', FLAME_HUB_DIR: path.join(dir, 'hub') };
  const watcher = await FlameSDK.connect({ nodeId: 'watcher', analysisId, participants: ['watcher', 'node'], aggregatorId: 'watcher', broker: { type: 'nats', servers: [URL] }, hub: { type: 'fs', dir: path.join(dir, 'hub') }, local: { type: 'fs', dir: localDir('watcher') }, trust: fed.trust, logLevel: 'error', heartbeatMs: HB });
  const out: number[] = [];
  try {
    const start = () => startChild({ ...common, ...fed.env, FLAME_NODE_ID: 'node', FLAME_LOCAL_DIR: localDir('node') });
    const alive = async () => (await watcher.peerLiveness({ lossAfterMs: LOSS })).node?.online === true;
    for (let i = 0; i < TRIALS; i++) out.push(await trial(start, alive));
  } finally {
    await watcher.close();
    await NatsBrokerAdapter.purgeAnalysis({ servers: [URL], analysisId });
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

async function bare(): Promise<number[]> {
  const bucket = `bench_live_${randomUUID().slice(0, 8)}`;
  const nc = await connect({ servers: URL });
  const kv = await nc.jetstream().views.kv(bucket, { history: 1 });
  const out: number[] = [];
  try {
    const alive = async () => {
      const e = await kv.get('node');
      return e !== null && Date.now() - Number(e.string()) <= LOSS;
    };
    for (let i = 0; i < TRIALS; i++) out.push(await trial(() => startChild({ BARE_KV: '1', BARE_BUCKET: bucket }), alive));
  } finally {
    await kv.destroy();
    await nc.close();
  }
  return out;
}

const flameMs = await flame();
const bareMs = await bare();
const row = (name: string, v: number[]) => ({
  detector: name,
  'p50 ms': fmt(percentile(v, 0.5), 0),
  'max ms': fmt(Math.max(...v), 0),
  'p50 heartbeats': fmt(percentile(v, 0.5) / HB),
  'max heartbeats': fmt(Math.max(...v) / HB),
});
console.log(`${TRIALS} SIGKILLs per detector, heartbeat ${HB} ms, loss window ${LOSS} ms (3 heartbeats), polled every ${POLL} ms`);
printTable([row('FlameSDK peerLiveness', flameMs), row('bare nats.js KV clock', bareMs)]);
console.log(`ratio FlameSDK / bare: p50 ${fmt(percentile(flameMs, 0.5) / percentile(bareMs, 0.5))}×, max ${fmt(Math.max(...flameMs) / Math.max(...bareMs))}×; target p50 < 3 heartbeats: ${percentile(flameMs, 0.5) < 3 * HB ? 'met' : 'not met'}`);
