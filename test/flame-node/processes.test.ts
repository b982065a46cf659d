/**
 * The federated mean as real node processes on a FLAME node's services: `flame run` in three analyzer
 * processes and an aggregator, configured only by FLAME's environment (ANALYSIS_ID, PROJECT_ID,
 * KEYCLOAK_TOKEN, DATA_SOURCE_TOKEN, DEPLOYMENT_NAME; the nginx URL points at the double), reading
 * their data through Kong, while the test plays the orchestrator's status loop (`/healthz`, and
 * `/token_refresh` mid-run, after which the old token is revoked). The result must equal the same
 * analysis on NATS.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { runCli, REPO_ROOT, type CliRun } from '../cli/run-cli.js';
import { NATS_URL } from '../helpers/nats.js';
import { startFlameNodeDouble } from '../helpers/flame-node-double.js';

const ANALYZERS = ['node-a', 'node-b', 'node-c'];

function runNode(env: Record<string, string>): Promise<CliRun> {
  return runCli(['run', 'analyses/federated-mean/index.ts', '--timeout-ms', '60000'], env);
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function ok(r: CliRun): { code: number; stderr: string } {
  return { code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-3000) };
}

test('three analyzers and an aggregator on the FLAME node double compute the same federated mean as on NATS', async () => {
  const tmp = path.join('/tmp', `flamenode-proc-${randomUUID().slice(0, 8)}`);
  // ---- on NATS (first-use trust on both, so only the transport differs) ----
  const natsAnalysis = `fn-nats-${randomUUID().slice(0, 8)}`;
  let natsOut: Record<string, unknown>;
  try {
    const common = { FLAME_ANALYSIS_ID: natsAnalysis, FLAME_PARTICIPANTS: [...ANALYZERS, 'agg'].join(','), FLAME_AGGREGATOR_ID: 'agg', FLAME_NATS_URL: NATS_URL, FLAME_TRUST: 'tofu', FLAME_HUB_DIR: path.join(tmp, 'nats-hub'), FLAME_LOG_LEVEL: 'info' };
    const node = (id: string, data?: string) => ({
      ...common,
      FLAME_NODE_ID: id,
      FLAME_LOCAL_DIR: path.join(tmp, 'nats', id),
      FLAME_DATA_SOURCES: JSON.stringify(data ? [{ id: 'values', type: 'folder', path: path.join(REPO_ROOT, 'data/example', data) }] : []),
    });
    const runs = await Promise.all([...ANALYZERS.map((id) => runNode(node(id, id))), runNode(node('agg'))]);
    for (const r of runs) expect(ok(r)).toEqual({ code: 0, stderr: '' });
    natsOut = JSON.parse(runs[3].stdout) as Record<string, unknown>;
  } finally {
    await NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId: natsAnalysis });
  }

  // ---- on the FLAME node double ----
  const data: Record<string, Array<{ name: string; type: 's3'; objects: Record<string, Buffer> }>> = {};
  for (const id of ANALYZERS) data[id] = [{ name: 'values', type: 's3', objects: { 'ages.csv': await fs.readFile(path.join(REPO_ROOT, 'data/example', id, 'ages.csv')) } }];
  const double = await startFlameNodeDouble({
    analysisId: `fn-${randomUUID().slice(0, 8)}`,
    projectId: 'proj-fn',
    nodes: [...ANALYZERS.map((nodeId) => ({ nodeId, nodeType: 'default' as const })), { nodeId: 'agg', nodeType: 'aggregator' }],
    data,
    tokenLifetimeS: 15,
  });
  const ports: Record<string, number> = {};
  for (const id of [...ANALYZERS, 'agg']) ports[id] = await freePort();
  const env = (id: string) => ({
    ANALYSIS_ID: double.options.analysisId,
    PROJECT_ID: 'proj-fn',
    KEYCLOAK_TOKEN: double.token(id),
    DATA_SOURCE_TOKEN: 'ds-token',
    DEPLOYMENT_NAME: `analysis-${id}`,
    // What nginx-<DEPLOYMENT_NAME> and its /analysis/ forward are in a deployment:
    FLAME_NODE_NGINX_URL: double.nginxUrl(id),
    FLAME_NODE_PORT: String(ports[id]),
    FLAME_NODE_ANALYSIS_URL: `http://127.0.0.1:${ports[id]}`,
    FLAME_TRUST: 'tofu',
    FLAME_STATE_DIR: path.join(tmp, 'flame-node', id),
    FLAME_LOG_LEVEL: 'info',
  });
  // The orchestrator's status loop, per node, until the runs end.
  const seen: Record<string, { statuses: string[]; refreshed: number }> = Object.fromEntries([...ANALYZERS, 'agg'].map((id) => [id, { statuses: [], refreshed: 0 }]));
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const id of Object.keys(seen)) {
        try {
          const old = double.token(id);
          const tick = await double.orchestratorTick(id, `http://127.0.0.1:${ports[id]}`);
          seen[id].statuses.push(tick.status);
          if (tick.refreshedTo) {
            seen[id].refreshed += 1;
            // The old token stops working soon after (requests already under way may still carry it).
            setTimeout(() => double.revokeToken(id, old), 1500);
          }
        } catch {
          // not listening (yet, or any more)
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    const analyzers = ANALYZERS.map((id) => runNode(env(id)));
    // The aggregator comes last, so the analyzers wait (and are polled) for a while first.
    const deadline = Date.now() + 30_000;
    while (ANALYZERS.some((id) => seen[id].refreshed === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const agg = runNode(env('agg'));
    const runs = await Promise.all([...analyzers, agg]);
    running = false;
    await loop;
    for (const r of runs) expect(ok(r)).toEqual({ code: 0, stderr: '' });
    const out = JSON.parse(runs[3].stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ node_id: 'agg', role: 'aggregator', rounds: 2 });
    expect(out.result).toEqual(natsOut.result);
    expect((out.result as { perNode: Record<string, number> }).perNode).toEqual({ 'node-a': 120, 'node-b': 80, 'node-c': 150 });
    for (const id of ANALYZERS) {
      expect(JSON.parse(runs[ANALYZERS.indexOf(id)].stdout)).toMatchObject({ node_id: id, role: 'analyzer', result: out.result });
      // Polled while waiting, as executing, and given a fresh token; the old one was revoked and the run went on.
      expect(seen[id].statuses).toContain('executing');
      expect(seen[id].refreshed).toBeGreaterThanOrEqual(1);
      expect(double.requestsTo(id, /\/messages$/, 'POST').filter((r) => r.status === 401).map((r) => r.path)).toEqual([]);
      expect(double.requestsTo(id, /^\/kong\/values\/s3\/ages\.csv$/).length).toBeGreaterThanOrEqual(1);
    }
    // Logs went to each node's orchestrator too; the final result to the hub.
    for (const id of [...ANALYZERS, 'agg']) expect(double.logs.filter((l) => l.node === id && l.log.startsWith('node connected')).length).toBe(1);
    expect(double.finals.length).toBeGreaterThanOrEqual(1);
    expect(double.finals.every((f) => f.node === 'agg')).toBe(true);
  } finally {
    running = false;
    await loop;
    await double.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}, 180_000);
