/**
 * Attack (issue 8, item 2): analyzer b speaks as another node. On the old main `Flame-Sender` was
 * trusted as sent: b posting into c's inbox as a was accepted, b's sealed result "from a" was opened,
 * and in a star run b forged a's `star.failed` (every node aborted) and the aggregator's "done" (a
 * returned b's fake final result). Now the broker lets b publish only on subjects that name b as the
 * sender, the adapter refuses headers that disagree with the subject, and every message's tag must
 * verify with the claimed sender's key from the roster.
 */
import { jest } from '@jest/globals';
import type { NatsConnection } from 'nats';
import type { WireMessage } from '../../src/broker/port.js';
import { encodeWire } from '../../src/broker/wire.js';
import { encodeValue } from '../../src/codec/index.js';
import { frame, FRAME_INLINE } from '../../src/messenger/frames.js';
import { FsObjectStore } from '../../src/results/fs.js';
import { runStar, STAR_FAILED, STAR_ROUND } from '../../src/star/runner.js';
import { loadOrCreateIdentity } from '../../src/trust/identity.js';
import { MessageAuthenticator } from '../../src/trust/message-auth.js';
import { makeFederation } from '../helpers/federation.js';
import { eventually, useStage } from './hostile-federation.js';

jest.setTimeout(90_000);

const stage = useStage();

/** Publishes a message's wire bytes on JetStream with a raw connection; resolves with the error, or undefined when stored. */
async function rawPublish(nc: NatsConnection, subject: string, m: WireMessage): Promise<Error | undefined> {
  try {
    await nc.jetstream().publish(subject, encodeWire(m), { msgID: m.id, timeout: 2000 });
    return undefined;
  } catch (e) {
    return e as Error;
  }
}

test('b cannot post into c\'s inbox as a, by any route, and a star run with forged stop and done messages finishes correctly', async () => {
  const [c, a] = await Promise.all([stage.connect('c'), stage.connect('a')]);
  const bRaw = await stage.raw('b');
  const bTagger = await stage.tagger('b');
  let n = 0;
  const forged = (from: string, to: string, category: string, data: unknown): WireMessage => {
    const m: WireMessage = {
      id: `forged-${++n}`,
      sender: from,
      recipient: to,
      category,
      time: new Date().toISOString(),
      message_number: n,
      session: 'b0000001',
      body: frame(FRAME_INLINE, encodeValue(data as never)),
    };
    return m;
  };

  // 1. On a's subject (the broker binds the sender to the login): refused by the server.
  const asA = forged('a', 'c', 'message', { from: 'a, honestly' });
  const denied = await rawPublish(bRaw, stage.names.inbox('c', 'a'), asA);
  expect(denied).toBeDefined();

  // 2. On b's own subject, the message claiming a: refused by c's adapter (the subject says b).
  await rawPublish(bRaw, stage.names.inbox('c', 'b'), asA);

  // 3. Claiming a with a tag b made: b cannot make a's tag (it would need a's private key).
  const tagged = forged('a', 'c', 'message', { from: 'a, tagged by b' });
  tagged.auth = bTagger.tag({ ...tagged, sender: 'b' }).replace(/^v1 \S+/, `v1 ${stage.federation.roster.nodes.find((x) => x.node_id === 'a')!.keys[0].kid}`);
  await rawPublish(bRaw, stage.names.inbox('c', 'b'), tagged);

  // 4. The star run: b forges a's failure and the aggregator's end of run before the run starts.
  const fail = forged('a', 'c', STAR_FAILED, { round: 0, error: 'forged by b' });
  fail.auth = bTagger.tag({ ...fail, sender: 'b' });
  await rawPublish(bRaw, stage.names.inbox('c', 'b'), fail);
  const done = forged('c', 'a', STAR_ROUND, { round: 0, done: true, global: { total: -1 } });
  expect(await rawPublish(bRaw, stage.names.inbox('a', 'c'), done)).toBeDefined();
  await rawPublish(bRaw, stage.names.inbox('a', 'b'), done);

  const b = await stage.connect('b');
  const sum = {
    analyze: ({ sdk }: { sdk: { nodeId: string } }) => ({ v: sdk.nodeId === 'a' ? 20 : 22 }),
    aggregate: (results: Array<{ value: { v: number } }>) => ({ total: results.reduce((t, r) => t + r.value.v, 0) }),
  };
  const [oa, ob, oc] = await Promise.all([runStar(a, sum), runStar(b, sum), runStar(c, sum)]);
  expect(oc.result).toEqual({ total: 42 });
  expect(oa.result).toEqual({ total: 42 });
  expect(ob.result).toEqual({ total: 42 });

  // Nothing forged reached an analysis; what c and a refused is counted under the proven sender, b.
  expect(c.getMessages().some((m) => (m.data as { from?: string } | null)?.from !== undefined)).toBe(false);
  await eventually(() => (c.messageStats().refused.b?.sender_mismatch ?? 0) >= 3, 'c refused the three forgeries on b\'s subject');
  expect(c.messageStats().refused).toEqual({ b: { sender_mismatch: 3 } });
  expect(a.messageStats().refused).toEqual({ b: { sender_mismatch: 1 } });
  expect(c.getMessages().map((m) => m.sender).sort()).toEqual(['a', 'b']);
  expect(a.getMessages().every((m) => m.sender === 'c')).toBe(true);
});

test('on the embedded broker (no logins), the tag alone stops b from speaking as a or as the aggregator', async () => {
  const { MemoryBrokerHub, MemoryBrokerAdapter } = await import('../../src/broker/memory.js');
  const hub = new MemoryBrokerHub();
  // Another analysis, so that nothing of the NATS run above (inboxes, checkpoints) is taken up again.
  const analysisId = `${stage.analysisId}-mem`;
  const localDir = (n: string): string => `${stage.dir}/mem-nodes/${n}`;
  const fed = await makeFederation({ dir: `${stage.dir}/mem-nodes`, analysisId, nodes: ['a', 'b', 'c'], aggregatorId: 'c', localDir });
  const base = (n: 'a' | 'b' | 'c') => stage.config(n, { analysisId, broker: { type: 'memory', hub }, hub: { type: 'fs', dir: `${stage.dir}/mem-hub` }, local: { type: 'fs', dir: localDir(n) }, trust: fed.trust });
  const [c, a] = await Promise.all([stage.connect('c', base('c')), stage.connect('a', base('a'))]);
  const raw = new MemoryBrokerAdapter(hub, analysisId);
  const bIdentity = await loadOrCreateIdentity({ local: new FsObjectStore(localDir('b')), projectId: 'local-project', analysisId, nodeId: 'b' });
  const bTagger = new MessageAuthenticator(analysisId, bIdentity, { keysOf: (x) => fed.roster.nodes.find((r) => r.node_id === x)?.keys });
  let n = 0;
  const forge = (from: string, to: string, category: string, data: unknown): WireMessage => {
    const m: WireMessage = { id: `mem-forged-${++n}`, sender: from, recipient: to, category, time: new Date().toISOString(), message_number: n, session: 'b0000002', body: frame(FRAME_INLINE, encodeValue(data as never)) };
    // b tags as itself, then claims another sender: the tag does not verify for that sender.
    m.auth = bTagger.tag({ ...m, sender: 'b' });
    return m;
  };
  await raw.publish(forge('a', 'c', STAR_FAILED, { round: 0, error: 'forged by b' }));
  await raw.publish(forge('c', 'a', STAR_ROUND, { round: 0, done: true, global: { total: -1 } }));
  await raw.publish({ ...forge('a', 'c', 'message', { x: 1 }), auth: undefined });
  // With a's key id in the tag instead of b's: the tag itself does not verify.
  const kidOfA = fed.roster.nodes.find((x) => x.node_id === 'a')!.keys[0].kid;
  const withAsKid = forge('a', 'c', 'message', { x: 2 });
  await raw.publish({ ...withAsKid, auth: withAsKid.auth!.replace(/^v1 \S+/, `v1 ${kidOfA}`) });
  const b = await stage.connect('b', base('b'));
  const sum = {
    analyze: ({ sdk }: { sdk: { nodeId: string } }) => ({ v: sdk.nodeId === 'a' ? 20 : 22 }),
    aggregate: (results: Array<{ value: { v: number } }>) => ({ total: results.reduce((t, r) => t + r.value.v, 0) }),
  };
  const outcomes = await Promise.all([runStar(a, sum), runStar(b, sum), runStar(c, sum)]);
  expect(outcomes.map((o) => o.result)).toEqual([{ total: 42 }, { total: 42 }, { total: 42 }]);
  expect(c.messageStats().refused).toEqual({ a: { unknown_sender_key: 1, no_tag: 1, bad_tag: 1 } });
  expect(a.messageStats().refused).toEqual({ c: { unknown_sender_key: 1 } });
  expect(c.getMessages().map((m) => m.sender).sort()).toEqual(['a', 'b']);
  await raw.close();
});
