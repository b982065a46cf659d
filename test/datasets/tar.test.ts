/** The deterministic tar writer, read back by the system's tar (GNU tar). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { tarSize, tarStream, type TarEntry } from '../../src/datasets/tar.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-tar-'));
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

test('short, long (ustar prefix), very long (pax) and non-ASCII names, empty and odd-sized files', async () => {
  const contents: Record<string, Buffer> = {
    'a/one.png': Buffer.from('hello'),
    'a/empty.png': Buffer.alloc(0),
    [`${'d'.repeat(120)}/b/${'n'.repeat(90)}.png`]: Buffer.alloc(513, 7),
    [`${'x'.repeat(80)}/${'y'.repeat(150)}.png`]: Buffer.alloc(1024, 9),
    'klasse/bild-äöü.png': Buffer.from('umlauts'),
  };
  const entries: TarEntry[] = [];
  for (const [i, [name, bytes]] of Object.entries(contents).entries()) {
    const source = path.join(tmp, `src-${i}`);
    await fs.writeFile(source, bytes);
    entries.push({ name, source, size: bytes.length, mtime: 1_700_000_000 });
  }
  const archive = Buffer.concat(await tarStream(entries).toArray());
  expect(archive.length).toBe(tarSize(entries));
  expect(archive.length % 512).toBe(0);
  // deterministic: the same entries give the same bytes
  expect(Buffer.concat(await tarStream(entries).toArray()).equals(archive)).toBe(true);

  await fs.writeFile(path.join(tmp, 'x.tar'), archive);
  const listed = execFileSync('tar', ['-tf', path.join(tmp, 'x.tar')], { encoding: 'utf8' }).trim().split('\n');
  expect(listed).toEqual(Object.keys(contents));
  const out = path.join(tmp, 'out');
  await fs.mkdir(out);
  execFileSync('tar', ['-xf', path.join(tmp, 'x.tar'), '-C', out]);
  for (const [name, bytes] of Object.entries(contents)) {
    expect((await fs.readFile(path.join(out, name))).equals(bytes)).toBe(true);
  }
});

test('a file that changed size since it was planned fails the stream, naming the file', async () => {
  const source = path.join(tmp, 'changing');
  await fs.writeFile(source, 'abc');
  const stream = tarStream([{ name: 'c/f.png', source, size: 10, mtime: 0 }]);
  await expect(stream.toArray()).rejects.toThrow(/changing changed while it was being packed/);
});

test('unsafe names are refused', () => {
  expect(() => tarSize([{ name: '../x', source: '/dev/null', size: 0, mtime: 0 }])).toThrow(/not a relative path/);
  expect(() => tarSize([{ name: '/abs', source: '/dev/null', size: 0, mtime: 0 }])).toThrow(/not a relative path/);
});
