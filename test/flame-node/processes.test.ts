/**
 * The federated mean as real node processes on a FLAME node's services: `flame run` in three analyzer
 * processes and an aggregator, configured only by FLAME's environment (ANALYSIS_ID, PROJECT_ID,
 * KEYCLOAK_TOKEN, DATA_SOURCE_TOKEN, DEPLOYMENT_NAME; the nginx URL points at the double), reading
 * their data through Kong, while the test plays the orchestrator's status loop (`/healthz`, and
 * `/token_refresh` mid-run, after which the old token is revoked). The result must equal the same
 * analysis on NATS.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { REPO_ROOT, type CliRun } from '../cli/run-cli.js';
import { NATS_URL } from '../helpers/nats.js';
import { startFlameNodeDouble } from '../helpers/flame-node-double.js';
import { offSchemaHealthz, outcome as ok, runAnalysis, startPods } from './node-processes.js';

const ANALYZERS = ['node-a', 'node-b', 'node-c'];

function runNode(env: Record<string, string>): Promise<CliRun> {
  return runAnalysis('analyses/federated-mean/index.ts', env);
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
  const pods = await startPods(double, path.join(tmp, 'flame-node'));
  const { env, seen } = pods;
  try {
    const analyzers = ANALYZERS.map((id) => runNode(env(id)));
    // The aggregator comes last, so the analyzers wait (and are polled) for a while first.
    await pods.waitForRefresh(ANALYZERS, 30_000);
    const agg = runNode(env('agg'));
    const runs = await Promise.all([...analyzers, agg]);
    await pods.stop();
    for (const r of runs) expect(ok(r)).toEqual({ code: 0, stderr: '' });
    const out = JSON.parse(runs[3].stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ node_id: 'agg', role: 'aggregator', rounds: 2 });
    expect(out.result).toEqual(natsOut.result);
    expect((out.result as { perNode: Record<string, number> }).perNode).toEqual({ 'node-a': 120, 'node-b': 80, 'node-c': 150 });
    for (const id of ANALYZERS) {
      expect(JSON.parse(runs[ANALYZERS.indexOf(id)].stdout)).toMatchObject({ node_id: id, role: 'analyzer', result: out.result });
      // Polled while waiting, as executing, and given a fresh token; the old one was revoked and the run went on.
      expect(seen[id].statuses).toContain('executing');
      expect({ id, offSchema: offSchemaHealthz(seen[id]) }).toEqual({ id, offSchema: [] });
      expect(seen[id].refreshed).toBeGreaterThanOrEqual(1);
      expect(double.requestsTo(id, /\/messages$/, 'POST').filter((r) => r.status === 401).map((r) => r.path)).toEqual([]);
      expect(double.requestsTo(id, /^\/kong\/values\/s3\/ages\.csv$/).length).toBeGreaterThanOrEqual(1);
    }
    // Logs went to each node's orchestrator too; the final result to the hub.
    for (const id of [...ANALYZERS, 'agg']) expect(double.logs.filter((l) => l.node === id && l.log.startsWith('node connected')).length).toBe(1);
    expect(double.finals.length).toBeGreaterThanOrEqual(1);
    expect(double.finals.every((f) => f.node === 'agg')).toBe(true);
  } finally {
    await pods.stop();
    await double.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}, 180_000);
