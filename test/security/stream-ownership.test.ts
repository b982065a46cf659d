/**
 * Attack (issue 8, item 3): a node owns the analysis stream. On the old main any node could create
 * the stream, and whoever connected first set its config: b created it with a republish rule into its
 * own reply prefix and read a→c messages in plain text; with `max_msg_size: 8` every later send failed.
 * Now analyzers may not create, update or delete the streams (only the aggregator creates them), and
 * every node checks their config before it sends anything, refusing to run when it differs.
 */
import { jest } from '@jest/globals';
import { nanos, RetentionPolicy, StorageType } from 'nats';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import { inboxStreamConfig, kvStreamConfig } from '../../src/broker/nats/provision.js';
import { ConflictError } from '../../src/errors.js';
import { useStage } from './hostile-federation.js';

jest.setTimeout(90_000);

const stage = useStage('each');

test('b cannot create the stream (with a republish rule or tiny limits), update it, or delete it', async () => {
  const jsm = await (await stage.raw('b')).jetstreamManager();
  const hostile = { ...inboxStreamConfig(stage.names), republish: { src: '>', dest: `${stage.names.replyPrefix('b')}.copy.>` } };
  await expect(jsm.streams.add(hostile)).rejects.toThrow(/permissions violation|timeout/i);
  await expect(jsm.streams.add({ ...inboxStreamConfig(stage.names), max_msg_size: 8 })).rejects.toThrow(/permissions violation|timeout/i);
  await expect(jsm.streams.add(kvStreamConfig(stage.names))).rejects.toThrow(/permissions violation|timeout/i);
  // The aggregator provisions; b can then neither change nor delete what it made.
  const c = await stage.connect('c');
  await expect(jsm.streams.update(stage.names.stream, { ...inboxStreamConfig(stage.names), max_msg_size: 8 })).rejects.toThrow(/permissions violation|timeout/i);
  await expect(jsm.streams.delete(stage.names.stream)).rejects.toThrow(/permissions violation|timeout/i);
  await expect(jsm.streams.purge(stage.names.stream)).rejects.toThrow(/permissions violation|timeout/i);
  // Nodes work normally on it.
  const a = await stage.connect('a');
  await a.sendMessage('c', { hello: 'c' });
  expect((await c.awaitMessage('a', { timeoutMs: 5000 })).data).toEqual({ hello: 'c' });
});

test('every node refuses a stream provisioned with a republish rule, and one with a tiny message size', async () => {
  // An operator (or a compromised admin login) set the stream up wrongly before the analysis started.
  const admin = await (await stage.raw('admin')).jetstreamManager();
  await admin.streams.add({ ...inboxStreamConfig(stage.names), republish: { src: '>', dest: 'leak.>' } });
  await admin.streams.add(kvStreamConfig(stage.names));
  for (const n of ['a', 'c'] as const) {
    const err = await stage.connect(n).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err?.message).toMatch(/republish rule sends its messages to "leak\.>"/);
    expect(err?.message).toMatch(/Refusing to send/);
  }
  await admin.streams.delete(stage.names.stream);
  await admin.streams.add({ ...inboxStreamConfig(stage.names), max_msg_size: 8 });
  const err = await stage.connect('a').then(() => undefined, (e: Error) => e);
  expect(err?.message).toMatch(/max_msg_size is 8, below/);
  // Rollups allowed on the participants bucket, or a bucket stream with other subjects, are refused too.
  await admin.streams.delete(stage.names.stream);
  await admin.streams.add(inboxStreamConfig(stage.names));
  // (the server itself refuses to lift deny_purge on an existing stream: it has to be made anew)
  await admin.streams.delete(stage.names.kvStream);
  await admin.streams.add({ ...kvStreamConfig(stage.names), allow_rollup_hdrs: true, deny_purge: false });
  expect((await stage.connect('a').then(() => undefined, (e: Error) => e))?.message).toMatch(/rollups are allowed/);
  await admin.streams.delete(stage.names.stream);
  await admin.streams.add({ name: stage.names.stream, subjects: ['flame.>'], retention: RetentionPolicy.Limits, storage: StorageType.Memory, max_age: nanos(1000) });
  const many = (await stage.connect('c').then(() => undefined, (e: Error) => e))?.message ?? '';
  for (const p of [/subjects are \["flame\.>"\]/, /retention is limits/, /storage is memory/, /max_age is under a day/]) expect(many).toMatch(p);
});

test('the operator can provision for everyone with an admin login; nodes then only check', async () => {
  await NatsBrokerAdapter.provision({ servers: [stage.nats.url], analysisId: stage.analysisId, user: 'admin', pass: stage.passwords.admin });
  const [a, c] = await Promise.all([stage.connect('a'), stage.connect('c')]);
  await c.sendMessage('a', 1);
  expect((await a.awaitMessage('c', { timeoutMs: 5000 })).data).toBe(1);
});
