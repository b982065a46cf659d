/**
 * The ObjectStore port's conformance suite: every adapter (filesystem, S3) runs the same tests,
 * so code written against the port behaves the same on either.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/results/port.js';

/** What a conformance run needs: a fresh store and a way to clean it up. */
export interface StoreUnderTest {
  store: ObjectStore;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

/** A stream of `total` deterministic pseudo-random bytes in chunks of `chunk`, never held whole. */
export function generatedStream(total: number, chunk = 256 * 1024): Readable {
  let sent = 0;
  let counter = 0;
  return Readable.from(
    (function* () {
      while (sent < total) {
        const n = Math.min(chunk, total - sent);
        const buf = Buffer.allocUnsafe(n);
        for (let i = 0; i + 4 <= n; i += 4) buf.writeUInt32LE((counter++ * 2654435761) >>> 0, i);
        for (let i = n - (n % 4); i < n; i++) buf[i] = i & 0xff;
        sent += n;
        yield buf;
      }
    })(),
    { objectMode: false },
  );
}

async function sha256(stream: Readable): Promise<{ hash: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash: h.digest('hex'), size };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Registers the shared ObjectStore tests for one adapter. */
export function describeObjectStoreConformance(name: string, make: () => Promise<StoreUnderTest>): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let sut: StoreUnderTest;
    let store: ObjectStore;
    // every test writes below its own prefix, so tests never see each other's objects
    let p: string;

    beforeAll(async () => {
      sut = await make();
      store = sut.store;
    });
    afterAll(async () => {
      await sut?.cleanup();
    });
    beforeEach(() => {
      p = `t-${randomUUID()}`;
    });

    it('round trips bytes, with size and a recent lastModified', async () => {
      const body = Buffer.from('hello, federated world \u2713');
      const before = Date.now();
      const info = await store.put(`${p}/greeting.txt`, body);
      expect(info.key).toBe(`${p}/greeting.txt`);
      expect(info.size).toBe(body.length);
      expect(Buffer.from(await store.getBytes(`${p}/greeting.txt`)).equals(body)).toBe(true);
      const head = await store.head(`${p}/greeting.txt`);
      expect(head?.size).toBe(body.length);
      // S3 keeps seconds only: allow for that rounding
      expect(Date.parse(head!.lastModified)).toBeGreaterThanOrEqual(before - 2000);
      expect(Date.parse(head!.lastModified)).toBeLessThanOrEqual(Date.now() + 2000);
    });

    it('round trips an empty object and a stream body', async () => {
      await store.put(`${p}/empty`, new Uint8Array(0));
      expect((await store.getBytes(`${p}/empty`)).length).toBe(0);
      const info = await store.put(`${p}/streamed.bin`, Readable.from([Buffer.from('ab'), Buffer.from('cd'), Buffer.from('e')]));
      expect(info.size).toBe(5);
      expect((await readAll(await store.getStream(`${p}/streamed.bin`))).toString()).toBe('abcde');
    });

    it('keeps metadata, with lower-case keys, in head and list', async () => {
      await store.put(`${p}/m`, Buffer.from('x'), { metadata: { 'Result-Name': 'stats%20v1', owner: 'node-a' } });
      const head = await store.head(`${p}/m`);
      expect(head?.metadata).toEqual({ 'result-name': 'stats%20v1', owner: 'node-a' });
      const [listed] = await store.list(`${p}/`);
      expect(listed.metadata).toEqual({ 'result-name': 'stats%20v1', owner: 'node-a' });
    });

    it('rejects metadata that S3 could not carry, naming the key', async () => {
      await expect(store.put(`${p}/m2`, Buffer.from('x'), { metadata: { name: 'Grüße' } })).rejects.toThrow(BadRequestError);
      await expect(store.put(`${p}/m2`, Buffer.from('x'), { metadata: { 'bad name': 'x' } })).rejects.toThrow(`${p}/m2`);
      expect(await store.head(`${p}/m2`)).toBeUndefined();
    });

    it('lists recursively by prefix, sorted, including partial-segment prefixes', async () => {
      const keys = [`${p}/a/1`, `${p}/a/2/deep`, `${p}/ab`, `${p}/b/1`, `${p}-other/x`];
      for (const k of keys) await store.put(k, Buffer.from(k));
      expect((await store.list(`${p}/a/`)).map((i) => i.key)).toEqual([`${p}/a/1`, `${p}/a/2/deep`]);
      expect((await store.list(`${p}/a`)).map((i) => i.key)).toEqual([`${p}/a/1`, `${p}/a/2/deep`, `${p}/ab`]);
      expect((await store.list(`${p}/`)).map((i) => i.key)).toEqual(keys.slice(0, 4));
      const all = (await store.list(p)).map((i) => i.key);
      // byte order, as S3 lists: '-' sorts before '/'
      expect(all).toEqual([`${p}-other/x`, ...keys.slice(0, 4)]);
      const sizes = (await store.list(`${p}/b/`)).map((i) => i.size);
      expect(sizes).toEqual([`${p}/b/1`.length]);
      expect(await store.list(`${p}/nothing/`)).toEqual([]);
      await store.delete(`${p}-other/x`);
    });

    it('head of a missing key is undefined; get of a missing key is NotFoundError naming the key', async () => {
      expect(await store.head(`${p}/missing`)).toBeUndefined();
      await expect(store.getBytes(`${p}/missing`)).rejects.toThrow(NotFoundError);
      await expect(store.getBytes(`${p}/missing`)).rejects.toThrow(`${p}/missing`);
      await expect(store.getStream(`${p}/missing`)).rejects.toThrow(NotFoundError);
      await expect(store.getStream(`${p}/missing`)).rejects.toThrow(`${p}/missing`);
    });

    it('deletes, and deleting a missing key is not an error', async () => {
      await store.put(`${p}/gone`, Buffer.from('x'));
      await store.delete(`${p}/gone`);
      expect(await store.head(`${p}/gone`)).toBeUndefined();
      await expect(store.getBytes(`${p}/gone`)).rejects.toThrow(NotFoundError);
      expect(await store.list(`${p}/`)).toEqual([]);
      await expect(store.delete(`${p}/gone`)).resolves.toBeUndefined();
    });

    it('overwrites content and metadata', async () => {
      await store.put(`${p}/o`, Buffer.from('first version, long'), { metadata: { v: '1', only: 'first' } });
      await store.put(`${p}/o`, Buffer.from('second'), { metadata: { v: '2' } });
      expect(Buffer.from(await store.getBytes(`${p}/o`)).toString()).toBe('second');
      const head = await store.head(`${p}/o`);
      expect(head?.size).toBe(6);
      expect(head?.metadata).toEqual({ v: '2' });
      expect((await store.list(`${p}/`)).length).toBe(1);
    });

    it('leaves the old object in place when a stream upload fails', async () => {
      await store.put(`${p}/keep`, Buffer.from('old'));
      const failing = Readable.from(
        (async function* () {
          yield Buffer.alloc(1024, 1);
          throw new Error('source broke');
        })(),
      );
      await expect(store.put(`${p}/keep`, failing)).rejects.toThrow(/source broke|keep/);
      expect(Buffer.from(await store.getBytes(`${p}/keep`)).toString()).toBe('old');
    });

    it.each(['../x', '/etc/passwd', 'a/../../b', 'a\\b', 'a//b', '', 'a/./b', 'trailing/', 'nul\u0000byte', 'tab\there', 'x'.repeat(1025)].map((key) => ({ key, label: JSON.stringify(key).slice(0, 30) })))(
      'rejects the unsafe key $label in every operation, naming it',
      async ({ key }) => {
        const shown = JSON.stringify(key).slice(0, 40);
        await expect(store.put(key, Buffer.from('x'))).rejects.toThrow(BadRequestError);
        await expect(store.put(key, Buffer.from('x'))).rejects.toThrow(shown.slice(0, -1));
        await expect(store.getBytes(key)).rejects.toThrow(BadRequestError);
        await expect(store.getStream(key)).rejects.toThrow(BadRequestError);
        await expect(store.head(key)).rejects.toThrow(BadRequestError);
        await expect(store.delete(key)).rejects.toThrow(BadRequestError);
      },
    );

    it('rejects an unsafe list prefix', async () => {
      await expect(store.list('../')).rejects.toThrow(BadRequestError);
      await expect(store.list('/abs')).rejects.toThrow(BadRequestError);
    });

    it('uploads a 20 MiB generated stream in parts, reporting progress, and streams it back intact', async () => {
      const total = 20 * MiB + 123;
      const expected = await sha256(generatedStream(total));
      const progress: number[] = [];
      const info = await store.put(`${p}/big.bin`, generatedStream(total), {
        metadata: { kind: 'big' },
        onProgress: (bytes) => progress.push(bytes),
      });
      expect(info.size).toBe(total);
      expect(progress.length).toBeGreaterThan(1);
      for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
      expect(Math.max(...progress)).toBe(total);
      expect((await store.head(`${p}/big.bin`))?.size).toBe(total);
      expect(await sha256(await store.getStream(`${p}/big.bin`))).toEqual(expected);
      await store.delete(`${p}/big.bin`);
    }, 60_000);
  });
}
