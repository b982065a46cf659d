/** `flame datasets …` end to end: the CLI in a child process against an S3 API server over HTTP. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startMultipartS3Server } from '../helpers/s3server-multipart.js';
import type { S3TestServer } from '../helpers/s3server.js';
import { runCli } from './run-cli.js';

let s3: S3TestServer;
let tmp: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  s3 = await startMultipartS3Server(['flame-hub']);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-cli-datasets-'));
  env = {
    FLAME_HUB_S3_ENDPOINT: s3.endpoint,
    FLAME_HUB_S3_BUCKET: 'flame-hub',
    FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
});

afterAll(async () => {
  await s3.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

test('upload stopped midway, progress, resume, list, get, delete', async () => {
  // a CSV of ~11 MiB: three 5 MiB parts
  const csv = path.join(tmp, 'big.csv');
  const rows = randomBytes(11 * 1024 * 1024 / 2).toString('hex').match(/.{1,64}/g)!;
  await fs.writeFile(csv, `value\n${rows.join('\n')}\n`);

  const stopped = await runCli(['datasets', 'upload', csv, '--name', 'big', '--part-size-mib', '5', '--stop-after-parts', '1'], env);
  expect(stopped.code).toBe(1);
  expect(stopped.stderr).toMatch(/interrupted after 1 of 3 parts/);
  // not a TTY: plain lines, one per part
  expect(stopped.stdout).toMatch(/uploading dataset [0-9a-f-]{36} \(big, csv/);
  expect(stopped.stdout).toMatch(/data\.csv: part 1\/3 sent/);

  const listed = await runCli(['--json', 'datasets', 'list'], env);
  expect(listed.code).toBe(0);
  const [pending] = JSON.parse(listed.stdout) as { id: string; name: string; status: string }[];
  expect(pending).toMatchObject({ name: 'big', status: 'uploading' });

  const mid = await runCli(['--json', 'datasets', 'progress', pending.id], env);
  expect(JSON.parse(mid.stdout)).toMatchObject({ parts_stored: 1, parts_total: 3, bytes_stored: 5 * 1024 * 1024, complete: false });

  const resumed = await runCli(['--json', 'datasets', 'upload', csv, '--name', 'big'], env);
  expect(resumed.code).toBe(0);
  expect(JSON.parse(resumed.stdout)).toMatchObject({ id: pending.id, status: 'complete', resumed: true, parts_reused: 1, parts_sent: 2 });

  const done = await runCli(['datasets', 'progress', pending.id], env);
  expect(done.stdout).toMatch(/complete\s+true/);
  expect(done.stdout).toMatch(/percent\s+100/);

  const got = await runCli(['--json', 'datasets', 'get', pending.id], env);
  expect(JSON.parse(got.stdout)).toMatchObject({ id: pending.id, kind: 'csv', details: { columns: ['value'], rows: rows.length } });

  const table = await runCli(['datasets', 'list'], env);
  expect(table.stdout.split('\n')[0]).toMatch(/^id\s+name\s+kind\s+status\s+size\s+created$/);

  const deleted = await runCli(['datasets', 'delete', pending.id], env);
  expect(deleted).toMatchObject({ code: 0, stdout: `deleted dataset ${pending.id} (big)\n` });
  const gone = await runCli(['datasets', 'get', pending.id], env);
  expect(gone.code).toBe(3);
  expect(gone.stderr).toMatch(new RegExp(`^flame: not found: dataset "${pending.id}" not found`));
}, 60000);

test('errors: missing path, unknown id, bad id, no S3 configured', async () => {
  const missing = await runCli(['datasets', 'upload', path.join(tmp, 'absent'), '--name', 'x'], env);
  expect(missing.code).toBe(3);
  expect(missing.stderr).toMatch(/absent does not exist/);
  const unknown = await runCli(['datasets', 'progress', '11111111-2222-4333-8444-555555555555'], env);
  expect(unknown.code).toBe(3);
  const bad = await runCli(['datasets', 'get', '../x'], env);
  expect(bad.code).toBe(2);
  const noS3 = await runCli(['datasets', 'list'], {});
  expect(noS3.code).toBe(2);
  expect(noS3.stderr).toMatch(/FLAME_HUB_S3_ENDPOINT/);
  const noName = await runCli(['datasets', 'upload', tmp], env);
  expect(noName.code).toBe(2);
}, 60000);
