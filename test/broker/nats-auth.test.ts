/**
 * Per-node permissions on a real nats-server started with the generated authorization config:
 * node B can send to node A, but cannot read A's inbox by any JetStream or core route. A is the
 * aggregator here (it provisions the streams).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import { connect, Empty, JSONCodec, AckPolicy, type NatsConnection, type NatsError } from 'nats';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { analysisNames } from '../../src/broker/nats/index.js';
import { natsAuthorizationConfig, natsNodePermissions } from '../../src/broker/nats/index.js';
import { UnauthorizedError } from '../../src/errors.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.js';
import { collector, wireMessage } from './conformance.js';

jest.setTimeout(30_000);

const analysisId = `auth-${randomUUID().slice(0, 8)}.x`;
const names = analysisNames(analysisId);
const pw = { a: randomBytes(12).toString('hex'), b: randomBytes(12).toString('hex'), admin: randomBytes(12).toString('hex') };

let server: TestNatsServer;
let rawB: NatsConnection;
const adapters: NatsBrokerAdapter[] = [];

const openNode = async (nodeId: 'a' | 'b'): Promise<NatsBrokerAdapter> => {
  const ad = await NatsBrokerAdapter.connect({
    servers: [server.url],
    analysisId,
    nodeId,
    user: nodeId,
    pass: pw[nodeId],
    participants: ['a', 'b'],
    provision: nodeId === 'a' ? 'create' : 'verify',
  });
  adapters.push(ad);
  return ad;
};

/** Resolves with the error of a request that the server refused, or throws if it was answered. */
async function refused(subject: string, body: unknown = undefined): Promise<NatsError> {
  const payload = body === undefined ? Empty : JSONCodec().encode(body);
  try {
    const reply = await rawB.request(subject, payload, { timeout: 2000 });
    throw new Error(`request to ${subject} was answered: ${new TextDecoder().decode(reply.data)}`);
  } catch (e) {
    return e as NatsError;
  }
}

beforeAll(async () => {
  const config = natsAuthorizationConfig({
    analysisId,
    nodes: [
      { nodeId: 'a', password: pw.a },
      { nodeId: 'b', password: pw.b },
    ],
    aggregatorId: 'a',
    admin: { user: 'admin', password: pw.admin },
  });
  server = await startNatsServer({ config });
  rawB = await connect({ servers: server.url, user: 'b', pass: pw.b, inboxPrefix: names.replyPrefix('b') });
});

afterAll(async () => {
  await Promise.all(adapters.map((a) => a.close()));
  await rawB?.close();
  await server?.stop();
});

describe('NATS per-node permissions', () => {
  it('lets each node send to the other, announce, list participants and ping', async () => {
    const a = await openNode('a');
    const b = await openNode('b');
    const gotA = collector();
    const gotB = collector();
    await a.start('a', gotA.handler);
    await b.start('b', gotB.handler);
    await b.publish(wireMessage('b', 'a', 1));
    await a.publish(wireMessage('a', 'b', 1));
    await gotA.until(() => gotA.received.length === 1);
    await gotB.until(() => gotB.received.length === 1);
    expect(gotA.received[0].sender).toBe('b');
    const now = new Date().toISOString();
    await a.announce({ nodeId: 'a', role: 'aggregator', lastSeen: now });
    await b.announce({ nodeId: 'b', role: 'analyzer', lastSeen: now });
    expect((await b.participants()).map((p) => p.nodeId)).toEqual(['a', 'b']);
    expect(await b.ping('a', 1000)).toBe(true);
    expect(await a.ping('b', 1000)).toBe(true);
    // A node may only write its own participant record.
    await expect(b.announce({ nodeId: 'a', role: 'analyzer', lastSeen: now })).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
  });

  it("refuses node B every way of reading node A's inbox", async () => {
    // A is stopped; its durable exists and holds a message B would like to read.
    await adapters[0].close();
    const secret = wireMessage('b', 'a', 2, { body: new TextEncoder().encode('for a only') });
    await adapters[1].publish(secret);

    // Through the adapter: starting as node A with B's login.
    const asB = await NatsBrokerAdapter.connect({ servers: [server.url], analysisId, nodeId: 'b', user: 'b', pass: pw.b, participants: ['a', 'b'] });
    adapters.push(asB);
    await expect(asB.start('a', collector().handler)).rejects.toBeInstanceOf(UnauthorizedError);

    // Creating a consumer filtered on A's inbox, under A's durable name or B's own.
    const filterA = names.inbox('a', 'b');
    const cfg = (durable: string) => ({ stream_name: names.stream, config: { durable_name: durable, filter_subject: filterA, ack_policy: AckPolicy.Explicit } });
    for (const subject of [
      `$JS.API.CONSUMER.CREATE.${names.stream}.${names.durable('a', 'b')}.${filterA}`,
      `$JS.API.CONSUMER.CREATE.${names.stream}.spy.${filterA}`,
      `$JS.API.CONSUMER.CREATE.${names.stream}.spy.flame.>`,
      `$JS.API.CONSUMER.CREATE.${names.stream}`,
      `$JS.API.CONSUMER.DURABLE.CREATE.${names.stream}.spy`,
    ]) {
      expect((await refused(subject, cfg('spy'))).message).toMatch(/permissions violation/i);
    }
    // B's own consumer subject with A's filter in the body: the server must refuse the mismatch.
    const mismatch = await rawB.request(
      `$JS.API.CONSUMER.CREATE.${names.stream}.${names.durable('b', 'a')}.${names.inbox('b', 'a')}`,
      JSONCodec().encode(cfg(names.durable('b', 'a'))),
      { timeout: 2000 },
    );
    // nats-server >= 2.9 answers 10131 "did not match filtered subject from create subject".
    expect(JSONCodec<{ error?: { err_code: number } }>().decode(mismatch.data).error?.err_code).toBe(10131);
    // Pulling from A's durable, or reading stream messages by sequence.
    expect((await refused(`$JS.API.CONSUMER.MSG.NEXT.${names.stream}.${names.durable('a', 'b')}`, { batch: 1 })).message).toMatch(/permissions violation/i);
    expect((await refused(`$JS.API.STREAM.MSG.GET.${names.stream}`, { seq: 1 })).message).toMatch(/permissions violation/i);
    expect((await refused(`$JS.API.DIRECT.GET.${names.stream}`, { seq: 1 })).message).toMatch(/permissions violation/i);
    expect((await refused(`$JS.API.STREAM.DELETE.${names.stream}`)).message).toMatch(/permissions violation/i);

    // Core subscriptions to A's inbox or A's ping subject.
    for (const subject of [filterA, names.inbox('a', 'a'), 'flame.>', names.ping('a'), `${names.replyPrefix('a')}.>`]) {
      const err = await new Promise<Error | null>((resolve) => {
        rawB.subscribe(subject, { callback: (e) => resolve(e) });
        setTimeout(() => resolve(null), 2000);
      });
      expect(err?.message).toMatch(/permissions violation/i);
    }

    // The message is still there for A, and A gets it.
    const a2 = await openNode('a');
    const got = collector();
    await a2.start('a', got.handler);
    await got.until(() => got.received.some((m) => m.id === secret.id));
    expect(new TextDecoder().decode(got.received.find((m) => m.id === secret.id)!.body)).toBe('for a only');
  });

  it("refuses node B's publish as node A at once, as an authorization error", async () => {
    const b = await openNode('b');
    const t0 = Date.now();
    const err = await b.publish(wireMessage('a', 'b', 1)).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect(err?.message).toMatch(/Permissions Violation for Publish/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('renders users with only the node permissions and rejects bad logins', () => {
    const p = natsNodePermissions(analysisId, 'a', { participants: ['a', 'b'] });
    expect(p.subscribe.allow).toEqual([`${names.replyPrefix('a')}.>`, names.ping('a')]);
    expect(p.publish.allow.some((s) => s.includes(names.durable('b', 'a')))).toBe(false);
    // Messages only as itself; no stream creation for an analyzer, which the aggregator has.
    expect(p.publish.allow.filter((s) => s.startsWith('flame.') && s.includes('.inbox.'))).toEqual([names.outbox('a')]);
    expect(p.publish.allow.some((s) => s.includes('STREAM.CREATE') || s.includes('STREAM.UPDATE') || s.includes('STREAM.DELETE'))).toBe(false);
    const agg = natsNodePermissions(analysisId, 'a', { participants: ['a', 'b'], aggregator: true });
    expect(agg.publish.allow.filter((s) => s.includes('STREAM.CREATE'))).toEqual([`$JS.API.STREAM.CREATE.${names.stream}`, `$JS.API.STREAM.CREATE.${names.kvStream}`]);
    expect(() => natsNodePermissions(analysisId, 'a', { participants: ['b'] })).toThrow(/participants must list/);
    expect(() => natsAuthorizationConfig({ analysisId, nodes: [{ nodeId: 'a', password: 'short' }] })).toThrow(/nodes\[0\]\.password/);
    expect(() => natsAuthorizationConfig({ analysisId, nodes: [{ nodeId: 'a b', password: 'long enough' }] })).toThrow(/nodes\[0\]\.nodeId/);
  });
});
