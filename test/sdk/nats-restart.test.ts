/**
 * FlameSDK across a NATS server restart: messages sent before, during and after the outage all arrive,
 * each exactly once, and the star protocol finishes. Uses a private nats-server (never the shared one).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FlameSDK } from '../../src/sdk.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.js';

let server: TestNatsServer;
let dir: string;
beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-restart-'));
});
afterAll(async () => {
  await server.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

test('no message is lost or doubled when the NATS server restarts mid-run', async () => {
  const base = {
    analysisId: 'restart',
    participants: ['sender', 'receiver'],
    aggregatorId: 'receiver',
    broker: { type: 'nats' as const, servers: [server.url] },
    hub: { type: 'fs' as const, dir: path.join(dir, 'hub') },
    logLevel: 'silent' as const,
  };
  const sender = await FlameSDK.connect({ ...base, nodeId: 'sender', local: { type: 'fs', dir: path.join(dir, 's') } });
  const receiver = await FlameSDK.connect({ ...base, nodeId: 'receiver', local: { type: 'fs', dir: path.join(dir, 'r') } });
  const TOTAL = 300;
  let restarted: Promise<number> | undefined;
  let lastSendAt = 0;
  const sending = (async () => {
    for (let i = 0; i < TOTAL; i++) {
      await sender.sendMessage('receiver', { i });
      // The outage starts while messages are in flight.
      if (i === 100) restarted = server.restart().then(() => Date.now());
    }
    lastSendAt = Date.now();
  })();
  const received: number[] = [];
  for (let n = 0; n < TOTAL; n++) {
    const m = await receiver.awaitMessage('sender', { timeoutMs: 30_000 });
    received.push((m.data as { i: number }).i);
  }
  await sending;
  // The server really went down and came back while the sender was still sending.
  expect(await restarted).toBeLessThanOrEqual(lastSendAt);
  // Nothing more arrives: no duplicates after the last one.
  await expect(receiver.awaitMessage('sender', { timeoutMs: 1500 })).rejects.toThrow(/no message from "sender"/);
  expect(received).toHaveLength(TOTAL);
  expect(new Set(received).size).toBe(TOTAL);
  expect([...received].sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
  await Promise.all([sender.close(), receiver.close()]);
}, 90_000);
