/**
 * Broker hot path: send → receive → reply → receive round trips through FlameSDK on NATS JetStream,
 * beside a bare `nats` core publish/subscribe and a bare JetStream publish/consume doing the same in
 * this run. The contenders take turns over several rounds (so none always gets the warm or the busy
 * moment); p50 is the median of the rounds' p50s, p99 is over all round trips.
 * FlameSDK's messages are tagged by their sender and verified by their receiver, which journals each one
 * in its durable inbox before acknowledging it: the whole production path.
 * Usage: npx tsx bench/broker.ts [--n 1500] [--rounds 5] [--nats nats://127.0.0.1:4222]
 */
import { randomUUID } from 'node:crypto';
import { AckPolicy, connect, RetentionPolicy, StorageType } from 'nats';
import { NatsBrokerAdapter } from '../src/broker/nats/index.js';
import { FsObjectStore } from '../src/results/fs.js';
import { FlameSDK } from '../src/sdk.js';
import { localRoster } from '../src/trust/local-roster.js';
import { fmt, percentile, printTable } from './stats.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const N = Number(arg('n', '1500'));
const ROUNDS = Number(arg('rounds', '5'));
const URL = arg('nats', process.env.FLAME_TEST_NATS_URL ?? 'nats://127.0.0.1:4222');
const WARMUP = 100;
const payload = { kind: 'bench', values: Array.from({ length: 16 }, (_, i) => i * 0.5) };
const body = new TextEncoder().encode(JSON.stringify(payload));

/** One way of doing a round trip, set up once and measured in several rounds. */
interface Contender {
  name: string;
  once(): Promise<void>;
  close(): Promise<void>;
}

async function bareCore(): Promise<Contender> {
  const [a, b] = await Promise.all([connect({ servers: URL }), connect({ servers: URL })]);
  const subj = `bench.${randomUUID()}`;
  b.subscribe(`${subj}.b`, { callback: (_e, m) => b.publish(`${subj}.a`, m.data) });
  let wake: (() => void) | undefined;
  a.subscribe(`${subj}.a`, { callback: () => wake?.() });
  await Promise.all([a.flush(), b.flush()]);
  return {
    name: 'bare nats core pub/sub',
    once: () =>
      new Promise<void>((res) => {
        wake = res;
        a.publish(`${subj}.b`, body);
      }),
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

async function bareJetStream(): Promise<Contender> {
  const nc = await connect({ servers: URL });
  const jsm = await nc.jetstreamManager();
  const stream = `BENCH_${randomUUID().replace(/-/g, '')}`;
  // The same durable work as FlameSDK's stream: file storage, a message kept until its consumer acks it.
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
  const js = nc.jetstream();
  for (const who of ['a', 'b']) await jsm.consumers.add(stream, { durable_name: who, filter_subject: `${stream}.${who}`, ack_policy: AckPolicy.Explicit });
  const subA = await (await js.consumers.get(stream, 'a')).consume();
  const subB = await (await js.consumers.get(stream, 'b')).consume();
  let wake: (() => void) | undefined;
  void (async () => {
    for await (const m of subB) {
      await js.publish(`${stream}.a`, m.data);
      m.ack();
    }
  })();
  void (async () => {
    for await (const m of subA) {
      m.ack();
      wake?.();
    }
  })();
  return {
    name: 'bare nats JetStream pub/consume',
    // Like FlameSDK's send, a publish counts once the server has stored it (awaited PubAck).
    once: async () => {
      const got = new Promise<void>((res) => (wake = res));
      await js.publish(`${stream}.b`, body);
      await got;
    },
    close: async () => {
      subA.stop();
      subB.stop();
      await jsm.streams.delete(stream);
      await nc.close();
    },
  };
}

async function flame(): Promise<Contender> {
  const analysisId = `bench-${randomUUID().slice(0, 8)}`;
  // Every message is tagged by its sender and verified (and journaled) by its receiver, as in production.
  const local = (n: string): string => `/tmp/${analysisId}/${n}`;
  const roster = await localRoster({ projectId: 'local-project', analysisId, aggregatorId: 'b', nodes: ['a', 'b'].map((nodeId) => ({ nodeId, local: new FsObjectStore(local(nodeId)) })) });
  const base = {
    analysisId,
    participants: ['a', 'b'],
    aggregatorId: 'b',
    broker: { type: 'nats' as const, servers: [URL] },
    logLevel: 'warn' as const,
    hub: { type: 'fs' as const, dir: `/tmp/${analysisId}/hub` },
    trust: { mode: 'roster' as const, roster },
  };
  const b = await FlameSDK.connect({ ...base, nodeId: 'b', local: { type: 'fs', dir: local('b') } });
  const a = await FlameSDK.connect({ ...base, nodeId: 'a', local: { type: 'fs', dir: local('a') } });
  let running = true;
  const echo = (async () => {
    while (running) {
      const m = await b.awaitMessage('a', { timeoutMs: 600_000 }).catch(() => undefined);
      if (!m) break;
      await b.sendMessage('a', m.data);
    }
  })();
  return {
    name: 'FlameSDK on NATS JetStream',
    once: async () => {
      await a.sendMessage('b', payload);
      await a.awaitMessage('b', { timeoutMs: 10_000 });
    },
    close: async () => {
      running = false;
      await Promise.all([a.close(), b.close()]);
      await echo;
      await NatsBrokerAdapter.purgeAnalysis({ servers: [URL], analysisId });
    },
  };
}

async function measure(c: Contender): Promise<{ rtts: number[]; seconds: number }> {
  for (let i = 0; i < WARMUP; i++) await c.once();
  const rtts: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    await c.once();
    rtts.push(performance.now() - s);
  }
  return { rtts, seconds: (performance.now() - t0) / 1000 };
}

const contenders = [await bareCore(), await bareJetStream(), await flame()];
const stats = contenders.map(() => ({ p50s: [] as number[], all: [] as number[], seconds: 0 }));
for (let round = 0; round < ROUNDS; round++) {
  // rotate the order each round
  for (let k = 0; k < contenders.length; k++) {
    const i = (k + round) % contenders.length;
    const r = await measure(contenders[i]);
    stats[i].p50s.push(percentile(r.rtts, 0.5));
    stats[i].all.push(...r.rtts);
    stats[i].seconds += r.seconds;
  }
}
for (const c of contenders) await c.close();

const p50 = stats.map((s) => percentile(s.p50s, 0.5));
// The ratio in each round, as the machine's load changes between rounds.
const perRound = stats[2].p50s.map((v, r) => fmt(v / stats[1].p50s[r])).join(' ');
console.log(`\nround trips (send → receive → reply → receive), ${ROUNDS} rounds × n=${N} after ${WARMUP} warm-up each, ${URL}\n`);
printTable(
  contenders.map((c, i) => ({
    path: c.name,
    'p50 ms': fmt(p50[i], 3),
    'p99 ms': fmt(percentile(stats[i].all, 0.99), 3),
    'round trips/s': fmt((ROUNDS * N) / stats[i].seconds, 0),
    'p50 vs bare core': fmt(p50[i] / p50[0]) + '×',
    'p50 vs bare JetStream': fmt(p50[i] / p50[1]) + '×',
  })),
);
console.log(`\nFlameSDK p50 ÷ bare JetStream p50 in each round: ${perRound}`);
console.log('Targets: FlameSDK p50 within 1.5× of bare NATS doing the same durable work (JetStream), p99 under 5 ms.');
process.exit(0);
