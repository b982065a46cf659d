/**
 * A deterministic tar (POSIX ustar, with pax records for long names and huge files) written as a
 * stream. Deterministic because a resumed upload regenerates the archive and must get the same
 * bytes for the parts already stored: the entries come in a fixed order and the headers carry only
 * path, size and the file's mtime (mode 0644, uid/gid 0, no user names).
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { BadRequestError } from '../errors.js';

/** One regular file of the archive. */
export interface TarEntry {
  /** Path inside the archive, `/`-separated, relative. */
  name: string;
  /** File on disk whose bytes the entry holds. */
  source: string;
  size: number;
  /** Modification time in whole seconds since the epoch. */
  mtime: number;
}

const BLOCK = 512;
/** Largest size the 11 octal digits of a ustar header hold (8 GiB - 1). */
const MAX_USTAR_SIZE = 0o77777777777;

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

function writeString(buf: Buffer, at: number, len: number, value: string): void {
  buf.write(value, at, len, 'utf8');
}

function writeOctal(buf: Buffer, at: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0') + '\0', at, len, 'ascii');
}

/** Splits a long name into ustar's prefix (≤155 bytes) and name (≤100 bytes) at a '/', if it can. */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return { prefix, name: rest };
  }
  return undefined;
}

function header(name: string, prefix: string, size: number, mtime: number, type: '0' | 'x'): Buffer {
  const buf = Buffer.alloc(BLOCK);
  writeString(buf, 0, 100, name);
  writeOctal(buf, 100, 8, 0o644);
  writeOctal(buf, 108, 8, 0);
  writeOctal(buf, 116, 8, 0);
  writeOctal(buf, 124, 12, size);
  writeOctal(buf, 136, 12, mtime);
  buf.fill(' ', 148, 156); // checksum field counts as spaces while summing
  buf.write(type, 156, 1, 'ascii');
  buf.write('ustar\0', 257, 6, 'ascii');
  buf.write('00', 263, 2, 'ascii');
  writeString(buf, 345, 155, prefix);
  let sum = 0;
  for (const b of buf) sum += b;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return buf;
}

/** One pax record `"<len> <key>=<value>\n"`, where len counts the whole record, itself included. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const base = Buffer.byteLength(body);
  const digits = String(base).length;
  // adding the digits may add a digit (e.g. 98 + 2 = 100)
  const len = String(base + digits).length > digits ? base + digits + 1 : base + digits;
  return `${len}${body}`;
}

/** The header blocks of one entry: a pax header when ustar cannot say it, then the ustar header. */
function entryHeader(entry: TarEntry): Buffer {
  const split = splitUstarName(entry.name);
  const records: string[] = [];
  if (!split) records.push(paxRecord('path', entry.name));
  if (entry.size > MAX_USTAR_SIZE) records.push(paxRecord('size', String(entry.size)));
  const ustar = header(split?.name ?? entry.name.slice(-100), split?.prefix ?? '', entry.size > MAX_USTAR_SIZE ? 0 : entry.size, entry.mtime, '0');
  if (records.length === 0) return ustar;
  const pax = Buffer.from(records.join(''), 'utf8');
  const paxHeader = header('PaxHeader/entry', '', pax.length, entry.mtime, 'x');
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padded(pax.length) - pax.length), ustar]);
}

function checkEntry(entry: TarEntry): void {
  if (!entry.name || entry.name.startsWith('/') || entry.name.split('/').some((s) => s === '..' || s === '')) {
    throw new BadRequestError(`tar entry name ${JSON.stringify(entry.name)} is not a relative path`);
  }
  if (!Number.isInteger(entry.size) || entry.size < 0) throw new BadRequestError(`tar entry ${entry.name}: bad size ${entry.size}`);
}

/** Exact byte size of the archive {@link tarStream} writes for `entries`. */
export function tarSize(entries: readonly TarEntry[]): number {
  let total = 2 * BLOCK; // end-of-archive marker
  for (const e of entries) {
    checkEntry(e);
    total += entryHeader(e).length + padded(e.size);
  }
  return total;
}

/**
 * Streams the archive of `entries`, in the given order. Fails (BadRequestError naming the file) if
 * a file's size on disk is no longer the one in its entry, since the archive would then not match
 * its announced size nor the parts already uploaded.
 */
export function tarStream(entries: readonly TarEntry[]): Readable {
  entries.forEach(checkEntry);
  async function* generate(): AsyncGenerator<Buffer> {
    for (const e of entries) {
      yield entryHeader(e);
      let seen = 0;
      for await (const chunk of fs.createReadStream(e.source)) {
        const buf = chunk as Buffer;
        seen += buf.length;
        if (seen > e.size) break;
        yield buf;
      }
      if (seen !== e.size) {
        throw new BadRequestError(`file ${e.source} changed while it was being packed (expected ${e.size} bytes, found ${seen}${seen > e.size ? '+' : ''})`);
      }
      const pad = padded(e.size) - e.size;
      if (pad > 0) yield Buffer.alloc(pad);
    }
    yield Buffer.alloc(2 * BLOCK);
  }
  return Readable.from(generate(), { objectMode: false });
}
