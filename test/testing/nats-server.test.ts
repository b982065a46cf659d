/** flame-sdk/testing's private nats-server: JetStream on a free port, and nothing left once stopped. */
import fs from 'node:fs/promises';
import { connect } from 'nats';
import { startNatsServer } from '../../src/testing/index.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('startNatsServer runs a JetStream server on a free port; stop() ends the process and deletes its folder', async () => {
  const server = await startNatsServer();
  const pid = server.pid!;
  try {
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.url).not.toMatch(/:4222$/);
    expect(alive(pid)).toBe(true);
    const nc = await connect({ servers: server.url });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: 'TESTING_PROBE', subjects: ['testing.probe'] });
      await nc.jetstream().publish('testing.probe', new TextEncoder().encode('hello'));
      expect((await jsm.streams.info('TESTING_PROBE')).state.messages).toBe(1);
    } finally {
      await nc.close();
    }
  } finally {
    await server.stop();
  }
  expect(alive(pid)).toBe(false);
  expect(server.pid).toBeUndefined();
  await expect(fs.stat(server.dir)).rejects.toMatchObject({ code: 'ENOENT' });
});

test('two servers get two ports, and restart() keeps the port and the JetStream store', async () => {
  const [a, b] = await Promise.all([startNatsServer(), startNatsServer()]);
  try {
    expect(a.port).not.toBe(b.port);
    const first = a.pid;
    let nc = await connect({ servers: a.url });
    await (await nc.jetstreamManager()).streams.add({ name: 'KEPT', subjects: ['kept'] });
    await nc.jetstream().publish('kept', new Uint8Array([1]));
    await nc.close();
    await a.restart();
    expect(a.pid).not.toBe(first);
    nc = await connect({ servers: a.url });
    expect((await (await nc.jetstreamManager()).streams.info('KEPT')).state.messages).toBe(1);
    await nc.close();
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('a missing nats-server binary is a clear error saying how to install it', async () => {
  await expect(startNatsServer({ bin: '/nonexistent/nats-server' })).rejects.toThrow(
    /nats-server binary "\/nonexistent\/nats-server" is not an executable file: install nats-server \(Debian\/Ubuntu: apt-get install nats-server/,
  );
});
