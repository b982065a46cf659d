/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * `flame results` and `flame nodes status` as child processes against NATS + a real S3 API, beside a
 * running analysis: they read with the node's configuration but never take the node's messages.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { makeFederation, type TestFederation } from '../helpers/federation.js';
import type { FlameConfigInput } from '../../src/config.js';
import { BadRequestError } from '../../src/errors.js';
import { diagnose } from '../../analyses/image-diagnosis/index.js';
import type { FlameValue } from '../../src/codec/index.js';
import { FlameSDK } from '../../src/sdk.js';
import { NATS_URL } from '../helpers/nats.js';
import { runCli, type CliRun } from './run-cli.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

const analysisId = `cli-${randomUUID().slice(0, 8)}`;
let s3: S3TestServer;
let dir: string;
let a: FlameSDK;
let agg: FlameSDK;
let env: Record<string, string>;

let federation: TestFederation;

function config(nodeId: string): FlameConfigInput {
  return {
    trust: federation.trust,
    nodeId,
    analysisId,
    participants: ['a', 'b', 'agg'],
    aggregatorId: 'agg',
    broker: { type: 'nats', servers: [NATS_URL] },
    hub: { type: 's3', endpoint: s3.endpoint, region: s3.region, bucket: 'cli-hub', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    local: { type: 'fs', dir: path.join(dir, nodeId) },
    logLevel: 'silent',
    heartbeatMs: 60_000, // no refresh during a test: what is in the participants record stays as the node wrote it
  };
}

function flame(args: string[]): Promise<CliRun> {
  return runCli(args, env, dir);
}

beforeAll(async () => {
  s3 = await startS3Server(['cli-hub']);
  dir = await mkdtemp(path.join(os.tmpdir(), 'flame-cli-results-'));
  federation = await makeFederation({ dir, analysisId, nodes: ['a', 'b', 'agg'], aggregatorId: 'agg', localDir: (n) => path.join(dir, n) });
  // The aggregator provisions the analysis' streams; a waits for them.
  [agg, a] = await Promise.all([FlameSDK.connect(config('agg')), FlameSDK.connect(config('a'))]);
  env = {
    FLAME_NODE_ID: 'agg',
    FLAME_ANALYSIS_ID: analysisId,
    FLAME_PARTICIPANTS: 'a,b,agg',
    FLAME_AGGREGATOR_ID: 'agg',
    FLAME_NATS_URL: NATS_URL,
    FLAME_HUB_S3_ENDPOINT: s3.endpoint,
    FLAME_HUB_S3_BUCKET: 'cli-hub',
    FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    FLAME_LOCAL_DIR: path.join(dir, 'cli-local'),
    ...federation.env,
  };
}, 30_000);

afterAll(async () => {
  await Promise.all([a.close(), agg.close()]);
  await NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId });
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

test('results list, get and download read the hub', async () => {
  const id = await agg.sendResult({ mean: 4.25, count: 7 }, { name: 'final-mean' });
  const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff));
  const streamId = await agg.sendResultStream(Readable.from([bytes]), { name: 'raw.bin' });
  const interId = await a.saveIntermediateResult({ step: 1 }, { name: 'sums' });

  const list = await flame(['--json', 'results', 'list']);
  expect(list.code).toBe(0);
  const rows = JSON.parse(list.stdout) as { result_id: string; result_name: string }[];
  expect(rows.map((r) => [r.result_id, r.result_name]).sort()).toEqual([[id, 'final-mean'], [streamId, 'raw.bin']].sort());

  const inter = JSON.parse((await flame(['--json', 'results', 'list', '--intermediate'])).stdout) as { result_id: string; node_id: string }[];
  expect(inter.find((r) => r.result_id === interId)).toMatchObject({ node_id: 'a' });

  expect(JSON.parse((await flame(['results', 'get', id])).stdout)).toEqual({ mean: 4.25, count: 7 });

  // A value is written as the value (pretty JSON here), not as the internal frame.
  const value = path.join(dir, 'final-mean.json');
  const valueRun = await flame(['results', 'download', id, '-o', value]);
  expect([valueRun.code, valueRun.stdout]).toEqual([0, `wrote ${value} (json)\n`]);
  expect(JSON.parse(await readFile(value, 'utf8'))).toEqual({ mean: 4.25, count: 7 });
  expect((await flame(['results', 'download', id, '-o', value, '--frame'])).code).toBe(0);
  expect((await readFile(value)).subarray(0, 4).toString('latin1')).toBe('FLMV');

  const out = path.join(dir, 'raw.bin');
  expect((await flame(['results', 'download', streamId, '-o', out])).code).toBe(0);
  expect(Buffer.compare(await readFile(out), bytes)).toBe(0);

  const missing = await flame(['results', 'get', 'no-such-result']);
  expect(missing.code).toBe(3);
  expect(missing.stderr).toMatch(/not found: .*no-such-result/);
  const table = await flame(['results', 'list']);
  expect(table.stdout).toMatch(/result_id\s+result_name/);
  expect(table.stdout).toMatch(/68\.4 KiB/); // the 70,000-byte stream, as a size
}, 60_000);

test('nodes status pings every participant without taking the node\'s messages', async () => {
  const before = await NatsBrokerAdapter.connect({ servers: [NATS_URL], analysisId, participants: ['a', 'b', 'agg'] });
  const aggKey = (await before.participants()).find((p) => p.nodeId === 'agg')?.keys?.kid;
  await before.close();
  expect(aggKey).toBeTruthy();
  let done = false;
  const status = flame(['--json', 'nodes', 'status', '--timeout-ms', '1500']).finally(() => (done = true));
  // For the CLI's whole life (it runs with agg's configuration), the real agg must get every message.
  let sent = 0;
  while (!done) {
    // bursts larger than a consumer's pull batch, so a second consumer of agg's inbox would get some
    await Promise.all(Array.from({ length: 100 }, () => a.sendMessage('agg', { i: sent++ })));
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(sent).toBeGreaterThan(200);
  const ordered: number[] = [];
  for (let i = 0; i < sent; i++) ordered.push(((await agg.awaitMessage('a', { timeoutMs: 5_000 })).data as { i: number }).i);
  expect(ordered.sort((x, y) => x - y)).toEqual(Array.from({ length: sent }, (_, i) => i));
  const r = await status;
  expect(r.code).toBe(0);
  // The CLI did not announce itself as agg: agg's record (its key, not closed) is as agg wrote it.
  const reader = await NatsBrokerAdapter.connect({ servers: [NATS_URL], analysisId, participants: ['a', 'b', 'agg'] });
  const record = (await reader.participants()).find((p) => p.nodeId === 'agg');
  await reader.close();
  expect(record).toMatchObject({ keys: { kid: aggKey }, role: 'aggregator' });
  expect(record?.closed).toBeFalsy();
  const rows = JSON.parse(r.stdout) as { node: string; role: string; status: string }[];
  expect(rows.map((x) => [x.node, x.role, x.status])).toEqual([
    ['a', 'analyzer', 'online'],
    ['b', 'analyzer', 'not_connected'],
    ['agg', 'aggregator', 'online'],
  ]);
}, 60_000);

test('--insecure is off by default and warns when on', async () => {
  const off = await flame(['--json', 'nodes', 'status', '--timeout-ms', '300']);
  expect(off.stderr).not.toMatch(/insecure/);
  const on = await flame(['--insecure', '--json', 'nodes', 'status', '--timeout-ms', '300']);
  expect(on.code).toBe(0);
  expect(on.stderr).toMatch(/warning: --insecure: self-signed TLS certificates are accepted/);
}, 60_000);

test('an observer SDK reads but cannot send or receive messages', async () => {
  const obs = await FlameSDK.connect(config('agg'), { observer: true });
  try {
    await expect(obs.sendMessage('a', 1)).rejects.toThrow(BadRequestError);
    await expect(obs.awaitMessage('a', { timeoutMs: 10 })).rejects.toThrow(/observer of node "agg"/);
    expect((await obs.askNodeStatus({ timeoutMs: 1000 })).agg).toBe('online'); // the real agg answers
  } finally {
    await obs.close();
  }
  // Closing the observer did not mark the real node as closed.
  expect((await a.getParticipants()).find((p) => p.nodeId === 'agg')?.announced).toBe(true);
  expect(await a.askNodeStatus({ timeoutMs: 1000 })).toMatchObject({ agg: 'online' });
});

test('an S3 command prints no Node version warning of the AWS SDK to the terminal', async () => {
  // Node's warnings on, as at a user's terminal.
  const r = await runCli(['results', 'list'], { ...env, NODE_NO_WARNINGS: '' }, dir);
  expect(r.code).toBe(0);
  expect(r.stderr).not.toMatch(/NodeVersionSupportWarning|Warning:/);
});

test('flame report and flame check read a diagnosis straight from the hub (hub:ID)', async () => {
  const response = await diagnose(
    { dataset_uuid: 'sample', tasks: [{ name: 'lighting_conditions' }] },
    { nodes: ['node-a', 'node-b', 'node-c'].map((id) => ({ id, data: { folder: path.resolve('data/sample', id) } })), disclosure: { minCount: 1 } },
  );
  const id = await agg.sendResult(response as unknown as FlameValue, { name: 'diagnosis' });
  const html = path.join(dir, 'hub-report.html');
  const report = await flame(['report', '--result', `hub:${id}`, '--out', html, '--no-thumbnails']);
  expect(report.code).toBe(0);
  expect(await readFile(html, 'utf8')).toContain('<html');
  const check = await flame(['--json', 'check', `hub:${id}`, '--reference', path.resolve('data/sample/truth.json')]);
  expect(check.code).toBe(0);
  expect(JSON.stringify(JSON.parse(check.stdout))).toContain('lighting');
  const missing = await flame(['report', '--result', 'hub:no-such-result', '--out', html]);
  expect(missing.code).toBe(3);
}, 120_000);
