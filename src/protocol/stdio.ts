/**
 * Connects a line handler to byte streams: lines end at LF only (a CR before it is dropped, a CR
 * elsewhere is data), bytes are decoded as UTF-8 across chunk boundaries, and each outgoing line
 * is written with one `write` so packets never mix.
 */
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** Splits a stream of text chunks into LF-terminated lines. */
export class LineSplitter {
  private buffer = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly onLine: (line: string) => void) {}

  /** Feeds a chunk; calls `onLine` for every line it completes. */
  push(chunk: Buffer | string): void {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    let start = 0;
    let lf: number;
    while ((lf = this.buffer.indexOf('\n', start)) >= 0) {
      const end = lf > start && this.buffer[lf - 1] === '\r' ? lf - 1 : lf;
      this.onLine(this.buffer.slice(start, end));
      start = lf + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** At end of input: a last line without LF still counts. */
  end(): void {
    const rest = this.buffer + this.decoder.end();
    this.buffer = '';
    if (rest !== '') this.onLine(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
  }
}

/** Reads lines from `input` until it ends; resolves after the last line was handed over. */
export function readLines(input: Readable, onLine: (line: string) => void): Promise<void> {
  const splitter = new LineSplitter(onLine);
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
