/**
 * Attacks (issue 8, items 7 and 8) through storage references — the small broker messages that point
 * at an object in hub storage. On the old main a reference to a 3 GB object was fetched whole and
 * redelivered forever with no log line, and a reference to another project's final result was read and
 * delivered as b's message. Now a reference names the size and SHA-256 of the object, which must be
 * the sender's own transfer object for that message: an oversized, mismatched or foreign reference is
 * refused without reading the object, quarantined, logged, and the inbox moves on.
 */
import { jest } from '@jest/globals';
import type { WireMessage } from '../../src/broker/port.js';
import { encodeWire } from '../../src/broker/wire.js';
import { FRAME_STORED, FRAME_SEALED, referenceFrame, transferKey } from '../../src/messenger/frames.js';
import type { LogFields } from '../../src/logger.js';
import { S3ObjectStore } from '../../src/results/s3.js';
import { useStage } from './hostile-federation.js';

jest.setTimeout(90_000);

const stage = useStage();

test('oversized, size-mismatched and foreign references are refused unread; the next message arrives', async () => {
  const logs: Array<{ msg: string; fields: LogFields }> = [];
  const c = await stage.connect('c', { logLevel: 'warn' });
  const b = await stage.connect('b');
  // c logs through a sink we can read: reconnect c with one.
  await c.close();
  const { FlameSDK } = await import('../../src/sdk.js');
  const c2 = await FlameSDK.connect(stage.config('c', { logLevel: 'warn', limits: { maxReferenceBytes: 64 * 1024 * 1024 } }), {
    logSink: (line) => logs.push(JSON.parse(line) as { msg: string; fields: LogFields }),
  });
  const hub = new S3ObjectStore({ endpoint: stage.s3.endpoint, region: stage.s3.region, bucket: stage.bucket, accessKeyId: stage.s3.accessKeyId, secretAccessKey: stage.s3.secretAccessKey, forcePathStyle: true });

  // Another project's final result lies in the same bucket; b knows its key.
  const foreignKey = 'projects/other-project/analyses/other/final/0f4e-secret';
  await hub.put(foreignKey, Buffer.from('another project\'s final result'));
  // A large object b parked under its own prefix, whose reference claims it is small.
  const bigKey = transferKey('local-project', stage.analysisId, 'b', 'big-1');
  await hub.put(bigKey, Buffer.alloc(8 * 1024 * 1024, 1));

  const tagger = await stage.tagger('b');
  const js = (await stage.raw('b')).jetstream();
  let n = 100;
  const send = async (id: string, body: Uint8Array): Promise<void> => {
    const m: WireMessage = { id, sender: 'b', recipient: 'c', category: 'message', time: new Date().toISOString(), message_number: ++n, session: 'bad00001', body };
    m.auth = tagger.tag(m);
    await js.publish(stage.names.inbox('c', 'b'), encodeWire(m), { msgID: id });
  };
  const sha = 'a'.repeat(64);
  // 1. a reference declaring 3 GB (nothing is fetched: the size is over the limit)
  await send('huge', referenceFrame(FRAME_STORED, { key: transferKey('local-project', stage.analysisId, 'b', 'huge'), size: 3 * 1024 ** 3, sha256: sha }));
  // 2. a reference declaring 1 KiB for an 8 MiB object (refused from the object's listed size)
  await send('big-1', referenceFrame(FRAME_STORED, { key: bigKey, size: 1024, sha256: sha }));
  // 3. a reference to another project's final result, and one to a's transfer prefix
  await send('foreign', referenceFrame(FRAME_STORED, { key: foreignKey, size: 30, sha256: sha }));
  await send('as-a', referenceFrame(FRAME_SEALED, { key: transferKey('local-project', stage.analysisId, 'a', 'r1'), size: 30, sha256: sha, result_id: 'r1' }));
  // 4. then an honest message
  await b.sendMessage('c', { ok: true });

  const outcomes: string[] = [];
  for (let i = 0; i < 4; i++) outcomes.push(await c2.awaitMessage('b', { timeoutMs: 15_000 }).then(() => 'delivered', (e: Error) => e.message));
  expect(outcomes[0]).toMatch(/3221225472 bytes is over the limit of 67108864 \(maxReferenceBytes; raise it with FLAME_MAX_REFERENCE_BYTES\)/);
  expect(outcomes[1]).toMatch(/the stored object is 8388608 bytes, the sender sent 1024/);
  expect(outcomes[2]).toMatch(/points at "projects\/other-project\/analyses\/other\/final\/0f4e-secret", outside the sender's transfer object/);
  expect(outcomes[3]).toMatch(/outside the sender's transfer object/);
  expect((await c2.awaitMessage('b', { timeoutMs: 15_000 })).data).toEqual({ ok: true });
  // Each refusal was logged once, quarantined, acknowledged (not redelivered), and nothing of the foreign result reached c.
  expect(logs.filter((l) => l.msg === 'could not read message')).toHaveLength(4);
  expect(c2.messageStats().quarantined).toBe(4);
  expect(JSON.stringify(c2.getMessages())).not.toMatch(/another project/);
  await new Promise((r) => setTimeout(r, 1500));
  expect(logs.filter((l) => l.msg === 'could not read message')).toHaveLength(4);
  await c2.close();
});
