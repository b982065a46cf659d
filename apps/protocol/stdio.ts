/**
 * Connects a line handler to byte streams: lines end at LF only (a CR before it is dropped, a CR
 * elsewhere is data), bytes are decoded as UTF-8 once a line is complete, and each outgoing line is
 * written with one `write` so packets never mix.
 *
 * Reading is linear and bounded: each byte is scanned once, and a line longer than `maxLineBytes`
 * is reported once and then discarded up to its LF as it streams in, so it is never held.
 */
import type { Readable, Writable } from 'node:stream';
import { DEFAULT_LIMITS } from '../../src/limits.js';

/** Options of {@link LineSplitter}. */
export interface LineSplitterOptions {
  /** Longest line in bytes, a CR before the LF not counted (default `DEFAULT_LIMITS.maxLineBytes`). */
  maxLineBytes?: number;
  /** Called once per line that passes the cap, as soon as it does; its bytes are dropped. */
  onOverlong?: (maxLineBytes: number) => void;
}

const LF = 0x0a;
const CR = 0x0d;

/** Splits a stream of chunks into LF-terminated lines. */
export class LineSplitter {
  /** Pieces of the current line (each chunk's bytes are looked at once, when it arrives). */
  private parts: Buffer[] = [];
  private held = 0;
  /** Inside a line over the cap: its bytes are dropped until the LF. */
  private discarding = false;
  private readonly maxLineBytes: number;
  private readonly onOverlong: (maxLineBytes: number) => void;

  constructor(
    private readonly onLine: (line: string) => void,
    options: LineSplitterOptions = {},
  ) {
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_LIMITS.maxLineBytes;
    this.onOverlong = options.onOverlong ?? (() => undefined);
  }

  /** Feeds a chunk; calls `onLine` for every line it completes. */
  push(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    while (start < bytes.length) {
      const lf = bytes.indexOf(LF, start);
      this.take(bytes, start, lf < 0 ? bytes.length : lf);
      if (lf < 0) return;
      this.finishLine();
      start = lf + 1;
    }
  }

  /** At end of input: a last line without LF still counts. */
  end(): void {
    if (this.held > 0 || this.parts.length > 0) this.finishLine();
    this.discarding = false;
  }

  /** Adds `bytes[from, to)` to the current line, or drops them once the line is over the cap. */
  private take(bytes: Buffer, from: number, to: number): void {
    if (this.discarding || to === from) return;
    // One byte over the cap may still be the CR of a line that fits.
    if (this.held + (to - from) > this.maxLineBytes + 1) {
      this.overlong();
      return;
    }
    this.parts.push(bytes.subarray(from, to));
    this.held += to - from;
  }

  private overlong(): void {
    this.parts = [];
    this.held = 0;
    this.discarding = true;
    this.onOverlong(this.maxLineBytes);
  }

  private finishLine(): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    const line = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.held);
    this.parts = [];
    this.held = 0;
    const length = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
    if (length > this.maxLineBytes) {
      // Over by its last byte, which was not a CR: refused, and nothing is left to discard.
      this.onOverlong(this.maxLineBytes);
      return;
    }
    this.onLine(line.toString('utf8', 0, length));
  }
}

/** Reads lines from `input` until it ends; resolves after the last line was handed over. */
export function readLines(input: Readable, onLine: (line: string) => void, options: LineSplitterOptions = {}): Promise<void> {
  const splitter = new LineSplitter(onLine, options);
  return new Promise<void>((resolve, reject) => {
    input.on('data', (chunk: Buffer | string) => splitter.push(chunk));
    input.once('end', () => {
      splitter.end();
      resolve();
    });
    input.once('error', reject);
  });
}

/** A sink writing each line plus LF to `output` in one write. */
export function lineWriter(output: Writable): (line: string) => void {
  return (line) => {
    output.write(line + '\n');
  };
}
