/**
 * Nodes of one federation on an in-process broker, connected by hand so a test can stop a node
 * (close its SDK mid-run) and connect it again with the same configuration, as a restart does.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryBrokerHub } from '../../src/broker/memory.js';
import { FlameSDK } from '../../src/sdk.js';
import { makeFederation } from './federation.js';

/** What {@link memoryFederation} returns. */
export interface MemoryFederation {
  /** Connects node `nodeId` (again, after a stop: same folders, same keys). */
  connect(nodeId: string): Promise<FlameSDK>;
  /** Closes every SDK connected and removes the folders. */
  cleanup(): Promise<void>;
}

/** A federation of `nodes`, the last of them the aggregator. */
export async function memoryFederation(nodes: string[], prefix = 'flame-fed-'): Promise<MemoryFederation> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const hub = new MemoryBrokerHub();
  const analysisId = `${prefix}${path.basename(dir)}`;
  const aggregatorId = nodes[nodes.length - 1];
  const { trust } = await makeFederation({ dir, analysisId, nodes, aggregatorId, localDir: (n) => path.join(dir, n) });
  const sdks: FlameSDK[] = [];
  return {
    async connect(nodeId) {
      const sdk = await FlameSDK.connect({ nodeId, analysisId, participants: nodes, aggregatorId, broker: { type: 'memory', hub }, hub: { type: 'fs', dir: path.join(dir, 'hub') }, local: { type: 'fs', dir: path.join(dir, nodeId) }, trust, logLevel: 'silent', heartbeatMs: 200 });
      sdks.push(sdk);
      return sdk;
    },
    async cleanup() {
      await Promise.all(sdks.map((s) => s.close().catch(() => undefined)));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
