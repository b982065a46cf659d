/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * The image diagnosis as real node processes on a FLAME node's services: `flame run` in three
 * analyzer processes and an aggregator, configured only by FLAME's environment, each hospital's
 * images served by its Kong as an S3 data source, while the test plays the orchestrator's status
 * loop (`/healthz`, and `/token_refresh` every few seconds with short-lived tokens, the old one
 * revoked after each). The response and every hospital's own verdicts must equal the same split on
 * NATS + S3.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { flaggedPaths, type DiagnosisResult } from '../../analyses/image-diagnosis/index.js';
import { REPO_ROOT, type CliRun } from '../cli/run-cli.js';
import { makeFederation } from '../helpers/federation.js';
import { startFlameNodeDouble, type DoubleDataSource } from '../helpers/flame-node-double.js';
import { NATS_URL } from '../helpers/nats.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { offSchemaHealthz, outcome, runAnalysis, startPods } from './node-processes.js';

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3Server(['diagnode-hub']);
});
afterAll(() => s3.close());

const ANALYZERS = ['node-a', 'node-b', 'node-c'];
const TASKS = ['mislabeled_images', 'lighting_conditions', 'duplicates'] as const;
// Few folds and rounds keep the run short; the protocol is the same.
const OPTIONS = JSON.stringify({ tasks: [...TASKS], folds: 3, datasetUuid: 'sample' });
const SAMPLE = path.join(REPO_ROOT, 'data/sample');

function runNode(env: Record<string, string>): Promise<CliRun> {
  return runAnalysis('analyses/image-diagnosis/index.ts', env, 120_000);
}

/** `dir`'s files below it, keyed by their relative path with `/` (as an S3 bucket holds them). */
async function objectsOf(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const rel of (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile())) {
    const file = path.join(rel.parentPath, rel.name);
    out[path.relative(dir, file).split(path.sep).join('/')] = await fs.readFile(file);
  }
  return out;
}

interface Printed {
  role: string;
  result: { phase: string; result: DiagnosisResult };
}

/** The same split on NATS + an S3 hub, each hospital's images a folder data source named `images`. */
async function onNats(): Promise<CliRun[]> {
  const analysisId = `diagnode-nats-${randomUUID().slice(0, 8)}`;
  const dir = path.join('/tmp', analysisId);
  const localDir = (id: string): string => path.join(dir, id);
  const federation = await makeFederation({ dir, analysisId, nodes: [...ANALYZERS, 'agg'], aggregatorId: 'agg', localDir });
  const env = (id: string, data: boolean) => ({
    FLAME_ANALYSIS_ID: analysisId,
    FLAME_PARTICIPANTS: [...ANALYZERS, 'agg'].join(','),
    FLAME_AGGREGATOR_ID: 'agg',
    FLAME_NATS_URL: NATS_URL,
    FLAME_HUB_S3_ENDPOINT: s3.endpoint,
    FLAME_HUB_S3_BUCKET: 'diagnode-hub',
    FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    FLAME_LOG_LEVEL: 'warn',
    FLAME_MIN_COUNT: '3',
    DIAGNOSIS_OPTIONS: OPTIONS,
    ...federation.env,
    FLAME_NODE_ID: id,
    FLAME_LOCAL_DIR: localDir(id),
    FLAME_DATA_SOURCES: JSON.stringify(data ? [{ id: 'images', type: 'folder', path: path.join(SAMPLE, id) }] : []),
  });
  try {
    return await Promise.all([...ANALYZERS.map((id) => runNode(env(id, true))), runNode(env('agg', false))]);
  } finally {
    await NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId });
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test('three analyzers and an aggregator on the FLAME node double diagnose the images as on NATS + S3, through token refreshes', async () => {
  const tmp = path.join('/tmp', `diagnode-${randomUUID().slice(0, 8)}`);
  const objects: Record<string, Record<string, Buffer>> = {};
  const data: Record<string, DoubleDataSource[]> = {};
  for (const id of ANALYZERS) {
    objects[id] = await objectsOf(path.join(SAMPLE, id));
    // Paged listings, as a bucket of many images answers.
    data[id] = [{ name: 'images', type: 's3', objects: objects[id], pageSize: 40 }];
  }
  const double = await startFlameNodeDouble({
    analysisId: `diagnode-${randomUUID().slice(0, 8)}`,
    projectId: 'proj-diag',
    nodes: [...ANALYZERS.map((nodeId) => ({ nodeId, nodeType: 'default' as const })), { nodeId: 'agg', nodeType: 'aggregator' }],
    data,
    // The first token is refreshed at once, and each fresh one every few seconds: refreshes land mid-run.
    tokenLifetimeS: 15,
    refreshedTokenLifetimeS: 25,
  });
  const pods = await startPods(double, path.join(tmp, 'flame-node'));
  const extra = { FLAME_MIN_COUNT: '3', DIAGNOSIS_OPTIONS: OPTIONS };
  try {
    const nats = await onNats();
    for (const r of nats) expect(outcome(r)).toEqual({ code: 0, stderr: '' });

    const analyzers = ANALYZERS.map((id) => runNode(pods.env(id, extra)));
    // The aggregator comes once every analyzer was given a fresh token.
    await pods.waitForRefresh(ANALYZERS, 30_000);
    const aggStarted = Date.now();
    const runs = await Promise.all([...analyzers, runNode(pods.env('agg', extra))]);
    const ended = Date.now();
    await pods.stop();
    for (const r of runs) expect(outcome(r)).toEqual({ code: 0, stderr: '' });

    const out = JSON.parse(runs[3].stdout) as Printed & { result_id: string };
    const natsOut = JSON.parse(nats[3].stdout) as Printed & { result_id: string };
    expect({ role: out.role, phase: out.result.phase }).toEqual({ role: 'aggregator', phase: 'done' });
    const real = out.result.result;
    // The whole response is the same: verdicts, scores, projections, disclosure, per task.
    expect(real).toEqual(natsOut.result.result);
    expect(real.tasks.map((t) => t.name)).toEqual([...TASKS]);
    expect(flaggedPaths(real, 'lighting_conditions').size).toBe(15);
    expect(flaggedPaths(real, 'mislabeled_images').size).toBeGreaterThan(5);
    expect(real.disclosure).toMatchObject({ min_count: { 'node-a': 3, 'node-b': 3, 'node-c': 3 }, noise: null });
    // Each hospital printed the same own verdicts as on NATS.
    for (const [k, id] of ANALYZERS.entries()) {
      const printed = JSON.parse(runs[k].stdout) as Printed;
      expect({ id, role: printed.role, phase: printed.result.phase }).toEqual({ id, role: 'analyzer', phase: 'done' });
      expect(printed.result.result).toEqual((JSON.parse(nats[k].stdout) as Printed).result.result);
    }

    for (const id of [...ANALYZERS, 'agg']) {
      const seen = pods.seen[id];
      // /healthz answered in the orchestrator's schema throughout, executing while it ran.
      expect(seen.healthz.length).toBeGreaterThan(3);
      expect({ id, offSchema: offSchemaHealthz(seen) }).toEqual({ id, offSchema: [] });
      expect(seen.statuses).toContain('executing');
      expect(seen.statuses).not.toContain('failed');
      // Refreshed while the federated work ran (after the aggregator came), the old token revoked each time.
      expect({ id, refreshedMidRun: seen.refreshedAt.some((t) => t > aggStarted + 1000 && t < ended - 1000) }).toEqual({ id, refreshedMidRun: true });
      // No request was turned away for an old token.
      expect(double.requests.filter((r) => r.node === id && r.status === 401).map((r) => `${r.method} ${r.path}`)).toEqual([]);
    }
    // Every image was read through Kong, listing and object by object.
    for (const id of ANALYZERS) {
      expect(double.requestsTo(id, /^\/kong\/images\/s3$/).length).toBeGreaterThanOrEqual(2);
      const read = new Set(double.requestsTo(id, /^\/kong\/images\/s3\/./).map((r) => decodeURIComponent(r.path.slice('/kong/images/s3/'.length))));
      expect([...read].sort()).toEqual(Object.keys(objects[id]).filter((k) => k.endsWith('.png')).sort());
    }
    expect(double.finals.length).toBeGreaterThanOrEqual(1);
    expect(double.finals.every((f) => f.node === 'agg')).toBe(true);
  } finally {
    await pods.stop();
    await double.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}, 180_000);
