/** The NATS JetStream broker against the shared Broker conformance suite, plus NATS-only tests. */
import { randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import { connect, nanos } from 'nats';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { analysisNames } from '../../src/broker/nats/index.js';
import { NATS_URL } from '../helpers/nats.js';
import { CONFORMANCE_NODES, collector, describeBrokerConformance, wireMessage } from './conformance.js';

jest.setTimeout(30_000);

/** A random analysis id with a '.' in it, so the subject escaping is exercised too. */
export function randomAnalysisId(): string {
  return `t-${randomUUID().slice(0, 8)}.run_1`;
}

describeBrokerConformance('NATS JetStream', async () => {
  const analysisId = randomAnalysisId();
  return {
    open: (nodeId) => NatsBrokerAdapter.connect({ servers: [NATS_URL], analysisId, nodeId, name: `test-${nodeId}`, participants: CONFORMANCE_NODES, provision: 'create' }),
    dispose: () => NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId }),
  };
});

describe('NatsBrokerAdapter', () => {
  it('drops, on the consumer side, a copy that got past the server duplicate window', async () => {
    const analysisId = randomAnalysisId();
    const a = await NatsBrokerAdapter.connect({ servers: [NATS_URL], analysisId, nodeId: 'a', participants: ['a', 'b'], provision: 'create' });
    const b = await NatsBrokerAdapter.connect({ servers: [NATS_URL], analysisId, nodeId: 'b', participants: ['a', 'b'] });
    const admin = await connect({ servers: NATS_URL });
    try {
      const got = collector();
      await b.start('b', got.handler);
      const m = wireMessage('a', 'b', 1);
      await a.publish(m);
      await got.until(() => got.received.length === 1);
      // Shrink the server's duplicate window so the same id is stored (and delivered) again,
      // as happens when a message is redelivered after a lost ack.
      const jsm = await admin.jetstreamManager();
      const { stream } = analysisNames(analysisId);
      const info = await jsm.streams.info(stream);
      await jsm.streams.update(stream, { ...info.config, duplicate_window: nanos(100) });
      // (the adapter re-checks the config only at connect; a shorter duplicate window is acceptable)
      await new Promise((r) => setTimeout(r, 300));
      await a.publish(m);
      await a.publish(wireMessage('a', 'b', 2));
      await got.until(() => got.received.length === 2);
      await new Promise((r) => setTimeout(r, 200));
      expect(got.received.map((x) => x.message_number)).toEqual([1, 2]);
      expect(got.attempts.get(m.id)).toBe(1);
      // The dropped copy was acknowledged, so nothing is left in the stream.
      expect((await jsm.streams.info(stream)).state.messages).toBe(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await admin.close();
      await NatsBrokerAdapter.purgeAnalysis({ servers: [NATS_URL], analysisId });
    }
  });

  it('names the server when it cannot connect, and checks its inputs', async () => {
    await expect(NatsBrokerAdapter.connect({ servers: ['nats://127.0.0.1:1'], analysisId: 'x' })).rejects.toThrow(/127\.0\.0\.1:1/);
    await expect(NatsBrokerAdapter.connect({ servers: [NATS_URL], analysisId: 'bad id' })).rejects.toThrow(/analysisId.*"bad id"/);
    await expect(NatsBrokerAdapter.connect({ servers: [NATS_URL], analysisId: 'x', participants: ['bad id'] })).rejects.toThrow(/participants\[0\].*"bad id"/);
    await expect(NatsBrokerAdapter.connect({ servers: [], analysisId: 'x' })).rejects.toThrow(/servers/);
  });
});
