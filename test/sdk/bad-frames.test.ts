/**
 * Bodies a well-behaved node never sends (empty, unknown frame kind, a broken storage reference,
 * garbage instead of an encoded value) reach the waiting analysis as errors naming the message;
 * none of them is redelivered forever or stops the node from receiving the next message.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryBrokerAdapter, MemoryBrokerHub } from '../../src/broker/memory.js';
import type { WireMessage } from '../../src/broker/port.js';
import { BadRequestError } from '../../src/errors.js';
import { FlameSDK } from '../../src/sdk.js';

test.each([
  ['an empty body', Buffer.alloc(0), /empty body/],
  ['an unknown frame kind', Buffer.from([9, 1, 2]), /unknown frame kind 9/],
  ['a stored reference that is not JSON', Buffer.concat([Buffer.from([2]), Buffer.from('{not json')]), /storage reference is not JSON/],
  ['a stored reference without a key', Buffer.concat([Buffer.from([2]), Buffer.from('{"nokey":1}')]), /storage reference has no key/],
  ['a sealed reference without a result id', Buffer.concat([Buffer.from([3]), Buffer.from('{"key":"x"}')]), /sealed reference without a result_id/],
  ['an inline value that is not an encoded value', Buffer.concat([Buffer.from([1]), Buffer.from('garbage bytes')]), /message m-1 from "rogue"/],
])('%s is reported to the waiter and the node keeps receiving', async (_what, body, reason) => {
  const hub = new MemoryBrokerHub();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-frames-'));
  const connect = (nodeId: string) =>
    FlameSDK.connect({
      nodeId,
      analysisId: 'frames',
      participants: ['rogue', 'node'],
      broker: { type: 'memory', hub },
      hub: { type: 'fs', dir: path.join(dir, 'hub') },
      local: { type: 'fs', dir: path.join(dir, nodeId) },
      logLevel: 'silent',
    });
  const sdk = await connect('node');
  const rogue = new MemoryBrokerAdapter(hub, 'frames');
  const wire = (id: string, b: Uint8Array): WireMessage => ({ id, sender: 'rogue', recipient: 'node', category: 'message', time: new Date().toISOString(), message_number: 1, body: b });
  try {
    await rogue.publish(wire('m-1', body));
    const err = await sdk.awaitMessage('rogue', { timeoutMs: 2000 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(String(err)).toMatch(reason);
    // The next, well-formed message still arrives (the bad one was not retried in a loop before it).
    const good = await (async () => {
      const other = await connect('rogue');
      await other.sendMessage('node', { ok: true });
      await other.close();
      return sdk.awaitMessage('rogue', { timeoutMs: 2000 });
    })();
    expect(good.data).toEqual({ ok: true });
    expect(hub.pendingCount('frames', 'node')).toBe(0);
  } finally {
    await sdk.close();
    await rogue.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
