/**
 * The FLAME node broker adapter against the shared Broker conformance suite, on the double of the
 * node message broker (the real one needs the hub, Keycloak and MongoDB, which cannot run here).
 */
import { randomUUID } from 'node:crypto';
import type { AnalysisServer } from '../../src/flame-node/analysis-server.js';
import { startFlameNodeDouble } from '../helpers/flame-node-double.js';
import { openFlameNodeBroker } from '../flame-node/broker-setup.js';
import { CONFORMANCE_NODES, describeBrokerConformance } from './conformance.js';

describeBrokerConformance('flame-node', async () => {
  const double = await startFlameNodeDouble({
    analysisId: `t-${randomUUID().slice(0, 8)}`,
    nodes: CONFORMANCE_NODES.map((nodeId) => ({ nodeId, nodeType: nodeId === 'b' ? 'aggregator' : 'default' })),
  });
  const servers: AnalysisServer[] = [];
  return {
    open: async (nodeId) => {
      const { adapter, server } = await openFlameNodeBroker(double, nodeId);
      servers.push(server);
      return adapter;
    },
    dispose: async () => {
      await Promise.all(servers.map((s) => s.close()));
      await double.close();
    },
  };
});
