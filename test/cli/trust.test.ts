/**
 * The operator's workflow through the CLI, on a nats-server with the logins `flame analysis nats-config`
 * renders: node tokens (flame keys show), the operator key, a signed roster, provisioning and publishing
 * it with the admin login; then three node processes run the federated mean with only the operator's
 * public key configured, reading the roster from the broker.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { generateSigningKey } from '../../src/trust/statements.js';
import { runCli } from './run-cli.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

let nats: TestNatsServer;
let s3: S3TestServer;
let dir: string;
const analysisId = `ops-${randomUUID().slice(0, 8)}`;
const NODES = ['node-a', 'node-b', 'agg'];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-ops-'));
  s3 = await startS3Server(['ops-hub']);
});
afterAll(async () => {
  await nats?.stop();
  await s3.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('keys, a signed roster on the broker, provisioning, and a run that trusts only the operator key', async () => {
  const cfg = await runCli(['--json', 'analysis', 'nats-config', '--nodes', NODES.join(','), '--aggregator', 'agg', '--analysis', analysisId], {}, dir);
  expect(cfg.code).toBe(0);
  const { config, logins } = JSON.parse(cfg.stdout) as { config: string; logins: Array<{ node: string; user: string; password: string }> };
  nats = await startNatsServer({ config });
  const login = Object.fromEntries(logins.map((l) => [l.node, l]));

  const common = {
    FLAME_ANALYSIS_ID: analysisId,
    FLAME_PARTICIPANTS: NODES.join(','),
    FLAME_AGGREGATOR_ID: 'agg',
    FLAME_NATS_URL: nats.url,
    FLAME_HUB_S3_ENDPOINT: s3.endpoint,
    FLAME_HUB_S3_BUCKET: 'ops-hub',
    FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
  const nodeEnv = (id: string) => ({ ...common, FLAME_NODE_ID: id, FLAME_LOCAL_DIR: path.join(dir, id), FLAME_NATS_USER: id, FLAME_NATS_PASSWORD: login[id].password });
  const admin = { ...common, FLAME_NATS_USER: login['(operator)'].user, FLAME_NATS_PASSWORD: login['(operator)'].password };

  // Each node makes its keys and hands the operator a token.
  const tokens: string[] = [];
  for (const id of NODES) {
    const r = await runCli(['keys', 'show'], nodeEnv(id), dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^flame-node-key:v1:${id}:`));
    tokens.push(r.stdout.trim());
  }

  const opKey = path.join(dir, 'operator.key');
  const op = await runCli(['keys', 'operator', '--out', opKey], {}, dir);
  expect(op.code).toBe(0);
  const operatorPublic = op.stdout.trim();
  expect((await fs.stat(opKey)).mode & 0o777).toBe(0o600);
  expect((await runCli(['keys', 'operator', '--out', opKey], {}, dir)).code).toBe(5); // never overwritten

  const rosterFile = path.join(dir, 'roster.json');
  const signed = await runCli(['roster', 'sign', '--key', opKey, '--aggregator', 'agg', '--analysis', analysisId, '--out', rosterFile, ...tokens], {}, dir);
  expect(signed.code).toBe(0);
  const shown = await runCli(['--json', 'roster', 'show', rosterFile, '--operator-key', operatorPublic], {}, dir);
  expect(JSON.parse(shown.stdout).map((r: { node: string; role: string }) => [r.node, r.role])).toEqual([
    ['node-a', 'analyzer'],
    ['node-b', 'analyzer'],
    ['agg', 'aggregator'],
  ]);
  // With another operator key the roster does not verify.
  const other = generateSigningKey().publicKey;
  expect((await runCli(['roster', 'show', rosterFile, '--operator-key', other], {}, dir)).stderr).toMatch(/does not verify/);

  // The operator provisions and publishes; a node's login may do neither.
  expect((await runCli(['analysis', 'provision'], nodeEnv('node-a'), dir)).code).not.toBe(0);
  expect((await runCli(['analysis', 'provision'], admin, dir)).code).toBe(0);
  expect((await runCli(['roster', 'publish', rosterFile], { ...nodeEnv('node-b'), FLAME_OPERATOR_KEY: operatorPublic }, dir)).code).not.toBe(0);
  const pub = await runCli(['roster', 'publish', rosterFile], { ...admin, FLAME_OPERATOR_KEY: operatorPublic }, dir);
  expect({ code: pub.code, err: pub.stderr }).toEqual({ code: 0, err: '' });

  // The nodes run with only the operator's public key: the roster comes from the broker.
  const run = (id: string, data?: string) =>
    runCli(['run', 'analyses/federated-mean/index.ts', '--timeout-ms', '30000'], {
      ...nodeEnv(id),
      FLAME_OPERATOR_KEY: operatorPublic,
      FLAME_DATA_SOURCES: JSON.stringify(data ? [{ id: 'values', type: 'folder', path: path.resolve('data/example', data) }] : []),
    });
  const [ra, rb, ragg] = await Promise.all([run('node-a', 'node-a'), run('node-b', 'node-b'), run('agg')]);
  for (const r of [ra, rb, ragg]) expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-1500) }).toEqual({ code: 0, stderr: '' });
  expect(JSON.parse(ragg.stdout)).toMatchObject({ role: 'aggregator', result: { count: 200 } });
  // The final result verifies for anyone with the operator key.
  const list = await runCli(['--json', 'results', 'list'], { ...nodeEnv('node-a'), FLAME_OPERATOR_KEY: operatorPublic }, dir);
  expect(JSON.parse(list.stdout)[0]).toMatchObject({ verified: true, signed_by: 'agg' });
}, 180_000);
