/**
 * NATS servers for tests: the shared server that jest's global setup starts for the run (or the one
 * FLAME_TEST_NATS_URL names; never stopped or restarted by a test), and private nats-server
 * processes on free ports (from `flame-sdk/testing`) for tests that need an auth config or a restart.
 */
export { startNatsServer, freePort, type NatsServerHandle as TestNatsServer } from '../../src/testing/nats-server.js';

function sharedUrl(): string {
  const url = process.env.FLAME_TEST_NATS_URL;
  if (!url) {
    throw new Error('FLAME_TEST_NATS_URL is not set: run the tests with `npm test` (its global setup starts a nats-server) or set it to a NATS server with JetStream');
  }
  return url;
}

/** The shared NATS server with JetStream that every test may use (unique names, clean up). */
export const NATS_URL = sharedUrl();
