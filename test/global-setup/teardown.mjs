// jest globalTeardown: stops the shared NATS server the global setup started and deletes its folder.
import { sharedNats } from './load.mjs';

export default async function globalTeardown() {
  const { stopSharedNats } = await sharedNats();
  await stopSharedNats(globalThis.__FLAME_SHARED_NATS__);
  globalThis.__FLAME_SHARED_NATS__ = undefined;
}
