/**
 * Attack (issue 8, item 1): one message crashes another node forever. On the old main a 684-byte Arrow
 * frame with a few length fields changed made `decodeValue` spin for ~100 s and abort the receiving
 * process (exit 134); the message was never acknowledged, so the node died again on every restart and
 * later messages never arrived. Now the frame is refused within the decode budget, quarantined and
 * acknowledged: the good messages behind it arrive, and a restarted node does not see it again.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { jest } from '@jest/globals';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import type { WireMessage } from '../../src/broker/port.js';
import { encodeWire } from '../../src/broker/wire.js';
import { encodeValue } from '../../src/codec/index.js';
import { BadRequestError } from '../../src/errors.js';
import { frame, FRAME_INLINE } from '../../src/messenger/frames.js';
import { arrowFrame, lengthFields, withLength } from './arrow-frames.js';
import { useStage } from './hostile-federation.js';

jest.setTimeout(90_000);

const stage = useStage();

test('a length-bomb Arrow frame in front of good messages is refused in time; the good ones arrive, and it never comes back', async () => {
  const stateDir = path.join(stage.dir, 'c-state');
  let c = await stage.connect('c', { stateDir });
  const b = await stage.connect('b');
  // The bomb: a small table whose record batch claims 2^31-1 field nodes (the frame's checksum is right).
  const table = tableFromArrays({ id: Int32Array.from([1, 2, 3]), name: ['a', 'b', 'c'] });
  const ipc = tableToIPC(table, 'stream');
  const field = lengthFields(ipc).find((f) => /RecordBatch\.nodes$/.test(f.name))!;
  const bomb = arrowFrame(encodeValue(table), withLength(ipc, field, 0x7fffffffn));
  expect(bomb.byteLength).toBeLessThan(2048);

  const tagger = await stage.tagger('b');
  const wire: WireMessage = { id: 'poison-1', sender: 'b', recipient: 'c', category: 'message', time: new Date().toISOString(), message_number: 1, session: 'b0bad0001', body: frame(FRAME_INLINE, bomb) };
  wire.auth = tagger.tag(wire);
  await (await stage.raw('b')).jetstream().publish(stage.names.inbox('c', 'b'), encodeWire(wire), { msgID: wire.id });
  for (let i = 0; i < 5; i++) await b.sendMessage('c', { good: i });

  const t0 = Date.now();
  const refused = await c.awaitMessage('b', { timeoutMs: 30_000 }).catch((e: Error) => e);
  const ms = Date.now() - t0;
  expect(refused).toBeInstanceOf(BadRequestError);
  expect(String(refused)).toMatch(/message poison-1 from "b"/);
  expect(ms).toBeLessThan(20_000);
  for (let i = 0; i < 5; i++) expect((await c.awaitMessage('b', { timeoutMs: 10_000 })).data).toEqual({ good: i });
  // Kept in the quarantine for an operator, with the reason.
  const q = JSON.parse(await fs.readFile(path.join(stateDir, 'local-project', stage.analysisId, 'quarantine', 'b', 'poison-1.json'), 'utf8'));
  expect(q).toMatchObject({ id: 'poison-1', sender: 'b', error: { kind: 'bad_request' } });
  expect((await fs.readFile(path.join(stateDir, 'local-project', stage.analysisId, 'quarantine', 'b', 'poison-1.bin'))).equals(bomb)).toBe(true);

  // A restart: the poison was acknowledged, so the broker does not bring it back; the inbox remembers it.
  await c.close();
  c = await stage.connect('c', { stateDir });
  await b.sendMessage('c', { after: 'restart' });
  expect((await c.awaitMessage('b', { timeoutMs: 10_000 })).data).toEqual({ after: 'restart' });
  expect(c.messageStats().quarantined).toBe(0);
  expect(c.getMessages().filter((m) => m.id === 'poison-1')).toEqual([expect.objectContaining({ data: null })]);
  console.log(`poison message: refused after ${ms} ms; 5 good messages behind it arrived`);
});
