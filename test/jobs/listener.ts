/**
 * A real Unix domain socket listener for the job tests: collects the line-delimited JSON events a
 * job sends, and can hang up after a number of lines (a listener that dies midway).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { JobProgressEvent } from '../../apps/jobs/index.js';

/** A listening socket and what it received. */
export interface Listener {
  path: string;
  /** Every complete line received, parsed. */
  events: JobProgressEvent[];
  /** Resolves when the (first) client connection closed. */
  closed: Promise<void>;
  stop(): Promise<void>;
}

/** Listens on a fresh socket path in a temporary folder; `hangUpAfter` lines, the listener closes the connection. */
export async function listen(options: { hangUpAfter?: number } = {}): Promise<Listener> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flame-job-sock-'));
  const sockPath = path.join(dir, 'progress.sock');
  const events: JobProgressEvent[] = [];
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => (onClosed = resolve));
  const server = net.createServer((conn) => {
    let buf = '';
    conn.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (options.hangUpAfter !== undefined && events.length >= options.hangUpAfter) continue;
        events.push(JSON.parse(line) as JobProgressEvent);
        if (options.hangUpAfter !== undefined && events.length >= options.hangUpAfter) conn.destroy();
      }
    });
    conn.on('error', () => undefined);
    conn.on('close', () => onClosed());
  });
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  return {
    path: sockPath,
    events,
    closed,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
