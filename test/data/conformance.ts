/**
 * One conformance suite for the FileDataClient port, run against every adapter (local folders and
 * S3 prefixes), so analyses can read files the same way wherever a node keeps them.
 */
import type { Readable } from 'node:stream';
import type { FileDataClient } from '../../src/data/port.js';
import { BadRequestError, NotFoundError } from '../../src/errors.js';

/** A source holding `files` (key → content), and how to remove it. */
export interface FileSourceFixture {
  client: FileDataClient;
  cleanup(): Promise<void>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const FILES: Record<string, Buffer> = {
  'labels.csv': Buffer.from('file,label\n'),
  'train/cat/a.png': Buffer.from([1, 2, 3]),
  'train/cat/b.png': Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 13) & 0xff)),
  'train/dog/c.png': Buffer.from([9]),
  'test/x.png': Buffer.from([4, 5]),
};

/** Registers the suite; `make` creates a source holding the given files. */
export function describeFileDataClientConformance(name: string, make: (files: Record<string, Buffer>) => Promise<FileSourceFixture>): void {
  describe(`FileDataClient conformance: ${name}`, () => {
    let fx: FileSourceFixture;
    beforeAll(async () => {
      fx = await make(FILES);
    });
    afterAll(() => fx.cleanup());

    test('list: every file, keys relative to the root, sorted, with sizes and times', async () => {
      const entries = await fx.client.list();
      expect(entries.map((e) => e.key)).toEqual(Object.keys(FILES).sort());
      for (const e of entries) {
        expect(e.size).toBe(FILES[e.key].length);
        expect(Number.isNaN(Date.parse(e.lastModified))).toBe(false);
      }
    });

    test('list with a folder or partial prefix narrows the listing', async () => {
      expect((await fx.client.list('train/cat/')).map((e) => e.key)).toEqual(['train/cat/a.png', 'train/cat/b.png']);
      expect((await fx.client.list('train/')).map((e) => e.key)).toEqual(['train/cat/a.png', 'train/cat/b.png', 'train/dog/c.png']);
      expect(await fx.client.list('nothing-here/')).toEqual([]);
    });

    test('getBytes and getStream return the exact content', async () => {
      for (const [key, content] of Object.entries(FILES)) {
        expect(Buffer.compare(Buffer.from(await fx.client.getBytes(key)), content)).toBe(0);
      }
      expect(Buffer.compare(await readAll(await fx.client.getStream('train/cat/b.png')), FILES['train/cat/b.png'])).toBe(0);
    });

    test('a missing key is a NotFoundError naming it', async () => {
      await expect(fx.client.getBytes('train/cat/zzz.png')).rejects.toThrow(NotFoundError);
      await expect(fx.client.getBytes('train/cat/zzz.png')).rejects.toThrow(/train\/cat\/zzz\.png/);
      await expect(fx.client.getStream('nope.bin')).rejects.toThrow(NotFoundError);
    });

    test.each(['../outside.txt', '/etc/passwd', 'train/../../x', 'train//cat/a.png', 'train\\cat\\a.png', ''])('unsafe key %j is refused', async (key) => {
      await expect(fx.client.getBytes(key)).rejects.toThrow(BadRequestError);
    });
  });
}
