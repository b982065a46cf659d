/**
 * The same analysis as real node processes: `flame run` in three child processes (two hospitals and
 * the aggregator) on NATS JetStream + an S3 API hub, configured by FLAME_* env only.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { runCli, type CliRun } from '../cli/run-cli.js';
import { makeFederation } from '../helpers/federation.js';
import { NATS_URL } from '../helpers/nats.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3Server(['proc-hub']);
});
afterAll(() => s3.close());

function runNode(env: Record<string, string>): Promise<CliRun> {
  return runCli(['run', 'analyses/federated-mean/index.ts', '--timeout-ms', '30000'], env);
}

test('three node processes on NATS + S3 compute the federated mean', async () => {
  const analysisId = `proc-${randomUUID().slice(0, 8)}`;
  const common = {
    FLAME_ANALYSIS_ID: analysisId,
    FLAME_PARTICIPANTS: 'node-a,node-b,agg',
    FLAME_AGGREGATOR_ID: 'agg',
    FLAME_NATS_URL: NATS_URL,
    FLAME_HUB_S3_ENDPOINT: s3.endpoint,
    FLAME_HUB_S3_BUCKET: 'proc-hub',
    FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    FLAME_LOG_LEVEL: 'info',
  };
  const localDir = (id: string): string => path.join('/tmp', analysisId, id);
  const federation = await makeFederation({ dir: path.join('/tmp', analysisId), analysisId, nodes: ['node-a', 'node-b', 'agg'], aggregatorId: 'agg', localDir });
  const node = (id: string, data?: string) => ({
    ...common,
    ...federation.env,
    FLAME_NODE_ID: id,
    FLAME_LOCAL_DIR: localDir(id),
    FLAME_DATA_SOURCES: JSON.stringify(data ? [{ id: 'values', type: 'folder', path: path.resolve('data/example', data) }] : []),
  });
  try {
    const [ra, rb, ragg] = await Promise.all([runNode(node('node-a', 'node-a')), runNode(node('node-b', 'node-b')), runNode(node('agg'))]);
    for (const r of [ra, rb, ragg]) expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    const out = JSON.parse(ragg.stdout);
    expect(out).toMatchObject({ node_id: 'agg', role: 'aggregator', rounds: 2, result: { count: 200, perNode: { 'node-a': 120, 'node-b': 80 } } });
    expect(typeof out.result_id).toBe('string');
    expect(JSON.parse(ra.stdout)).toMatchObject({ node_id: 'node-a', role: 'analyzer', result: { count: 200 } });
    // Structured logs went to stderr as JSON lines, stdout held only the result.
    const firstLog = JSON.parse(ragg.stderr.split('\n').find((l) => l.includes('node connected'))!);
    expect(firstLog).toMatchObject({ level: 'info', node: 'agg', analysis: analysisId });
  } finally {
    await NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId });
  }
}, 90_000);
