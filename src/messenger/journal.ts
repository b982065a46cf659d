/**
 * An append-only file of records that survives a kill -9 at any point: each record is written with
 * one write call as `length (u32) | CRC-32 (u32) | payload`, and reading stops at the first record that
 * is cut short or fails its checksum (the tail a crash left), which is then cut off. Rewriting (compaction)
 * goes through a temporary file and a rename, so the old file stays whole until the new one is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { BadRequestError } from '../errors.js';

/** Largest record accepted (a message body is at most the broker's payload, far below this). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
const HEADER = 8;

function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.byteLength);
  out.writeUInt32LE(payload.byteLength, 0);
  out.writeUInt32LE(payload.byteLength === 0 ? 0 : crc32(payload) >>> 0, 4);
  out.set(payload, HEADER);
  return out;
}

/** Reads every whole record of `file` and the byte length they cover (a torn tail is not included). */
export function readRecords(file: string): { records: Buffer[]; validBytes: number } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], validBytes: 0 };
    throw e;
  }
  const records: Buffer[] = [];
  let off = 0;
  while (off + HEADER <= buf.length) {
    const len = buf.readUInt32LE(off);
    const crc = buf.readUInt32LE(off + 4);
    if (len > MAX_RECORD_BYTES || off + HEADER + len > buf.length) break;
    const payload = buf.subarray(off + HEADER, off + HEADER + len);
    if ((len === 0 ? 0 : crc32(payload) >>> 0) !== crc) break;
    records.push(payload);
    off += HEADER + len;
  }
  return { records, validBytes: off };
}

/** An open journal file that records are appended to. */
export class Journal {
  private fd: number;
  private bytes: number;

  private constructor(
    /** The journal's path. */
    readonly file: string,
    fd: number,
    bytes: number,
  ) {
    this.fd = fd;
    this.bytes = bytes;
  }

  /** Opens (creating) `file` for appending, first cutting off a torn tail; returns the records it holds. */
  static open(file: string): { journal: Journal; records: Buffer[] } {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const { records, validBytes } = readRecords(file);
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    fs.ftruncateSync(fd, validBytes);
    return { journal: new Journal(file, fd, validBytes), records };
  }

  /** Bytes in the file. */
  get size(): number {
    return this.bytes;
  }

  /** Appends records with one write call (no fsync: it survives the process, not a power cut). */
  append(...payloads: Uint8Array[]): void {
    for (const p of payloads) {
      if (p.byteLength > MAX_RECORD_BYTES) throw new BadRequestError(`journal ${this.file}: record of ${p.byteLength} bytes is over ${MAX_RECORD_BYTES}`);
    }
    const rec = payloads.length === 1 ? frame(payloads[0]) : Buffer.concat(payloads.map(frame));
    let written = 0;
    while (written < rec.length) written += fs.writeSync(this.fd, rec, written, rec.length - written, this.bytes + written);
    this.bytes += rec.length;
  }

  /** Replaces the whole file with `records` (temporary file, then rename). */
  rewrite(records: Uint8Array[]): void {
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    let bytes = 0;
    try {
      for (const r of records) {
        const rec = frame(r);
        let written = 0;
        while (written < rec.length) written += fs.writeSync(fd, rec, written, rec.length - written);
        bytes += rec.length;
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, fs.constants.O_RDWR, 0o600);
    this.bytes = bytes;
  }

  /** Closes the file. */
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
