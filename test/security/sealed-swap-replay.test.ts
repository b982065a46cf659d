/**
 * Attack (issue 8, item 4): swapping and replaying sealed results. On the old main tampering was
 * detected, but b could replace a→c's hub object with its own content sealed to c under the same
 * associated data (sealing had no sender authentication), and an old sealed reference replayed as a
 * new message from a (5 of 5). Now a reference carries the object's size and SHA-256 under a's tag,
 * the box is sealed from a's key (only a could have made it), the associated data binds the message id,
 * sender and recipient, and c remembers what it has received across restarts.
 */
import { jest } from '@jest/globals';
import { headers, nanos, type Msg } from 'nats';
import { UnauthorizedError } from '../../src/errors.js';
import { S3ObjectStore } from '../../src/results/s3.js';
import { sealFor } from '../../src/trust/seal.js';
import { encodeValue } from '../../src/codec/index.js';
import { eventually, useStage } from './hostile-federation.js';

jest.setTimeout(90_000);

const stage = useStage();

test("b's box in place of a's sealed result is refused, naming the result and a", async () => {
  let c = await stage.connect('c');
  const a = await stage.connect('a');
  await c.close(); // c is away while b tampers with the hub
  const id = await a.sendIntermediateResult('c', { sums: [1, 2, 3] });
  const hub = new S3ObjectStore({ endpoint: stage.s3.endpoint, region: stage.s3.region, bucket: stage.bucket, accessKeyId: stage.s3.accessKeyId, secretAccessKey: stage.s3.secretAccessKey, forcePathStyle: true });
  const key = `projects/local-project/analyses/${stage.analysisId}/transfers/a/${id}`;
  const original = await hub.getBytes(key);
  // b seals its own value for c, of the same length, under any associated data it likes (here: none).
  const cKey = stage.federation.roster.nodes.find((n) => n.node_id === 'c')!.keys[0].box;
  const bKey = (await stage.identity('b')).keys[0].boxPrivate;
  const forged = sealFor(cKey, encodeValue({ sums: [9, 9, 9] }), undefined, { senderPrivateKey: bKey });
  expect(forged.byteLength).toBe(original.byteLength);
  await hub.put(key, forged);
  c = await stage.connect('c');
  const err = await c.awaitMessage('a', { timeoutMs: 10_000, category: 'intermediate_result' }).catch((e: Error) => e);
  expect(err).toBeInstanceOf(UnauthorizedError);
  expect(String(err)).toMatch(new RegExp(`cannot decrypt intermediate result ${id} from "a": the stored object differs from what the sender sent`));
  expect(c.messageStats().quarantined).toBe(1);
  // The same box in place of a's with a's digest would still not open: it is not sealed from a's key.
  const { openSealed } = await import('../../src/trust/seal.js');
  const cPriv = (await stage.identity('c')).keys[0].boxPrivate;
  const aBox = stage.federation.roster.nodes.find((n) => n.node_id === 'a')!.keys[0].box;
  expect(() => openSealed(cPriv, forged, undefined, 'forged box', { senderPublicKey: aBox })).toThrow(UnauthorizedError);
  await Promise.all([a.close(), c.close()]);
});

test('a replayed copy of delivered messages is dropped, also after the recipient restarts', async () => {
  const admin = await stage.raw('admin');
  const captured: Msg[] = [];
  // Someone who can see the broker's traffic (here the operator's login) keeps copies of a→c messages.
  const spy = admin.subscribe(stage.names.inbox('c', 'a'), { callback: (_e, m) => captured.push(m) });
  await admin.flush();
  let c = await stage.connect('c', { stateDir: `${stage.dir}/replay-state-c` });
  const a = await stage.connect('a', { stateDir: `${stage.dir}/replay-state-a` });
  for (let i = 0; i < 5; i++) await a.sendIntermediateResult('c', { i });
  for (let i = 0; i < 5; i++) expect((await c.awaitMessage('a', { timeoutMs: 10_000 })).data).toEqual({ i });
  await eventually(() => captured.length === 5, 'five copies captured');
  spy.unsubscribe();

  // Shrink the server's duplicate window so the copies are stored and delivered again.
  const jsm = await admin.jetstreamManager();
  const info = await jsm.streams.info(stage.names.stream);
  await jsm.streams.update(stage.names.stream, { ...info.config, duplicate_window: nanos(100) });
  await new Promise((r) => setTimeout(r, 300));
  const republish = async () => {
    for (const m of captured) {
      const h = headers();
      for (const [k, v] of m.headers!) h.set(k, v[0]);
      await admin.jetstream().publish(m.subject, m.data, { headers: h, msgID: m.headers!.get('Nats-Msg-Id') });
    }
  };
  await republish();
  // (the running adapter still remembers these ids and drops the copies before the messenger sees them)
  await expect(c.awaitMessage('a', { timeoutMs: 1500 })).rejects.toThrow(/no message/);
  expect(c.getMessages().filter((m) => m.sender === 'a')).toHaveLength(5);

  // After a restart c still knows them (its inbox journal), so a second replay is dropped too.
  await c.close();
  await new Promise((r) => setTimeout(r, 300));
  c = await stage.connect('c', { stateDir: `${stage.dir}/replay-state-c` });
  await republish();
  await eventually(() => c.messageStats().duplicates === 5, 'the restarted c dropped the five copies');
  await expect(c.awaitMessage('a', { timeoutMs: 500 })).rejects.toThrow(/no message/);
  expect(c.getMessages().filter((m) => m.sender === 'a')).toHaveLength(5);
});
