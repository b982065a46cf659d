/**
 * Attack (issue 8, item 5): b wipes the participant list with one `Nats-Rollup: all` publish on its own
 * KV key (on the old main the bucket allowed rollups). Now the bucket is provisioned without rollups,
 * deletes or purges, and every node refuses a bucket that allows them.
 */
import { jest } from '@jest/globals';
import { headers } from 'nats';
import { useStage } from './hostile-federation.js';

jest.setTimeout(60_000);

const stage = useStage();

test("b's rollup publishes are refused and every participant record stays", async () => {
  const [c, a] = await Promise.all([stage.connect('c'), stage.connect('a')]);
  await stage.connect('b');
  const before = (await c.getParticipants()).filter((p) => p.announced).map((p) => p.nodeId);
  expect(before).toEqual(['a', 'b', 'c']);
  const js = (await stage.raw('b')).jetstream();
  for (const rollup of ['all', 'sub']) {
    const h = headers();
    h.set('Nats-Rollup', rollup);
    await expect(js.publish(`$KV.${stage.names.bucket}.${stage.names.participantKey('b')}`, new TextEncoder().encode('{}'), { headers: h, timeout: 2000 })).rejects.toThrow(
      /rollup/i,
    );
  }
  // A delete marker or a purge of someone else's key is not b's to write either.
  const del = headers();
  del.set('KV-Operation', 'PURGE');
  await expect(js.publish(`$KV.${stage.names.bucket}.${stage.names.participantKey('a')}`, new Uint8Array(0), { headers: del, timeout: 2000 })).rejects.toThrow(
    /permissions violation|timeout/i,
  );
  expect((await a.getParticipants()).filter((p) => p.announced).map((p) => p.nodeId)).toEqual(['a', 'b', 'c']);
  expect((await c.askNodeStatus({ timeoutMs: 2000 })).a).toBe('online');
});
