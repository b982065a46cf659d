/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * The diagnosis as real node processes: three hospitals and the aggregator, each `flame run` on
 * NATS JetStream + an S3 API hub, configured by FLAME_* env (data: a folder data source per node).
 * Their response flags the same files as the simulated run over the same data sources, and each
 * hospital's process ends with its own verdicts only (none of another hospital's paths or uuids).
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { diagnose, flaggedPaths, type DiagnosisResult } from '../../analyses/image-diagnosis/index.js';
import { runCli, type CliRun } from '../cli/run-cli.js';
import { makeFederation } from '../helpers/federation.js';
import { NATS_URL } from '../helpers/nats.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3Server(['diag-hub']);
});
afterAll(() => s3.close());

const NODES = ['node-a', 'node-b', 'node-c'];
const TASKS = ['mislabeled_images', 'lighting_conditions', 'duplicates'] as const;
// Few folds keep the run short; the protocol is the same.
const OPTIONS = { tasks: [...TASKS], folds: 3, datasetUuid: 'sample' };

function runNode(env: Record<string, string>): Promise<CliRun> {
  return runCli(['run', 'analyses/image-diagnosis/index.ts', '--timeout-ms', '60000'], env);
}

const source = (id: string) => [{ id: 'images', type: 'folder' as const, path: path.resolve('data/sample', id) }];

test('3 node processes + aggregator on NATS + S3 flag the same images as the simulation', async () => {
  const analysisId = `diag-${randomUUID().slice(0, 8)}`;
  const common = {
    FLAME_ANALYSIS_ID: analysisId,
    FLAME_PARTICIPANTS: [...NODES, 'agg'].join(','),
    FLAME_AGGREGATOR_ID: 'agg',
    FLAME_NATS_URL: NATS_URL,
    FLAME_HUB_S3_ENDPOINT: s3.endpoint,
    FLAME_HUB_S3_BUCKET: 'diag-hub',
    FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    FLAME_LOG_LEVEL: 'warn',
    FLAME_MIN_COUNT: '3',
    DIAGNOSIS_OPTIONS: JSON.stringify(OPTIONS),
  };
  const localDir = (id: string): string => path.join('/tmp', analysisId, id);
  const federation = await makeFederation({ dir: path.join('/tmp', analysisId), analysisId, nodes: [...NODES, 'agg'], aggregatorId: 'agg', localDir });
  const env = (id: string, data: boolean) => ({
    ...common,
    ...federation.env,
    FLAME_NODE_ID: id,
    FLAME_LOCAL_DIR: localDir(id),
    FLAME_DATA_SOURCES: JSON.stringify(data ? source(id) : []),
  });
  try {
    const [simulated, runs] = await Promise.all([
      diagnose({ dataset_uuid: 'sample', tasks: TASKS.map((name) => ({ name })) }, { folds: 3, disclosure: { minCount: 3 }, nodes: NODES.map((id) => ({ id, dataSources: source(id) })) }),
      Promise.all([...NODES.map((id) => runNode(env(id, true))), runNode(env('agg', false))]),
    ]);
    for (const r of runs) expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    const out = JSON.parse(runs[3].stdout) as { role: string; result_id: string; result: { phase: string; result: DiagnosisResult } };
    expect(out.role).toBe('aggregator');
    expect(typeof out.result_id).toBe('string');
    expect(out.result.phase).toBe('done');
    const real = out.result.result;
    expect(real.dataset_uuid).toBe('sample');
    for (const t of TASKS) {
      // Keys are relative to each node's source: compare node/path.
      const key = (r: DiagnosisResult): string[] =>
        Object.values(r.tasks.find((x) => x.name === t)!.datasets.outliers.class_files)
          .flatMap((files) => Object.values(files).map((f) => `${f.node}/${f.path}`))
          .sort();
      expect({ t, flagged: key(real) }).toEqual({ t, flagged: key(simulated) });
      expect(flaggedPaths(real, t).size).toBe(flaggedPaths(simulated, t).size);
    }
    expect(flaggedPaths(real, 'lighting_conditions').size).toBe(15);
    expect(flaggedPaths(real, 'mislabeled_images').size).toBeGreaterThan(5);
    expect(real.disclosure).toMatchObject({ min_count: { 'node-a': 3, 'node-b': 3, 'node-c': 3 }, noise: null });

    // Each hospital's process printed its own verdicts, and nothing of the other hospitals' files.
    const files = (r: DiagnosisResult, node?: string) =>
      [...Object.values(r.tasks[0].datasets.outliers.class_files), ...Object.values(r.tasks[0].datasets.inliers.class_files)]
        .flatMap((byPath) => Object.values(byPath))
        .filter((f) => node === undefined || f.node === node);
    for (const [k, node] of NODES.entries()) {
      const printed = JSON.parse(runs[k].stdout) as { role: string; result: { phase: string; result: DiagnosisResult } };
      expect({ role: printed.role, phase: printed.result.phase }).toEqual({ role: 'analyzer', phase: 'done' });
      const own = files(printed.result.result);
      expect(own.length).toBe(files(real, node).length);
      expect(own.every((f) => f.node === node)).toBe(true);
      const foreign = files(real).filter((f) => f.node !== node);
      expect(foreign.length).toBe(200);
      const leaked = foreign.filter((f) => runs[k].stdout.includes(`"${f.path}"`) || runs[k].stdout.includes(f.uuid));
      expect({ node, leaked: leaked.length }).toEqual({ node, leaked: 0 });
    }
  } finally {
    await NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId });
  }
}, 120_000);
