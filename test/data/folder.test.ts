/** FolderDataClient on a real temporary folder, with symlinks inside and outside the root. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FolderDataClient } from '../../src/data/folder.js';
import { BadRequestError, NotFoundError } from '../../src/errors.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('FolderDataClient', () => {
  let tmp: string;
  let root: string;
  let client: FolderDataClient;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-folder-'));
    root = path.join(tmp, 'root');
    const outside = path.join(tmp, 'outside');
    await fs.mkdir(path.join(root, 'train', 'cat'), { recursive: true });
    await fs.mkdir(path.join(root, 'train', 'dog'), { recursive: true });
    await fs.mkdir(outside, { recursive: true });
    await fs.writeFile(path.join(root, 'labels.csv'), 'file,label\n');
    await fs.writeFile(path.join(root, 'train', 'cat', 'a.png'), Buffer.from([1, 2, 3]));
    await fs.writeFile(path.join(root, 'train', 'cat', 'b.png'), Buffer.alloc(70_000, 7));
    await fs.writeFile(path.join(root, 'train', 'dog', 'c.png'), Buffer.from([9]));
    await fs.writeFile(path.join(outside, 'secret.txt'), 'secret');
    // An inside link (listed and readable) and two links escaping the root (refused).
    await fs.symlink(path.join(root, 'labels.csv'), path.join(root, 'labels-link.csv'));
    await fs.symlink(path.join(outside, 'secret.txt'), path.join(root, 'train', 'leak.txt'));
    await fs.symlink(outside, path.join(root, 'escape'));
    client = new FolderDataClient(root);
  });

  afterAll(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  test('list walks recursively and returns relative POSIX keys sorted, without escaping links', async () => {
    const entries = await client.list();
    expect(entries.map((e) => e.key)).toEqual([
      'labels-link.csv',
      'labels.csv',
      'train/cat/a.png',
      'train/cat/b.png',
      'train/dog/c.png',
    ]);
    const b = entries.find((e) => e.key === 'train/cat/b.png');
    expect(b?.size).toBe(70_000);
    expect(Number.isNaN(Date.parse(b?.lastModified ?? ''))).toBe(false);
  });

  test('list filters by a folder prefix or a partial key prefix', async () => {
    expect((await client.list('train/cat/')).map((e) => e.key)).toEqual(['train/cat/a.png', 'train/cat/b.png']);
    expect((await client.list('train/cat/a')).map((e) => e.key)).toEqual(['train/cat/a.png']);
    expect((await client.list('train/')).map((e) => e.key)).toHaveLength(3);
    expect(await client.list('nothing/here/')).toEqual([]);
    // A prefix through a symlinked directory that leaves the root lists nothing.
    expect(await client.list('escape/')).toEqual([]);
  });

  test('getBytes and getStream return the file content', async () => {
    expect(await client.getBytes('train/cat/a.png')).toEqual(new Uint8Array([1, 2, 3]));
    const streamed = await readAll(await client.getStream('train/cat/b.png'));
    expect(streamed.equals(Buffer.alloc(70_000, 7))).toBe(true);
    expect(Buffer.from(await client.getBytes('labels-link.csv')).toString()).toBe('file,label\n');
  });

  test('a missing key is a NotFoundError naming the key', async () => {
    await expect(client.getBytes('train/cat/zzz.png')).rejects.toThrow(NotFoundError);
    await expect(client.getStream('train/cat/zzz.png')).rejects.toThrow(/train\/cat\/zzz\.png/);
    await expect(client.getBytes('train/cat')).rejects.toThrow(/not a file/);
  });

  test('keys escaping the root with .. or absolute paths are refused', async () => {
    for (const key of ['../outside/secret.txt', 'train/../../outside/secret.txt', '/etc/passwd', 'train//cat/a.png', '']) {
      await expect(client.getBytes(key)).rejects.toThrow(BadRequestError);
    }
    await expect(client.list('../')).rejects.toThrow(/\.\./);
  });

  test('keys escaping the root through symlinks are refused', async () => {
    const err = await client.getBytes('train/leak.txt').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toContain('train/leak.txt');
    await expect(client.getStream('escape/secret.txt')).rejects.toThrow(BadRequestError);
  });

  test('a missing root folder is a NotFoundError naming it', async () => {
    const missing = path.join(tmp, 'no-such-folder');
    await expect(new FolderDataClient(missing).list()).rejects.toThrow(missing);
  });
});
