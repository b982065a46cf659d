/**
 * The pod's side of the orchestrator's contract, on the double: `/healthz` in its schema,
 * `/token_refresh` mid-run while messages flow, `/partner_status`, and logs streamed to
 * `/po/stream_logs` as well as written locally.
 */
import { RunState } from '../../src/health.js';
import { createLogger } from '../../src/logger.js';
import { connectFlameNode } from '../../src/flame-node/assembly.js';
import { mountLifecycle, orchestratorStatus } from '../../src/flame-node/lifecycle.js';
import { OrchestratorLogStream } from '../../src/flame-node/orchestrator-logs.js';
import { startFlameNodeDouble, type FlameNodeDouble } from '../helpers/flame-node-double.js';
import { collector, wireMessage } from '../broker/conformance.js';
import { openFlameNodeBroker, type OpenedNode } from './broker-setup.js';
import { freePort } from './node-processes.js';

let double: FlameNodeDouble;
const opened: OpenedNode[] = [];

beforeEach(async () => {
  double = await startFlameNodeDouble({
    analysisId: 'an-life',
    nodes: [{ nodeId: 'agg', nodeType: 'aggregator' }, { nodeId: 'n1', nodeType: 'default' }],
    tokenLifetimeS: 15,
  });
});
afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.adapter.close();
    await o.server.close();
  }
  await double.close();
});

async function open(nodeId: string): Promise<OpenedNode> {
  const o = await openFlameNodeBroker(double, nodeId);
  opened.push(o);
  return o;
}

describe('FLAME node lifecycle: what the pod orchestrator sees', () => {
  it("answers /healthz in the orchestrator's schema, always 200, starting reported as executing", async () => {
    const n1 = await open('n1');
    const state = new RunState();
    mountLifecycle({ server: n1.server, token: n1.token, status: () => state.status });
    const url = `http://127.0.0.1:${n1.server.port}`;
    const first = await double.orchestratorTick('n1', url, 0);
    expect(first.raw).toEqual({ status: 'executing', token_remaining_time: expect.any(Number) });
    expect(first.raw.token_remaining_time).toBeGreaterThan(5);
    expect(first.raw.token_remaining_time).toBeLessThanOrEqual(15);
    expect(first.status).toBe('executing');
    state.setStatus('failed', new Error('boom'));
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect((await res.json()) as unknown).toMatchObject({ status: 'failed' });
    expect(orchestratorStatus('stuck')).toBe('stuck');
    expect(orchestratorStatus('executed')).toBe('executed');
  });

  it('serves /healthz (a starting pod, as executing) and /token_refresh from the moment the pod listens, before the run mounts its own', async () => {
    const port = await freePort();
    // The broker is slow to take the subscription: the pod listens, but the connection is not done.
    double.inject({ node: 'n1', method: 'POST', path: /\/messages\/subscriptions$/, delayMs: 1500, times: 1 });
    const connecting = connectFlameNode({ type: 'flame-node', nginxUrl: double.nginxUrl('n1'), analysisUrl: `http://127.0.0.1:${port}`, port, keycloakToken: double.token('n1') }, 'an-life', 'proj');
    const url = `http://127.0.0.1:${port}`;
    try {
      const deadline = Date.now() + 10_000;
      let tick: Awaited<ReturnType<FlameNodeDouble['orchestratorTick']>> | undefined;
      while (!tick && Date.now() < deadline) tick = await double.orchestratorTick('n1', url).catch(() => new Promise<undefined>((r) => setTimeout(() => r(undefined), 20)));
      expect(double.subscriptions('n1')).toEqual([]);
      expect({ http: tick?.httpStatus, raw: tick?.raw }).toEqual({ http: 200, raw: { status: 'executing', token_remaining_time: expect.any(Number) } });
      // 15 s left, under the orchestrator's threshold: it refreshed, and the pod took the fresh token.
      expect(tick?.refreshedTo).toBeDefined();
      const parts = await connecting;
      expect(parts.token.get()).toBe(tick?.refreshedTo);
      expect(double.subscriptions('n1').length).toBe(1);
    } finally {
      const parts = await connecting.catch(() => undefined);
      await parts?.broker.close();
      await parts?.server.close();
    }
  });

  it('takes a refreshed token mid-run: later requests carry it, and no message is lost across the swap', async () => {
    const n1 = await open('n1');
    const agg = await open('agg');
    mountLifecycle({ server: n1.server, token: n1.token, status: () => 'executing' });
    const got = collector();
    await agg.adapter.start('agg', got.handler);
    const oldToken = n1.token.get();
    const sending = (async () => {
      for (let i = 1; i <= 30; i++) {
        await n1.adapter.publish(wireMessage('n1', 'agg', i));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 40));
    // The token has 15 s left, under the orchestrator's threshold of 21 s: it refreshes.
    const tick = await double.orchestratorTick('n1', `http://127.0.0.1:${n1.server.port}`);
    expect(tick.refreshedTo).toBeDefined();
    double.revokeToken('n1', oldToken);
    await sending;
    await got.until(() => got.received.length === 30);
    expect(got.received.map((m) => m.message_number)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const sends = double.requestsTo('n1', /\/messages$/, 'POST');
    expect(sends.some((r) => r.headers.authorization === `Bearer ${oldToken}`)).toBe(true);
    expect(sends.at(-1)!.headers.authorization).toBe(`Bearer ${tick.refreshedTo}`);
    expect(sends.filter((r) => r.status === 401)).toEqual([]);
    const after = await double.orchestratorTick('n1', `http://127.0.0.1:${n1.server.port}`, 0);
    expect(after.raw.token_remaining_time).toBeGreaterThan(3000);
  });

  it('refuses a token_refresh without a token, and keeps the old one', async () => {
    const n1 = await open('n1');
    mountLifecycle({ server: n1.server, token: n1.token, status: () => 'executing' });
    const before = n1.token.get();
    const r = await fetch(`http://127.0.0.1:${n1.server.port}/token_refresh`, { method: 'POST', body: JSON.stringify({ nope: 1 }) });
    expect(r.status).toBe(400);
    expect(n1.token.get()).toBe(before);
  });

  it('hears partner statuses and answers with its own', async () => {
    const n1 = await open('n1');
    const heard: Array<Record<string, string>> = [];
    mountLifecycle({ server: n1.server, token: n1.token, status: () => 'executed', onPartnerStatus: (s) => heard.push(s) });
    const answer = await double.postPartnerStatus(`http://127.0.0.1:${n1.server.port}`, { agg: 'executing', n2: 'failed', bad: 'NOT A STATUS' });
    expect(answer).toEqual({ status: 'executed' });
    expect(heard).toEqual([{ agg: 'executing', n2: 'failed' }]);
  });

  it('streams log lines to the orchestrator in its schema, in order, as well as locally', async () => {
    const local: string[] = [];
    const n1Token = (await open('n1')).token;
    const stream = new OrchestratorLogStream({
      poUrl: `${double.nginxUrl('n1')}/po`,
      analysisId: 'an-life',
      token: n1Token,
      state: () => ({ status: 'executing', progress: 42.4 }),
      local: (line) => local.push(line),
    });
    const log = createLogger('debug', { node: 'n1' }, stream.sink);
    log.info('round done', { round: 3 });
    log.warn('slow peer', { peer: 'agg' });
    log.debug('detail');
    await stream.flush();
    expect(local).toHaveLength(3);
    expect(double.logs).toEqual([
      { node: 'n1', log: 'round done node=n1 round=3', log_type: 'info', analysis_id: 'an-life', status: 'executing', progress: 42 },
      { node: 'n1', log: 'slow peer node=n1 peer=agg', log_type: 'warn', analysis_id: 'an-life', status: 'executing', progress: 42 },
      { node: 'n1', log: 'detail node=n1', log_type: 'debug', analysis_id: 'an-life', status: 'executing', progress: 42 },
    ]);
    expect(double.requestsTo('n1', /^\/po\/stream_logs$/).every((r) => r.headers.authorization === `Bearer ${n1Token.get()}`)).toBe(true);
    // An orchestrator that fails does not hold the analysis up: the line is still written locally, then counted as dropped.
    double.inject({ node: 'n1', path: /^\/po\/stream_logs$/, status: 500, times: 3 });
    log.error('failing');
    expect(local).toHaveLength(4);
    await stream.flush();
    expect(stream.dropped).toBe(1);
  });
});
