/** The in-process broker against the shared Broker conformance suite, plus its own specifics. */
import { randomUUID } from 'node:crypto';
import { MemoryBrokerAdapter, MemoryBrokerHub } from '../../src/broker/memory.js';
import { ConflictError } from '../../src/errors.js';
import { collector, describeBrokerConformance, wireMessage } from './conformance.js';

describeBrokerConformance('memory', async () => {
  const hub = new MemoryBrokerHub();
  const analysisId = `t-${randomUUID().slice(0, 8)}`;
  return {
    open: async () => new MemoryBrokerAdapter(hub, analysisId),
    dispose: async () => hub.purgeAnalysis(analysisId),
  };
});

describe('MemoryBrokerAdapter', () => {
  it('keeps analyses apart and counts what is still unacknowledged', async () => {
    const hub = new MemoryBrokerHub();
    const x = new MemoryBrokerAdapter(hub, 'analysis-x');
    const y = new MemoryBrokerAdapter(hub, 'analysis-y');
    await x.publish(wireMessage('a', 'b', 1));
    expect(hub.pendingCount('analysis-x', 'b')).toBe(1);
    expect(hub.pendingCount('analysis-y', 'b')).toBe(0);
    const got = collector();
    await y.start('b', got.handler);
    await new Promise((r) => setTimeout(r, 50));
    expect(got.received).toHaveLength(0);
    const bx = new MemoryBrokerAdapter(hub, 'analysis-x');
    await bx.start('b', got.handler);
    await got.until(() => got.received.length === 1);
    expect(hub.pendingCount('analysis-x', 'b')).toBe(0);
    await Promise.all([x.close(), y.close(), bx.close()]);
  });

  it('refuses a second consumer for the same node and a bad maxPayload', async () => {
    const hub = new MemoryBrokerHub();
    const one = new MemoryBrokerAdapter(hub, 'an');
    const two = new MemoryBrokerAdapter(hub, 'an');
    await one.start('b', collector().handler);
    await expect(two.start('b', collector().handler)).rejects.toBeInstanceOf(ConflictError);
    expect(() => new MemoryBrokerAdapter(hub, 'an', { maxPayload: 0 })).toThrow(/maxPayload.*0/);
    expect(() => new MemoryBrokerAdapter(hub, 'bad id')).toThrow(/analysisId.*"bad id"/);
    expect(new MemoryBrokerAdapter(hub, 'an', { maxPayload: 10 }).maxPayload).toBe(10);
    await Promise.all([one.close(), two.close()]);
  });
});
