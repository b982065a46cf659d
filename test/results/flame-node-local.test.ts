/** The ObjectStore on a FLAME node's local result storage, against the shared conformance suite, on the node-services double. */
import { FlameLocalObjectStore } from '../../src/flame-node/local-object-store.js';
import { FlameStorageClient } from '../../src/flame-node/storage.js';
import { TokenHolder } from '../../src/flame-node/token.js';
import { startFlameNodeDouble } from '../helpers/flame-node-double.js';
import { describeObjectStoreConformance } from './conformance.js';

describeObjectStoreConformance('FlameLocalObjectStore (storage service)', async () => {
  const double = await startFlameNodeDouble({ analysisId: 'an-local', nodes: [{ nodeId: 'n1', nodeType: 'default' }] });
  const client = new FlameStorageClient({ storageUrl: `${double.nginxUrl('n1')}/storage`, token: new TokenHolder(double.token('n1')) });
  return { store: new FlameLocalObjectStore(client, 'an-local'), cleanup: () => double.close() };
});
