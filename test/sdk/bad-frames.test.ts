/**
 * Bodies a well-behaved node never sends (empty, unknown frame kind, a broken storage reference,
 * garbage instead of an encoded value), from a participant whose messages verify: they reach the
 * waiting analysis as errors naming the message, are quarantined, and none of them is redelivered
 * forever or stops the node from receiving the next message. A message that does not verify never
 * reaches the analysis at all.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryBrokerAdapter, MemoryBrokerHub } from '../../src/broker/memory.js';
import type { WireMessage } from '../../src/broker/port.js';
import { BadRequestError, TimeoutError } from '../../src/errors.js';
import { FsObjectStore } from '../../src/results/fs.js';
import { FlameSDK } from '../../src/sdk.js';
import { loadOrCreateIdentity } from '../../src/trust/identity.js';
import { MessageAuthenticator } from '../../src/trust/message-auth.js';
import { makeFederation } from '../helpers/federation.js';

async function setup() {
  const hub = new MemoryBrokerHub();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-frames-'));
  const localDir = (n: string) => path.join(dir, n);
  const fed = await makeFederation({ dir, analysisId: 'frames', nodes: ['rogue', 'node'], aggregatorId: 'node', localDir });
  const connect = (nodeId: string) =>
    FlameSDK.connect({
      nodeId,
      analysisId: 'frames',
      participants: ['rogue', 'node'],
      broker: { type: 'memory', hub },
      hub: { type: 'fs', dir: path.join(dir, 'hub') },
      local: { type: 'fs', dir: localDir(nodeId) },
      trust: fed.trust,
      logLevel: 'silent',
    });
  const sdk = await connect('node');
  // The rogue node publishes hand-made messages with its own (valid) key.
  const rogueIdentity = await loadOrCreateIdentity({ local: new FsObjectStore(localDir('rogue')), projectId: 'local-project', analysisId: 'frames', nodeId: 'rogue' });
  const tagger = new MessageAuthenticator('frames', rogueIdentity, { keysOf: (n) => fed.roster.nodes.find((x) => x.node_id === n)?.keys });
  const rogue = new MemoryBrokerAdapter(hub, 'frames');
  let n = 0;
  const wire = (id: string, b: Uint8Array, tag = true): WireMessage => {
    const m: WireMessage = { id, sender: 'rogue', recipient: 'node', category: 'message', time: new Date().toISOString(), message_number: ++n, session: 'rogue1', body: b };
    if (tag) m.auth = tagger.tag(m);
    return m;
  };
  const cleanup = async () => {
    await sdk.close();
    await rogue.close();
    await fs.rm(dir, { recursive: true, force: true });
  };
  return { hub, dir, sdk, rogue, wire, connect, cleanup };
}

test.each([
  ['an empty body', Buffer.alloc(0), /empty body/],
  ['an unknown frame kind', Buffer.from([9, 1, 2]), /unknown frame kind 9/],
  ['a stored reference that is not JSON', Buffer.concat([Buffer.from([2]), Buffer.from('{not json')]), /storage reference is not JSON/],
  ['a stored reference without a key', Buffer.concat([Buffer.from([2]), Buffer.from('{"nokey":1}')]), /storage reference has no key/],
  ['a sealed reference without a result id', Buffer.concat([Buffer.from([3]), Buffer.from('{"key":"x"}')]), /sealed reference without a result_id/],
  ['an inline value that is not an encoded value', Buffer.concat([Buffer.from([1]), Buffer.from('garbage bytes')]), /message m-1 from "rogue"/],
])('%s is reported to the waiter, quarantined, and the node keeps receiving', async (_what, body, reason) => {
  const { hub, dir, sdk, rogue, wire, connect, cleanup } = await setup();
  try {
    await rogue.publish(wire('m-1', body));
    const err = await sdk.awaitMessage('rogue', { timeoutMs: 2000 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(String(err)).toMatch(reason);
    expect(sdk.messageStats().quarantined).toBe(1);
    const kept = JSON.parse(await fs.readFile(path.join(dir, 'node', 'state', 'local-project', 'frames', 'quarantine', 'rogue', 'm-1.json'), 'utf8'));
    expect(kept).toMatchObject({ id: 'm-1', sender: 'rogue', error: { kind: 'bad_request' } });
    // The next, well-formed message still arrives (the bad one was not retried in a loop before it).
    const other = await connect('rogue');
    await other.sendMessage('node', { ok: true });
    await other.close();
    expect((await sdk.awaitMessage('rogue', { timeoutMs: 2000 })).data).toEqual({ ok: true });
    expect(hub.pendingCount('frames', 'node')).toBe(0);
  } finally {
    await cleanup();
  }
});

test('a message without a valid tag never reaches the analysis; it is counted by sender and acknowledged', async () => {
  const { hub, sdk, rogue, wire, cleanup } = await setup();
  try {
    const ok = Buffer.concat([Buffer.from([1]), Buffer.from('x')]);
    await rogue.publish(wire('untagged', ok, false));
    const forged = wire('forged', ok);
    await rogue.publish({ ...forged, auth: forged.auth!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) });
    await rogue.publish({ ...wire('altered', ok), category: 'star.round' });
    await expect(sdk.awaitMessage('rogue', { timeoutMs: 500 })).rejects.toThrow(TimeoutError);
    expect(sdk.getMessages()).toHaveLength(0);
    expect(sdk.messageStats().refused).toEqual({ rogue: { no_tag: 1, bad_tag: 2 } });
    expect(hub.pendingCount('frames', 'node')).toBe(0);
  } finally {
    await cleanup();
  }
});
