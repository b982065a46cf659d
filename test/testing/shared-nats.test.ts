/** The test run's shared NATS server (jest globalSetup): started when FLAME_TEST_NATS_URL is unset, a clear error without nats-server. */
import fs from 'node:fs/promises';
import { connect } from 'nats';
import { startSharedNats, stopSharedNats } from '../global-setup/shared-nats.js';
import { NATS_URL } from '../helpers/nats.js';

test('this run uses the server FLAME_TEST_NATS_URL names, which the global setup set when it was unset', () => {
  expect(NATS_URL).toBe(process.env.FLAME_TEST_NATS_URL);
  expect(NATS_URL).toMatch(/^nats:\/\//);
});

test('with FLAME_TEST_NATS_URL unset it starts a JetStream server, exports its URL, and stopping it leaves nothing behind', async () => {
  const env: NodeJS.ProcessEnv = {};
  const shared = await startSharedNats(env);
  const pid = shared.server!.pid!;
  expect(env.FLAME_TEST_NATS_URL).toBe(shared.url);
  expect(shared.url).not.toMatch(/:4222$/);
  const nc = await connect({ servers: shared.url });
  expect(nc.info?.jetstream).toBe(true);
  await nc.close();
  await stopSharedNats(shared);
  expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  await expect(fs.stat(shared.server!.dir)).rejects.toMatchObject({ code: 'ENOENT' });
});

test('with FLAME_TEST_NATS_URL set it starts nothing and stops nothing', async () => {
  const env: NodeJS.ProcessEnv = { FLAME_TEST_NATS_URL: 'nats://other.example:4333' };
  const shared = await startSharedNats(env);
  expect(shared).toEqual({ url: 'nats://other.example:4333' });
  await stopSharedNats(shared);
  expect(env.FLAME_TEST_NATS_URL).toBe('nats://other.example:4333');
});

test('without a nats-server binary the run fails saying how to install it or which URL to set', async () => {
  const saved = process.env.FLAME_TEST_NATS_SERVER;
  process.env.FLAME_TEST_NATS_SERVER = '/nonexistent/nats-server';
  try {
    const env: NodeJS.ProcessEnv = {};
    const failure = startSharedNats(env);
    await expect(failure).rejects.toThrow(/could not start one: nats-server binary "\/nonexistent\/nats-server" is not an executable file/);
    await expect(failure).rejects.toThrow(/apt-get install nats-server/);
    await expect(failure).rejects.toThrow(/or set FLAME_TEST_NATS_URL to a running server/);
    expect(env.FLAME_TEST_NATS_URL).toBeUndefined();
  } finally {
    if (saved === undefined) delete process.env.FLAME_TEST_NATS_SERVER;
    else process.env.FLAME_TEST_NATS_SERVER = saved;
  }
});
