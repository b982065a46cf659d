/**
 * The one conformance suite of the Broker port, run against every adapter (memory and NATS), so
 * both keep identical delivery semantics.
 */
import { randomUUID } from 'node:crypto';
import { BadRequestError } from '../../src/errors.js';
import type { BrokerAdapter, DeliveryInfo, ParticipantInfo, WireMessage } from '../../src/broker/port.js';

/** Every node id the suite uses (adapters are told the participants of their analysis). */
export const CONFORMANCE_NODES = ['node-a', 'node.b', 'a', 'b', 'c', 'late', 'nobody'];

/** One fresh analysis on the adapter under test. */
export interface BrokerTestAnalysis {
  /** A new adapter (own connection) acting for `nodeId` in this analysis (participants: {@link CONFORMANCE_NODES}). */
  open(nodeId: string): Promise<BrokerAdapter>;
  /** Removes whatever the analysis left on the broker. */
  dispose(): Promise<void>;
}

/** Builds a message from `sender` to `recipient` with a fresh id. */
export function wireMessage(sender: string, recipient: string, n: number, extra: Partial<WireMessage> = {}): WireMessage {
  return {
    id: randomUUID(),
    sender,
    recipient,
    category: 'message',
    time: new Date().toISOString(),
    message_number: n,
    body: new TextEncoder().encode(`${sender}#${n}`),
    ...extra,
  };
}

/** A handler that records deliveries, and waits until a condition on them holds. */
export function collector(reject?: (msg: WireMessage, attempt: number) => boolean) {
  const received: WireMessage[] = [];
  const attempts = new Map<string, number>();
  let changed: () => void = () => undefined;
  const handler = async (msg: WireMessage, _info?: DeliveryInfo): Promise<void> => {
    const attempt = (attempts.get(msg.id) ?? 0) + 1;
    attempts.set(msg.id, attempt);
    changed();
    if (reject?.(msg, attempt)) throw new Error(`rejecting ${msg.id} attempt ${attempt}`);
    received.push(msg);
    changed();
  };
  /** Resolves once `cond()` is true; fails after `timeoutMs` saying what was seen. */
  const until = async (cond: () => boolean, timeoutMs = 8000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`condition not met within ${timeoutMs} ms; received ${received.length}, attempts ${JSON.stringify([...attempts.values()])}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        changed = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  };
  return { handler, received, attempts, until };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Registers the port's conformance tests for one adapter under `describe(name)`. */
export function describeBrokerConformance(name: string, makeAnalysis: () => Promise<BrokerTestAnalysis>): void {
  describe(`${name} broker conformance`, () => {
    let analysis: BrokerTestAnalysis;
    const opened: BrokerAdapter[] = [];
    const open = async (nodeId: string): Promise<BrokerAdapter> => {
      const a = await analysis.open(nodeId);
      opened.push(a);
      return a;
    };

    beforeEach(async () => {
      analysis = await makeAnalysis();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((a) => a.close()));
      await analysis.dispose();
    });

    it('delivers a message with every field intact', async () => {
      const a = await open('node-a');
      const b = await open('node.b');
      const got = collector();
      await b.start('node.b', got.handler);
      const body = new Uint8Array(256).map((_, i) => i);
      const sent = wireMessage('node-a', 'node.b', 7, { category: 'intermediate_result', reply_to: 'earlier-id:1', session: 'abc123', auth: 'v1 kidA kidB tag', body });
      const plain = wireMessage('node-a', 'node.b', 8);
      await a.publish(sent);
      await a.publish(plain);
      await got.until(() => got.received.length === 2);
      const [first, second] = got.received;
      expect({ ...first, body: Buffer.from(first.body) }).toEqual({ ...sent, body: Buffer.from(body) });
      expect(second.reply_to).toBeUndefined();
      expect(second.session).toBeUndefined();
      expect(second.message_number).toBe(8);
      expect(new TextDecoder().decode(second.body)).toBe('node-a#8');
    });

    it('keeps the order of each sender and runs one handler at a time per sender', async () => {
      const a = await open('a');
      const c = await open('c');
      const b = await open('b');
      const running = new Map<string, number>();
      let maxRunning = 0;
      const got = collector();
      await b.start('b', async (m, info) => {
        running.set(m.sender, (running.get(m.sender) ?? 0) + 1);
        maxRunning = Math.max(maxRunning, running.get(m.sender)!);
        await sleep(m.message_number % 5 === 0 ? 3 : 0);
        running.set(m.sender, running.get(m.sender)! - 1);
        await got.handler(m, info);
      });
      const sends: Promise<void>[] = [];
      for (let i = 1; i <= 40; i++) {
        await a.publish(wireMessage('a', 'b', i));
        sends.push(c.publish(wireMessage('c', 'b', i)));
      }
      await Promise.all(sends);
      await got.until(() => got.received.length === 80);
      expect(got.received.filter((m) => m.sender === 'a').map((m) => m.message_number)).toEqual(
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      // c's sends overlapped, so only completeness is promised for them.
      expect(new Set(got.received.filter((m) => m.sender === 'c').map((m) => m.message_number)).size).toBe(40);
      expect(maxRunning).toBe(1);
    });

    it("does not let one sender's backlog hold up another sender", async () => {
      const a = await open('a');
      const c = await open('c');
      const b = await open('b');
      // Every message from a is refused (as a receiver holding a sender back would); c's still arrive.
      const got = collector((m) => m.sender === 'a');
      await b.start('b', got.handler);
      for (let i = 1; i <= 20; i++) await a.publish(wireMessage('a', 'b', i));
      for (let i = 1; i <= 5; i++) await c.publish(wireMessage('c', 'b', i));
      await got.until(() => got.received.filter((m) => m.sender === 'c').length === 5);
      expect(got.received.filter((m) => m.sender === 'a')).toHaveLength(0);
    });

    it('tells the handler the delivery attempt and waits the retryAfterMs a rejection asks for', async () => {
      const a = await open('a');
      const b = await open('b');
      const seen: Array<{ attempt: number; at: number }> = [];
      let done = false;
      await b.start('b', async (_m, info) => {
        seen.push({ attempt: info.attempt, at: Date.now() });
        if (info.attempt < 2) throw Object.assign(new Error('later'), { retryAfterMs: 600 });
        done = true;
      });
      await a.publish(wireMessage('a', 'b', 1));
      const deadline = Date.now() + 8000;
      while (!done && Date.now() < deadline) await sleep(50);
      expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
      expect(seen[1].at - seen[0].at).toBeGreaterThanOrEqual(500);
    });

    it('delivers messages sent before the recipient started', async () => {
      const a = await open('a');
      for (let i = 1; i <= 3; i++) await a.publish(wireMessage('a', 'late', i));
      await sleep(100);
      const late = await open('late');
      const got = collector();
      await late.start('late', got.handler);
      await got.until(() => got.received.length === 3);
      expect(got.received.map((m) => m.message_number)).toEqual([1, 2, 3]);
    });

    it('redelivers a message whose handler rejected, and still delivers the others', async () => {
      const a = await open('a');
      const b = await open('b');
      const flaky = wireMessage('a', 'b', 1);
      const got = collector((m, attempt) => m.id === flaky.id && attempt < 3);
      await b.start('b', got.handler);
      await a.publish(flaky);
      await a.publish(wireMessage('a', 'b', 2));
      await got.until(() => got.received.length === 2);
      expect(got.attempts.get(flaky.id)).toBe(3);
      expect(got.received.filter((m) => m.id === flaky.id)).toHaveLength(1);
      await sleep(300);
      expect(got.received).toHaveLength(2);
    });

    it('keeps unacknowledged messages across close() and a new start()', async () => {
      const a = await open('a');
      const b1 = await open('b');
      const refusing = collector(() => true);
      await b1.start('b', refusing.handler);
      const first = [wireMessage('a', 'b', 1), wireMessage('a', 'b', 2)];
      for (const m of first) await a.publish(m);
      await refusing.until(() => refusing.attempts.size === 2);
      await b1.close();
      await expect(b1.publish(wireMessage('b', 'a', 1))).rejects.toThrow(/closed/);
      const third = wireMessage('a', 'b', 3);
      await a.publish(third);

      const b2 = await open('b');
      const got = collector();
      await b2.start('b', got.handler);
      await got.until(() => got.received.length === 3);
      expect(got.received.map((m) => m.message_number).sort()).toEqual([1, 2, 3]);
      expect(refusing.received).toHaveLength(0);
      await b2.close();

      // What was acknowledged is gone for good.
      const b3 = await open('b');
      const again = collector();
      await b3.start('b', again.handler);
      await sleep(400);
      expect(again.attempts.size).toBe(0);
    });

    it('de-duplicates a re-published message id', async () => {
      const a = await open('a');
      const b = await open('b');
      const got = collector();
      await b.start('b', got.handler);
      const m = wireMessage('a', 'b', 1);
      await a.publish(m);
      await a.publish({ ...m, body: new TextEncoder().encode('second copy') });
      await got.until(() => got.received.length === 1);
      // A copy re-published after delivery and acknowledgement is dropped as well.
      await a.publish(m);
      await a.publish(wireMessage('a', 'b', 2));
      await got.until(() => got.received.length === 2);
      await sleep(300);
      expect(got.received.map((x) => x.message_number)).toEqual([1, 2]);
      expect(new TextDecoder().decode(got.received[0].body)).toBe('a#1');
    });

    it('lists participants and updates a heartbeat', async () => {
      const a = await open('a');
      const b = await open('b');
      const t0 = new Date(Date.now() - 5000).toISOString();
      const infoA: ParticipantInfo = { nodeId: 'a', role: 'analyzer', keys: { kid: 'k1', box: 'QUJD', sign: 'REVG' }, lastSeen: t0 };
      const infoB: ParticipantInfo = { nodeId: 'b', role: 'aggregator', lastSeen: t0 };
      expect(await a.participants()).toEqual([]);
      await a.announce(infoA);
      await b.announce(infoB);
      expect(await a.participants()).toEqual([infoA, infoB]);
      const t1 = new Date().toISOString();
      await a.announce({ ...infoA, lastSeen: t1, closed: true });
      const later = await b.participants();
      expect(later.find((p) => p.nodeId === 'a')).toEqual({ ...infoA, lastSeen: t1, closed: true });
      expect(later).toHaveLength(2);
      await expect(a.announce({ ...infoA, role: 'boss' as 'analyzer' })).rejects.toThrow(/participant\.role.*boss/);
    });

    it('answers a ping only from a started node, and says false within the timeout otherwise', async () => {
      const a = await open('a');
      const b = await open('b');
      await b.start('b', collector().handler);
      expect(await a.ping('b', 1000)).toBe(true);
      let t = Date.now();
      expect(await a.ping('nobody', 300)).toBe(false);
      expect(Date.now() - t).toBeLessThan(1000);
      await b.close();
      t = Date.now();
      expect(await a.ping('b', 300)).toBe(false);
      expect(Date.now() - t).toBeLessThan(1000);
    });

    it('carries a body of exactly maxPayload and refuses a larger one naming its size', async () => {
      const a = await open('a');
      const b = await open('b');
      expect(a.maxPayload).toBeGreaterThanOrEqual(512 * 1024);
      const got = collector();
      await b.start('b', got.handler);
      const full = new Uint8Array(a.maxPayload).fill(0xab);
      await a.publish(wireMessage('a', 'b', 1, { body: full }));
      await got.until(() => got.received.length === 1);
      expect(got.received[0].body.byteLength).toBe(a.maxPayload);
      expect(got.received[0].body.every((x) => x === 0xab)).toBe(true);

      const size = a.maxPayload + 1;
      const tooBig = a.publish(wireMessage('a', 'b', 2, { body: new Uint8Array(size) }));
      await expect(tooBig).rejects.toBeInstanceOf(BadRequestError);
      await expect(a.publish(wireMessage('a', 'b', 2, { body: new Uint8Array(size) }))).rejects.toThrow(
        new RegExp(`${size} bytes exceed .* ${a.maxPayload} bytes`),
      );
    });

    it('refuses malformed messages naming the bad field', async () => {
      const a = await open('a');
      await expect(a.publish(wireMessage('a', 'no body', 1))).rejects.toThrow(/message\.recipient.*"no body"/);
      await expect(a.publish(wireMessage('a', 'b', 0))).rejects.toThrow(/message_number/);
      await expect(a.publish(wireMessage('a', 'b', 1, { category: 'bad\nline' }))).rejects.toThrow(/message\.category/);
    });
  });
}
