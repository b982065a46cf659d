import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BadRequestError, ConflictError, NotFoundError } from '../../src/errors.js';
import { FsObjectStore } from '../../src/results/fs.js';
import { describeObjectStoreConformance } from './conformance.js';

describeObjectStoreConformance('FsObjectStore', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-fs-store-'));
  return { store: new FsObjectStore(dir), cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
});

describe('FsObjectStore on disk', () => {
  let dir: string;
  let outside: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-fs-store-'));
    outside = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-fs-outside-'));
    await fs.writeFile(path.join(outside, 'secret.txt'), 'top secret');
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(outside, { recursive: true, force: true });
  });

  it('writes stay safe while deletes in the same folders prune empty ones', async () => {
    // Each delete of the only object in a folder removes the folder; a put racing it must still land.
    const store = new FsObjectStore(dir);
    for (let round = 0; round < 30; round++) {
      await store.put(`a/b/${round}/old`, Buffer.from('x'));
      const [put] = await Promise.all([store.put(`a/b/${round}/new`, Buffer.from('y')), store.delete(`a/b/${round}/old`)]);
      expect(put.key).toBe(`a/b/${round}/new`);
      expect(Buffer.from(await store.getBytes(`a/b/${round}/new`)).toString()).toBe('y');
      await store.delete(`a/b/${round}/new`);
    }
    expect(await store.list('a/')).toEqual([]);
  });

  it('stores objects as plain files under objects/ and leaves no temp files behind', async () => {
    const store = new FsObjectStore(dir);
    await store.put('projects/p1/result.json', Buffer.from('{"ok":true}'), { metadata: { a: 'b' } });
    expect(await fs.readFile(path.join(dir, 'objects/projects/p1/result.json'), 'utf8')).toBe('{"ok":true}');
    expect(JSON.parse(await fs.readFile(path.join(dir, 'meta/projects/p1/result.json'), 'utf8'))).toEqual({ metadata: { a: 'b' } });
    expect(await fs.readdir(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('does not follow a symlinked folder out of the store, for reads, writes and listings', async () => {
    const store = new FsObjectStore(dir);
    await store.put('seed', Buffer.from('x'));
    await fs.symlink(outside, path.join(dir, 'objects', 'escape'));
    await expect(store.getBytes('escape/secret.txt')).rejects.toThrow(BadRequestError);
    await expect(store.getBytes('escape/secret.txt')).rejects.toThrow(/escape\/secret\.txt.*outside/);
    await expect(store.put('escape/planted.txt', Buffer.from('x'))).rejects.toThrow(BadRequestError);
    await expect(fs.access(path.join(outside, 'planted.txt'))).rejects.toThrow();
    await expect(store.list('escape/')).rejects.toThrow(BadRequestError);
    // the listing of everything skips the symlink instead of walking through it
    expect((await store.list('')).map((i) => i.key)).toEqual(['seed']);
  });

  it('does not read through a symlinked file that points outside', async () => {
    const store = new FsObjectStore(dir);
    await store.put('a/real', Buffer.from('x'));
    await fs.symlink(path.join(outside, 'secret.txt'), path.join(dir, 'objects', 'a', 'link'));
    await expect(store.getBytes('a/link')).rejects.toThrow(BadRequestError);
    await expect(store.getStream('a/link')).rejects.toThrow(BadRequestError);
  });

  it('reports a key that would need an existing object as a folder as a ConflictError', async () => {
    const store = new FsObjectStore(dir);
    await store.put('a', Buffer.from('x'));
    await expect(store.put('a/b', Buffer.from('y'))).rejects.toThrow(ConflictError);
    await store.put('c/d', Buffer.from('y'));
    await expect(store.put('c', Buffer.from('z'))).rejects.toThrow(ConflictError);
    await expect(store.getBytes('c')).rejects.toThrow(NotFoundError);
    expect(await store.head('c')).toBeUndefined();
  });

  it('removes its temp file when a stream upload fails', async () => {
    const store = new FsObjectStore(dir);
    const failing = Readable.from(
      (async function* () {
        yield Buffer.alloc(4096, 1);
        throw new Error('source broke');
      })(),
    );
    await expect(store.put('x', failing)).rejects.toThrow(/source broke/);
    expect(await fs.readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect(await store.head('x')).toBeUndefined();
  });

  it('removes folders emptied by a delete', async () => {
    const store = new FsObjectStore(dir);
    await store.put('x/y/z', Buffer.from('1'));
    await store.delete('x/y/z');
    expect(await fs.readdir(path.join(dir, 'objects'))).toEqual([]);
    expect(await fs.readdir(path.join(dir, 'meta'))).toEqual([]);
  });

  it('keeps a stream opened before an overwrite reading the old content', async () => {
    const store = new FsObjectStore(dir);
    await store.put('v', Buffer.alloc(64 * 1024, 'a'));
    const stream = await store.getStream('v');
    await store.put('v', Buffer.alloc(10, 'b'));
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(Buffer.alloc(64 * 1024, 'a'))).toBe(true);
  });
});
