/** The NATS JetStream broker against the shared Broker conformance suite, plus NATS-only tests. */
import { randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import { NatsBrokerAdapter } from '../../src/broker/nats.js';
import { NATS_URL } from '../helpers/nats.js';
import { describeBrokerConformance } from './conformance.js';

jest.setTimeout(30_000);

/** A random analysis id with a '.' in it, so the subject escaping is exercised too. */
export function randomAnalysisId(): string {
  return `t-${randomUUID().slice(0, 8)}.run_1`;
}

describeBrokerConformance('NATS JetStream', async () => {
  const analysisId = randomAnalysisId();
  return {
    open: (nodeId) => NatsBrokerAdapter.connect({ servers: [NATS_URL], analysisId, nodeId, name: `test-${nodeId}` }),
    dispose: () => NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId }),
  };
});
