// jest globalSetup: the run's shared NATS server (see shared-nats.ts). The workers inherit process.env.
import { sharedNats } from './load.mjs';

export default async function globalSetup() {
  const { startSharedNats } = await sharedNats();
  const shared = await startSharedNats(process.env);
  // Read by the global teardown: jest keeps globalSetup's globals for it.
  globalThis.__FLAME_SHARED_NATS__ = shared;
  const how = shared.server ? `started nats-server pid ${shared.server.pid}, store ${shared.server.storeDir}` : 'FLAME_TEST_NATS_URL';
  process.stderr.write(`\nshared NATS for this run: ${shared.url} (${how})\n`);
}
