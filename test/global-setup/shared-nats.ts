/**
 * The shared NATS server of a test run: started by jest's global setup when FLAME_TEST_NATS_URL is
 * not set (nats-server with JetStream on a free port, store in a temporary folder), its URL handed
 * to the test workers through FLAME_TEST_NATS_URL, stopped and deleted by the global teardown.
 */
import { NATS_SERVER_INSTALL_HINT, startNatsServer, type NatsServerHandle } from '../../src/testing/nats-server.js';

/** What {@link startSharedNats} did: started a server, or found FLAME_TEST_NATS_URL set. */
export type SharedNats = { url: string; server?: NatsServerHandle };

/**
 * Returns the server the tests share: the one `env.FLAME_TEST_NATS_URL` names, else a new private
 * server, whose URL is then written to `env.FLAME_TEST_NATS_URL`. Throws, saying how to install
 * nats-server or which variable to set, when there is none to start.
 */
export async function startSharedNats(env: NodeJS.ProcessEnv = process.env): Promise<SharedNats> {
  const given = env.FLAME_TEST_NATS_URL;
  if (given) return { url: given };
  let server: NatsServerHandle;
  try {
    server = await startNatsServer({ jetstream: true });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(
      `The tests need a NATS server with JetStream and could not start one: ${why}\n` +
        `Either ${NATS_SERVER_INSTALL_HINT}, or set FLAME_TEST_NATS_URL to a running server (FLAME_TEST_NATS_URL=nats://HOST:PORT npm test).`,
      { cause: e },
    );
  }
  env.FLAME_TEST_NATS_URL = server.url;
  return { url: server.url, server };
}

/** Stops a server {@link startSharedNats} started (and deletes its folder); a given one is left alone. */
export async function stopSharedNats(shared: SharedNats | undefined): Promise<void> {
  await shared?.server?.stop();
}
