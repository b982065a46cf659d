/**
 * Broker hot path: send → receive → reply round trips through FlameSDK on NATS JetStream, beside a
 * bare `nats` core publish/subscribe and a bare JetStream publish/consume doing the same in this run.
 * Usage: npx tsx bench/broker.ts [--n 2000] [--nats nats://127.0.0.1:4222]
 */
import { randomUUID } from 'node:crypto';
import { AckPolicy, connect, type NatsConnection } from 'nats';
import { NatsBrokerAdapter } from '../src/broker/nats.js';
import { FlameSDK } from '../src/sdk.js';
import { fmt, percentile, printTable } from './stats.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const N = Number(arg('n', '2000'));
const URL = arg('nats', process.env.FLAME_TEST_NATS_URL ?? 'nats://127.0.0.1:4222');
const WARMUP = 100;
const payload = { kind: 'bench', values: Array.from({ length: 16 }, (_, i) => i * 0.5) };

interface Result {
  name: string;
  rtts: number[];
  seconds: number;
}

async function timeLoop(name: string, once: () => Promise<void>): Promise<Result> {
  for (let i = 0; i < WARMUP; i++) await once();
  const rtts: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    await once();
    rtts.push(performance.now() - s);
  }
  return { name, rtts, seconds: (performance.now() - t0) / 1000 };
}

async function bareCore(): Promise<Result> {
  const [a, b] = await Promise.all([connect({ servers: URL }), connect({ servers: URL })]);
  const subj = `bench.${randomUUID()}`;
  const body = new TextEncoder().encode(JSON.stringify(payload));
  b.subscribe(`${subj}.b`, { callback: (_e, m) => b.publish(`${subj}.a`, m.data) });
  let wake: (() => void) | undefined;
  a.subscribe(`${subj}.a`, { callback: () => wake?.() });
  await Promise.all([a.flush(), b.flush()]);
  const r = await timeLoop('bare nats core pub/sub', () => new Promise<void>((res) => {
    wake = res;
    a.publish(`${subj}.b`, body);
  }));
  await Promise.all([a.close(), b.close()]);
  return r;
}

async function bareJetStream(): Promise<Result> {
  const nc: NatsConnection = await connect({ servers: URL });
  const jsm = await nc.jetstreamManager();
  const stream = `BENCH_${randomUUID().replace(/-/g, '')}`;
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  const js = nc.jetstream();
  const body = new TextEncoder().encode(JSON.stringify(payload));
  for (const who of ['a', 'b']) await jsm.consumers.add(stream, { durable_name: who, filter_subject: `${stream}.${who}`, ack_policy: AckPolicy.Explicit });
  const ca = await js.consumers.get(stream, 'a');
  const cb = await js.consumers.get(stream, 'b');
  let wake: (() => void) | undefined;
  const subA = await ca.consume();
  const subB = await cb.consume();
  (async () => {
    for await (const m of subB) {
      await js.publish(`${stream}.a`, m.data);
      m.ack();
    }
  })();
  (async () => {
    for await (const m of subA) {
      m.ack();
      wake?.();
    }
  })();
  // Like FlameSDK's send, a publish counts once the server has stored it (awaited PubAck).
  const r = await timeLoop('bare nats JetStream pub/consume', async () => {
    const got = new Promise<void>((res) => (wake = res));
    await js.publish(`${stream}.b`, body);
    await got;
  });
  subA.stop();
  subB.stop();
  await jsm.streams.delete(stream);
  await nc.close();
  return r;
}

async function flame(): Promise<Result> {
  const analysisId = `bench-${randomUUID().slice(0, 8)}`;
  const base = { analysisId, participants: ['a', 'b'], aggregatorId: 'b', broker: { type: 'nats' as const, servers: [URL] }, logLevel: 'warn' as const, hub: { type: 'fs' as const, dir: `/tmp/${analysisId}/hub` } };
  const a = await FlameSDK.connect({ ...base, nodeId: 'a', local: { type: 'fs', dir: `/tmp/${analysisId}/a` } });
  const b = await FlameSDK.connect({ ...base, nodeId: 'b', local: { type: 'fs', dir: `/tmp/${analysisId}/b` } });
  let running = true;
  const echo = (async () => {
    while (running) {
      const m = await b.awaitMessage('a', { timeoutMs: 60_000 }).catch(() => undefined);
      if (!m) break;
      await b.sendMessage('a', m.data);
    }
  })();
  const r = await timeLoop('FlameSDK on NATS JetStream', async () => {
    await a.sendMessage('b', payload);
    await a.awaitMessage('b', { timeoutMs: 10_000 });
  });
  running = false;
  await Promise.all([a.close(), b.close()]);
  await echo;
  await NatsBrokerAdapter.purgeAnalysis({ servers: [URL], analysisId });
  return r;
}

const results = [await bareCore(), await bareJetStream(), await flame()];
const core = percentile(results[0].rtts, 0.5);
const jsP50 = percentile(results[1].rtts, 0.5);
console.log(`\nround trips (send → receive → reply → receive), n=${N} after ${WARMUP} warm-up, ${URL}\n`);
printTable(
  results.map((r) => ({
    path: r.name,
    'p50 ms': fmt(percentile(r.rtts, 0.5), 3),
    'p99 ms': fmt(percentile(r.rtts, 0.99), 3),
    'round trips/s': fmt(N / r.seconds, 0),
    'p50 vs bare core': fmt(percentile(r.rtts, 0.5) / core) + '×',
    'p50 vs bare JetStream': fmt(percentile(r.rtts, 0.5) / jsP50) + '×',
  })),
);
process.exit(0);
