/**
 * Broker adapter benchmark: what NatsBrokerAdapter costs over the bare `nats` library doing the
 * same work in the same run, on the shared server at 127.0.0.1:4222 (or FLAME_TEST_NATS_URL).
 *
 *   round trip: node x sends to y, y's handler replies to x, x awaits the reply (sequential)
 *   one-way:    x sends a burst to y with a window of concurrent publishes; time until y has all
 *
 * Rows: bare core NATS pub/sub, bare JetStream publish + pull consume (+ack), the adapter, and the
 * in-memory adapter for reference. Ratios are against bare core and bare JetStream.
 * Run: npx tsx bench/broker-adapter.ts [roundTrips=2000] [oneWay=4000] [rounds=3]
 * Figures are medians over the rounds.
 */
import { randomUUID } from 'node:crypto';
import { AckPolicy, RetentionPolicy, StorageType, connect, type JsMsg, type NatsConnection } from 'nats';
import { MemoryBrokerAdapter, MemoryBrokerHub } from '../src/broker/memory.js';
import { NatsBrokerAdapter } from '../src/broker/nats/index.js';
import type { BrokerAdapter, WireMessage } from '../src/broker/port.js';

const URL = process.env.FLAME_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
if (!/127\.0\.0\.1|localhost/.test(URL)) throw new Error(`refusing to benchmark against a non-local server ${URL}`);
const ROUND_TRIPS = Number(process.argv[2] ?? 2000);
const ONE_WAY = Number(process.argv[3] ?? 4000);
const ROUNDS = Number(process.argv[4] ?? 3);
const WINDOW = 64;
const WARMUP = 100;
const BODY = new Uint8Array(256).fill(7);

interface Result {
  name: string;
  p50: number;
  p99: number;
  rtPerSec: number;
  oneWayPerSec: number;
}

/** The two operations every contender implements. */
interface Contender {
  name: string;
  /** Sends one message x → y and resolves when y's reply reached x. */
  roundTrip(): Promise<void>;
  /** Sends `n` messages x → y (at most WINDOW in flight) and resolves when y has received all. */
  burst(n: number): Promise<void>;
  close(): Promise<void>;
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function measure(c: Contender): Promise<Result> {
  for (let i = 0; i < WARMUP; i++) await c.roundTrip();
  await c.burst(WARMUP);
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const s = performance.now();
    await c.roundTrip();
    lat.push(performance.now() - s);
  }
  const rtSecs = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await c.burst(ONE_WAY);
  const owSecs = (performance.now() - t1) / 1000;
  lat.sort((a, b) => a - b);
  return { name: c.name, p50: percentile(lat, 50), p99: percentile(lat, 99), rtPerSec: ROUND_TRIPS / rtSecs, oneWayPerSec: ONE_WAY / owSecs };
}

/** Runs `n` async sends with at most `window` in flight. */
async function windowed(n: number, window: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await send(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, worker));
}

/** A counter that resolves a promise when it reaches a target. */
function counter() {
  let count = 0;
  let target = Infinity;
  let done: () => void = () => undefined;
  return {
    hit(): void {
      if (++count >= target) done();
    },
    reach(n: number): Promise<void> {
      count = 0;
      target = n;
      return new Promise<void>((r) => (done = r));
    },
  };
}

async function bareCore(): Promise<Contender> {
  const id = randomUUID().slice(0, 8);
  const x = await connect({ servers: URL });
  const y = await connect({ servers: URL });
  let replied: () => void = () => undefined;
  const got = counter();
  x.subscribe(`bench.${id}.x`, { callback: () => replied() });
  y.subscribe(`bench.${id}.y`, {
    callback: (_e, m) => {
      if (m.headers?.get('kind') === 'rt') y.publish(`bench.${id}.x`, BODY);
      else got.hit();
    },
  });
  const { headers } = await import('nats');
  const rt = headers();
  rt.set('kind', 'rt');
  const ow = headers();
  ow.set('kind', 'ow');
  await Promise.all([x.flush(), y.flush()]);
  return {
    name: 'bare core NATS pub/sub',
    roundTrip: () =>
      new Promise<void>((r) => {
        replied = r;
        x.publish(`bench.${id}.y`, BODY, { headers: rt });
      }),
    async burst(n) {
      const all = got.reach(n);
      for (let i = 0; i < n; i++) x.publish(`bench.${id}.y`, BODY, { headers: ow });
      await x.flush();
      await all;
    },
    async close() {
      await Promise.all([x.close(), y.close()]);
    },
  };
}

async function bareJetStream(): Promise<Contender> {
  const id = randomUUID().slice(0, 8);
  const stream = `BENCH_${id}`;
  const admin = await connect({ servers: URL });
  const jsm = await admin.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`bench.${id}.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
  for (const n of ['x', 'y']) {
    await jsm.consumers.add(stream, { durable_name: n, filter_subject: `bench.${id}.${n}`, ack_policy: AckPolicy.Explicit });
  }
  const x = await connect({ servers: URL });
  const y = await connect({ servers: URL });
  const jsx = x.jetstream();
  const jsy = y.jetstream();
  let replied: () => void = () => undefined;
  const got = counter();
  const cx = await (await jsx.consumers.get(stream, 'x')).consume({ max_messages: 64, callback: (m: JsMsg) => (m.ack(), replied()) });
  const cy = await (await jsy.consumers.get(stream, 'y')).consume({ max_messages: 64 });
  const loopY = (async () => {
    // Like the adapter: handle one message at a time, ack after handling.
    for await (const m of cy) {
      if (m.headers?.get('kind') === 'rt') await jsy.publish(`bench.${id}.x`, BODY);
      else got.hit();
      m.ack();
    }
  })();
  const { headers } = await import('nats');
  const hdr = (kind: string) => {
    const h = headers();
    h.set('kind', kind);
    return h;
  };
  return {
    name: 'bare JetStream pub + consume',
    roundTrip: () =>
      new Promise<void>((r, j) => {
        replied = r;
        jsx.publish(`bench.${id}.y`, BODY, { headers: hdr('rt') }).catch(j);
      }),
    async burst(n) {
      const all = got.reach(n);
      await windowed(n, WINDOW, () => jsx.publish(`bench.${id}.y`, BODY, { headers: hdr('ow') }));
      await all;
    },
    async close() {
      await Promise.all([cx.close(), cy.close()]);
      await loopY.catch(() => undefined);
      await Promise.all([x.close(), y.close()]);
      await jsm.streams.delete(stream);
      await admin.close();
    },
  };
}

/** The same two operations through any BrokerAdapter pair. */
async function adapterContender(name: string, x: BrokerAdapter, y: BrokerAdapter, dispose: () => Promise<void>): Promise<Contender> {
  let n = 0;
  const msg = (from: string, to: string, category: string, replyTo?: string): WireMessage => ({
    id: randomUUID(),
    sender: from,
    recipient: to,
    category,
    time: new Date().toISOString(),
    message_number: ++n,
    reply_to: replyTo,
    body: BODY,
  });
  let replied: () => void = () => undefined;
  const got = counter();
  await x.start('x', async () => replied());
  await y.start('y', async (m) => {
    if (m.category === 'rt') await y.publish(msg('y', 'x', 'reply', m.id));
    else got.hit();
  });
  return {
    name,
    roundTrip: () =>
      new Promise<void>((r, j) => {
        replied = r;
        x.publish(msg('x', 'y', 'rt')).catch(j);
      }),
    async burst(count) {
      const all = got.reach(count);
      await windowed(count, WINDOW, () => x.publish(msg('x', 'y', 'ow')));
      await all;
    },
    async close() {
      await Promise.all([x.close(), y.close()]);
      await dispose();
    },
  };
}

async function natsAdapter(): Promise<Contender> {
  const analysisId = `bench-${randomUUID().slice(0, 8)}`;
  const open = (nodeId: string) => NatsBrokerAdapter.connect({ servers: [URL], analysisId, nodeId, participants: ['x', 'y'], provision: 'create' });
  return adapterContender('NatsBrokerAdapter', await open('x'), await open('y'), () =>
    NatsBrokerAdapter.purgeAnalysis({ servers: [URL], analysisId }),
  );
}

async function memoryAdapter(): Promise<Contender> {
  const hub = new MemoryBrokerHub();
  const analysisId = `bench-${randomUUID().slice(0, 8)}`;
  return adapterContender('MemoryBrokerAdapter (in-process)', new MemoryBrokerAdapter(hub, analysisId), new MemoryBrokerAdapter(hub, analysisId), async () =>
    hub.purgeAnalysis(analysisId),
  );
}

async function main(): Promise<void> {
  // Check the server is there before building anything.
  const probe: NatsConnection = await connect({ servers: URL });
  const version = probe.info?.version;
  await probe.close();
  console.log(`nats-server ${version} at ${URL}; ${ROUND_TRIPS} sequential round trips, ${ONE_WAY} one-way messages (window ${WINDOW}), ${BODY.length}-byte bodies, median of ${ROUNDS} rounds\n`);
  // Contenders take turns for several rounds and each figure is the median over rounds, so a
  // burst of load from other processes does not land on one contender only.
  const makers = [bareCore, bareJetStream, natsAdapter, memoryAdapter];
  const perContender: Result[][] = makers.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, make] of makers.entries()) {
      const c = await make();
      try {
        perContender[i].push(await measure(c));
      } finally {
        await c.close();
      }
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const results: Result[] = perContender.map((rs) => ({
    name: rs[0].name,
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    rtPerSec: median(rs.map((r) => r.rtPerSec)),
    oneWayPerSec: median(rs.map((r) => r.oneWayPerSec)),
  }));
  const [core, js] = results;
  const rows = results.map((r) => ({
    contender: r.name,
    'rt p50 ms': r.p50.toFixed(3),
    'rt p99 ms': r.p99.toFixed(3),
    'rt/s': Math.round(r.rtPerSec),
    'one-way msg/s': Math.round(r.oneWayPerSec),
    'p50 × core': (r.p50 / core.p50).toFixed(2),
    'p50 × JS': (r.p50 / js.p50).toFixed(2),
    'msg/s ÷ core': (r.oneWayPerSec / core.oneWayPerSec).toFixed(3),
    'msg/s ÷ JS': (r.oneWayPerSec / js.oneWayPerSec).toFixed(2),
  }));
  console.table(rows);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
