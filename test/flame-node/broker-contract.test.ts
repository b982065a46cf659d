/**
 * Contract of the FLAME node broker adapter with the node message broker, checked on the recording
 * double: the paths, headers and bodies it sends, how it treats each status, retries on 5xx and
 * timeouts, acknowledgements lost on the way, fragments, token swaps, and what its webhook refuses.
 */
import { randomUUID } from 'node:crypto';
import { BadRequestError } from '../../src/errors.js';
import type { WireMessage } from '../../src/broker/port.js';
import { startFlameNodeDouble, type FlameNodeDouble } from '../helpers/flame-node-double.js';
import { collector, wireMessage } from '../broker/conformance.js';
import { openFlameNodeBroker, type OpenedNode } from './broker-setup.js';

const ANALYSIS = 'analysis-contract';
let double: FlameNodeDouble;
let opened: OpenedNode[];

beforeEach(async () => {
  double = await startFlameNodeDouble({
    analysisId: ANALYSIS,
    nodes: [
      { nodeId: 'agg', nodeType: 'aggregator' },
      { nodeId: 'n1', nodeType: 'default' },
      { nodeId: 'n2', nodeType: 'default' },
    ],
  });
  opened = [];
});

afterEach(async () => {
  for (const o of opened) {
    await o.adapter.close();
    await o.server.close();
  }
  await double.close();
});

async function open(nodeId: string, extra: Parameters<typeof openFlameNodeBroker>[2] = {}): Promise<OpenedNode> {
  const o = await openFlameNodeBroker(double, nodeId, extra);
  opened.push(o);
  return o;
}

const json = (b: Buffer): Record<string, unknown> => JSON.parse(b.toString('utf8')) as Record<string, unknown>;
const base = `/message-broker/analyses/${ANALYSIS}`;

describe('FLAME node broker adapter: contract with the node message broker', () => {
  it('learns who it is from participants/self and subscribes its webhook, with the bearer token', async () => {
    const n1 = await open('n1');
    expect(await n1.adapter.self()).toEqual({ nodeId: 'n1', nodeType: 'default' });
    const [self] = double.requestsTo('n1', /participants\/self$/, 'GET');
    expect(self.path).toBe(`${base}/participants/self`);
    expect(self.headers.authorization).toBe(`Bearer ${double.token('n1')}`);
    expect(self.headers.accept).toBe('application/json');
    // Production's HTTP client is axios (the adapters take no client here, so this is the default).
    expect(self.headers['user-agent']).toMatch(/^axios\/1\./);
    const [sub] = double.requestsTo('n1', /messages\/subscriptions$/, 'POST');
    expect(json(sub.body)).toEqual({ webhookUrl: `http://127.0.0.1:${n1.server.port}/webhook` });
    expect(sub.headers['content-type']).toBe('application/json');
    expect(double.subscriptions('n1')).toHaveLength(1);
    expect(await (await open('agg')).adapter.self()).toEqual({ nodeId: 'agg', nodeType: 'aggregator' });
    // start() for another node than the broker says is refused.
    await expect(n1.adapter.start('n2', collector().handler)).rejects.toThrow(/broker says this pod is node n1/);
  });

  it("sends POST …/messages with one recipient and a python-SDK-style meta, and the recipient's webhook gets it", async () => {
    const n1 = await open('n1');
    const agg = await open('agg');
    const got = collector();
    await agg.adapter.start('agg', got.handler);
    const msg = wireMessage('n1', 'agg', 1, { category: 'intermediate_result' });
    await n1.adapter.publish(msg);
    await got.until(() => got.received.length === 1);
    const sends = double.requestsTo('n1', /\/messages$/, 'POST');
    expect(sends).toHaveLength(1);
    expect(sends[0].path).toBe(`${base}/messages`);
    expect(sends[0].status).toBe(202);
    expect(sends[0].headers['content-type']).toBe('application/json');
    const body = json(sends[0].body) as { recipients: string[]; message: { meta: Record<string, unknown>; flame_sdk: Record<string, unknown> } };
    expect(body.recipients).toEqual(['agg']);
    expect(body.message.meta).toMatchObject({ id: msg.id, sender: 'n1', category: 'intermediate_result', number: 1, akn_id: null, status: 'unread' });
    expect(body.message.flame_sdk).toMatchObject({ v: 1, kind: 'data', seq: 1, base: 1, part: 0, parts: 1, recipient: 'agg' });
    expect(Buffer.from(body.message.flame_sdk.body as string, 'base64').toString()).toBe('n1#1');
    // The receiver acknowledged through its own broker, to the sender only.
    await waitFor(() => double.requestsTo('agg', /\/messages$/, 'POST').some((r) => (json(r.body).message as { flame_sdk: { kind: string } }).flame_sdk.kind === 'ack'));
    const ack = double.requestsTo('agg', /\/messages$/, 'POST').map((r) => json(r.body) as { recipients: string[]; message: { flame_sdk: Record<string, unknown> } }).find((b) => b.message.flame_sdk.kind === 'ack')!;
    expect(ack.recipients).toEqual(['n1']);
    expect(ack.message.flame_sdk).toMatchObject({ seqs: [1], stream: body.message.flame_sdk.stream });
  });

  it('tries a send again on 5xx answers and delivers it once', async () => {
    const n1 = await open('n1');
    const agg = await open('agg');
    const got = collector();
    await agg.adapter.start('agg', got.handler);
    double.inject({ node: 'n1', method: 'POST', path: /\/messages$/, status: 503, times: 2 });
    await n1.adapter.publish(wireMessage('n1', 'agg', 1));
    expect(double.requestsTo('n1', /\/messages$/, 'POST').map((r) => r.status)).toEqual([503, 503, 202]);
    await got.until(() => got.received.length === 1);
    await sleep(600);
    expect(got.received).toHaveLength(1);
  });

  it('tries a send again when the broker does not answer in time', async () => {
    const n1 = await open('n1', { requestTimeoutMs: 300 });
    double.inject({ node: 'n1', method: 'POST', path: /\/messages$/, delayMs: 1500, times: 1 });
    const t = Date.now();
    await n1.adapter.publish(wireMessage('n1', 'agg', 1));
    expect(Date.now() - t).toBeGreaterThanOrEqual(280);
    expect(Date.now() - t).toBeLessThan(1400);
    expect(double.requestsTo('n1', /\/messages$/, 'POST').length).toBeGreaterThanOrEqual(2);
  });

  it('does not retry a 4xx answer, and says which status when 5xx answers outlast the retries', async () => {
    const n1 = await open('n1');
    await n1.adapter.self();
    double.inject({ node: 'n1', method: 'POST', path: /\/messages$/, status: 400, times: 1 });
    await expect(n1.adapter.publish(wireMessage('n1', 'agg', 1))).rejects.toBeInstanceOf(BadRequestError);
    expect(double.requestsTo('n1', /\/messages$/, 'POST')).toHaveLength(1);
    double.inject({ node: 'n1', method: 'POST', path: /\/messages$/, status: 502, times: 4 });
    await expect(n1.adapter.publish(wireMessage('n1', 'agg', 2))).rejects.toThrow(/answered 502 after 4 attempt/);
    expect(double.requestsTo('n1', /\/messages$/, 'POST')).toHaveLength(5);
    // A message to a node outside the analysis: the broker's 400 is final.
    await expect(n1.adapter.publish(wireMessage('n1', 'stranger', 3))).rejects.toThrow(/400.*invalid recipients stranger/);
  });

  it('sends a message again when its acknowledgement is lost, and the handler runs once', async () => {
    const n1 = await open('n1');
    const agg = await open('agg');
    const got = collector();
    await agg.adapter.start('agg', got.handler);
    // The aggregator's first acknowledgements fail at its broker (every attempt of one send).
    double.inject({ node: 'agg', method: 'POST', path: /\/messages$/, status: 500, times: 1 });
    const m = wireMessage('n1', 'agg', 1);
    await n1.adapter.publish(m);
    await got.until(() => got.received.length === 1);
    await waitFor(() => double.requestsTo('n1', /\/messages$/, 'POST').length >= 2, 5000);
    await sleep(500);
    expect(got.received.map((x) => x.id)).toEqual([m.id]);
    const sent = double.requestsTo('n1', /\/messages$/, 'POST').map((r) => (json(r.body).message as { meta: { id: string } }).meta.id);
    expect(sent.filter((id) => id === m.id).length).toBeGreaterThanOrEqual(2);
  });

  it('sends a body larger than one request as fragments under 256 KiB each and delivers it whole', async () => {
    const n1 = await open('n1');
    const agg = await open('agg');
    const got = collector();
    await agg.adapter.start('agg', got.handler);
    const body = new Uint8Array(300 * 1024).map((_, i) => (i * 7) & 0xff);
    await n1.adapter.publish(wireMessage('n1', 'agg', 1, { body }));
    await got.until(() => got.received.length === 1);
    expect(Buffer.from(got.received[0].body).equals(Buffer.from(body))).toBe(true);
    const sends = double.requestsTo('n1', /\/messages$/, 'POST');
    expect(sends).toHaveLength(3);
    for (const s of sends) expect(s.body.byteLength).toBeLessThan(256 * 1024);
    expect(sends.map((s) => (json(s.body).message as { flame_sdk: { part: number } }).flame_sdk.part)).toEqual([0, 1, 2]);
  });

  it('uses a swapped token for every later request, without dropping messages under way', async () => {
    const n1 = await open('n1');
    const agg = await open('agg');
    const got = collector();
    await agg.adapter.start('agg', got.handler);
    await n1.adapter.publish(wireMessage('n1', 'agg', 1));
    const old = n1.token.get();
    const fresh = double.issueToken('n1');
    n1.token.set(fresh);
    double.revokeToken('n1', old);
    await n1.adapter.publish(wireMessage('n1', 'agg', 2));
    await got.until(() => got.received.length === 2);
    const sends = double.requestsTo('n1', /\/messages$/, 'POST');
    expect(sends[0].headers.authorization).toBe(`Bearer ${old}`);
    expect(sends.at(-1)!.headers.authorization).toBe(`Bearer ${fresh}`);
    expect(sends.every((s) => s.status === 202)).toBe(true);
  });

  it('removes its webhook subscription on close', async () => {
    const n1 = await open('n1');
    await n1.adapter.self();
    const [sub] = double.subscriptions('n1');
    await n1.adapter.close();
    const del = double.requestsTo('n1', /subscriptions\//, 'DELETE');
    expect(del.map((r) => r.path)).toEqual([`${base}/messages/subscriptions/${sub.subscriptionId}`]);
    expect(double.subscriptions('n1')).toEqual([]);
  });

  it('lists participants as announced, and knows the analysis nodes from the broker', async () => {
    const n1 = await open('n1');
    const agg = await open('agg');
    await agg.adapter.self();
    const lastSeen = new Date().toISOString();
    await n1.adapter.announce({ nodeId: 'n1', role: 'analyzer', lastSeen });
    expect(await agg.adapter.participants()).toEqual([{ nodeId: 'n1', role: 'analyzer', lastSeen }]);
    expect(await n1.adapter.brokerParticipants()).toEqual([
      { nodeId: 'agg', nodeType: 'aggregator' },
      { nodeId: 'n1', nodeType: 'default' },
      { nodeId: 'n2', nodeType: 'default' },
    ]);
    await expect(n1.adapter.announce({ nodeId: 'agg', role: 'aggregator', lastSeen })).rejects.toThrow(/agg is not this node/);
  });

  it('webhook: refuses malformed and oversized bodies, ignores messages for another node', async () => {
    const agg = await open('agg');
    const refused: string[] = [];
    await agg.adapter.start('agg', collector().handler, { onRefused: (r) => refused.push(r.reason) });
    const url = `http://127.0.0.1:${agg.server.port}/webhook`;
    const post = (body: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect((await post('not json')).status).toBe(400);
    expect((await post(JSON.stringify({ meta: { sender: 'n1' } }))).status).toBe(400);
    const res = await post(JSON.stringify({ meta: { id: 'x', sender: 'n1', category: 'c', number: 1 }, flame_sdk: { v: 1, kind: 'data', recipient: 'agg', stream: 'abcdefgh12', seq: 1, base: 1, part: 0, parts: 99, time: new Date().toISOString(), body: '' } }));
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/flame_sdk\.parts/);
    expect((await post('x'.repeat(400 * 1024))).status).toBe(413);
    const other: WireMessage = wireMessage('n1', 'n2', 1);
    const forOther = { meta: { id: other.id, sender: 'n1', category: 'message', number: 1 }, flame_sdk: { v: 1, kind: 'data', recipient: 'n2', stream: 'abcdefgh12', seq: 1, base: 1, part: 0, parts: 1, time: other.time, body: '' } };
    expect((await post(JSON.stringify(forOther))).status).toBe(200);
    expect(refused).toEqual(['addressed to n2, not agg']);
  });

  it('a message whose fields break the port rules is refused before the handler and not sent again', async () => {
    const agg = await open('agg');
    await agg.adapter.self();
    const refused: string[] = [];
    const got = collector();
    await agg.adapter.start('agg', got.handler, { onRefused: (r) => refused.push(r.reason) });
    const url = `http://127.0.0.1:${agg.server.port}/webhook`;
    const bad = { meta: { id: randomUUID(), sender: 'n1', category: 'bad\ncategory', number: 1 }, flame_sdk: { v: 1, kind: 'data', recipient: 'agg', stream: 'abcdefgh12', seq: 1, base: 1, part: 0, parts: 1, time: new Date().toISOString(), body: '' } };
    expect((await fetch(url, { method: 'POST', body: JSON.stringify(bad) })).status).toBe(200);
    await waitFor(() => refused.length === 1);
    expect(refused[0]).toMatch(/message\.category/);
    expect(got.attempts.size).toBe(0);
    // …and acknowledged, so a sender stops resending it.
    await waitFor(() => double.requestsTo('agg', /\/messages$/, 'POST').length === 1);
    expect((json(double.requestsTo('agg', /\/messages$/, 'POST')[0].body).message as { flame_sdk: { kind: string } }).flame_sdk.kind).toBe('ack');
  });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(20);
  }
}
