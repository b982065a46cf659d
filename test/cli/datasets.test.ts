/**
 * `flame datasets …` end to end: the CLI in a child process against the plain s3rver of
 * devDependencies over HTTP (multipart upload, but no ListMultipartUploads, ListParts or
 * AbortMultipartUpload: resuming goes by the upload record, and the CLI says so).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { spawn } from 'node:child_process';
import { REPO_ROOT, runCli, TSX_LOADER } from './run-cli.js';

let s3: S3TestServer;
let tmp: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  s3 = await startS3Server(['flame-hub']);
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
  expect(resumed.stderr).toMatch(/^note: the S3 API does not implement ListParts: resuming s3:\/\/flame-hub\/datasets\/.*\/data\.csv from its upload record \(1 parts acknowledged\)\n$/);

  const done = await runCli(['datasets', 'progress', pending.id], env);
  expect(done.stdout).toMatch(/complete\s+true/);
  expect(done.stdout).toMatch(/percent\s+100/);

  const got = await runCli(['--json', 'datasets', 'get', 'big'], env); // by name
  expect(JSON.parse(got.stdout)).toMatchObject({ id: pending.id, kind: 'csv', details: { columns: ['value'], rows: rows.length } });

  const table = await runCli(['datasets', 'list'], env);
  expect(table.stdout.split('\n')[0]).toMatch(/^id\s+name\s+kind\s+status\s+size\s+created$/);

  const deleted = await runCli(['datasets', 'delete', pending.id], env);
  expect(deleted).toMatchObject({ code: 0, stdout: `deleted dataset ${pending.id} (big)\n`, stderr: '' });
  const gone = await runCli(['datasets', 'get', pending.id], env);
  expect(gone.code).toBe(3);
  expect(gone.stderr).toMatch(new RegExp(`^flame: not found: dataset "${pending.id}" not found`));
}, 240_000); // ten CLI starts: a few seconds each on a loaded machine

test('errors: missing path, unknown id, bad id, no S3 configured', async () => {
  const missing = await runCli(['datasets', 'upload', path.join(tmp, 'absent'), '--name', 'x'], env);
  expect(missing.code).toBe(3);
  expect(missing.stderr).toMatch(/absent does not exist/);
  const unknown = await runCli(['datasets', 'progress', '11111111-2222-4333-8444-555555555555'], env);
  expect(unknown.code).toBe(3);
  // neither an id nor the name of a dataset (get, progress and delete take either)
  const bad = await runCli(['datasets', 'get', '../x'], env);
  expect(bad.code).toBe(3);
  expect(bad.stderr).toMatch(/dataset "\.\.\/x" not found \(no dataset has this id or name/);
  const noS3 = await runCli(['datasets', 'list'], {});
  expect(noS3.code).toBe(2);
  expect(noS3.stderr).toMatch(/FLAME_HUB_S3_ENDPOINT/);
  const noName = await runCli(['datasets', 'upload', tmp], env);
  expect(noName.code).toBe(2);
}, 180_000);

test('Ctrl-C during an upload exits 130 and says to run the command again, which resumes', async () => {
  const csv = path.join(tmp, 'interrupted.csv');
  const rows = randomBytes((16 * 1024 * 1024) / 2).toString('hex').match(/.{1,64}/g)!;
  await fs.writeFile(csv, `value\n${rows.join('\n')}\n`);
  const child = spawn(process.execPath, ['--import', TSX_LOADER, path.join(REPO_ROOT, 'apps/cli/main.ts'), 'datasets', 'upload', csv, '--name', 'interrupted', '--part-size-mib', '5'], {
    env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // The first part is stored: the user presses Ctrl-C.
      if (/part 1\/\d+ sent/.test(stdout)) resolve();
    }),
  );
  child.kill('SIGINT');
  expect(await exited).toBe(130);
  expect(stderr).toMatch(/flame: upload of "interrupted" stopped .*; run the same command again to resume\n$/);
  expect(stderr).not.toMatch(/internal/);
  const resumed = await runCli(['--json', 'datasets', 'upload', csv, '--name', 'interrupted', '--part-size-mib', '5'], env);
  expect(resumed.code).toBe(0);
  const r = JSON.parse(resumed.stdout) as { resumed: boolean; parts_reused: number; status: string };
  expect(r).toMatchObject({ resumed: true, status: 'complete' });
  expect(r.parts_reused).toBeGreaterThanOrEqual(1);
}, 90_000);

test('an image folder goes up as one object per image, and get names the S3 data source that reads it', async () => {
  const folder = path.join(tmp, 'pets');
  for (const [rel, size] of [['cat/a.png', 300], ['cat/b.png', 200], ['dog/c.png', 100]] as const) {
    await fs.mkdir(path.dirname(path.join(folder, rel)), { recursive: true });
    await fs.writeFile(path.join(folder, rel), randomBytes(size));
  }
  const up = await runCli(['datasets', 'upload', folder, '--name', 'pets'], env);
  expect(up.code).toBe(0);
  // no TTY: progress by object, not one line per image beyond every 5 %
  expect(up.stdout).toMatch(/images\/: 3\/3 objects stored \(600 B of 600 B\)/);
  const [m] = (JSON.parse((await runCli(['--json', 'datasets', 'list'], env)).stdout) as { id: string; name: string }[]).filter((d) => d.name === 'pets');
  const got = JSON.parse((await runCli(['--json', 'datasets', 'get', m.id], env)).stdout) as { files: unknown[]; data_source: unknown };
  expect(got.files).toEqual([expect.objectContaining({ name: 'images/', format: 'objects', parts: 3, size: 600 })]);
  expect(got.data_source).toEqual({ type: 's3', endpoint: s3.endpoint, bucket: 'flame-hub', prefix: `datasets/${m.id}/images` });
  expect(JSON.stringify(got)).not.toMatch(/secretAccessKey|accessKeyId/);
  const again = await runCli(['--json', 'datasets', 'upload', folder, '--name', 'pets'], env);
  expect(again.code).toBe(5);
  expect(again.stderr).toMatch(/is taken by dataset/);
}, 180_000);
