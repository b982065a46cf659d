/**
 * Progress events of a job, sent as line-delimited JSON to the IPC (Unix domain) socket the caller
 * named. The socket is a courtesy to the caller: a missing, refusing or dying socket never fails the
 * job, events are then dropped (and said once on stderr).
 */
import net from 'node:net';
import type { JobEventSink, JobProgressEvent } from './events.js';

export type { JobProgressEvent } from './events.js';

/** A {@link JobEventSink} writing each event as one JSON line to a Unix domain socket. */
export class ProgressSocket implements JobEventSink {
  private socket?: net.Socket;
  private dead = false;
  private readonly ready: Promise<void>;

  /**
   * Start connecting to `sockAddr` (an empty address turns the sink off). A connection not made
   * within `connectTimeoutMs` (default 5 s) is given up, so a stuck listener cannot hold a job.
   */
  constructor(
    private readonly sockAddr: string,
    private readonly warn: (msg: string) => void = (m) => process.stderr.write(m + '\n'),
    connectTimeoutMs = 5000,
  ) {
    if (!sockAddr) {
      this.dead = true;
      this.ready = Promise.resolve();
      return;
    }
    this.ready = new Promise<void>((resolve) => {
      const s = net.createConnection({ path: sockAddr });
      const timer = setTimeout(() => {
        s.destroy();
        this.giveUp(`progress socket ${sockAddr}: no connection within ${connectTimeoutMs} ms; the job goes on without it`);
        resolve();
      }, connectTimeoutMs);
      timer.unref();
      s.once('connect', () => {
        clearTimeout(timer);
        if (this.dead) s.destroy();
        else this.socket = s;
        resolve();
      });
      s.on('error', (e) => {
        clearTimeout(timer);
        this.giveUp(`cannot send progress to socket ${sockAddr}: ${e.message}; the job goes on without it`);
        resolve();
      });
      s.on('close', () => {
        clearTimeout(timer);
        if (!this.dead && this.socket) this.giveUp(`progress socket ${sockAddr} closed; the job goes on without it`);
        resolve();
      });
    });
  }

  private giveUp(message: string): void {
    if (this.dead) return;
    this.dead = true;
    this.socket?.destroy();
    this.socket = undefined;
    this.warn(message);
  }

  /** Queue one event; never throws. */
  async send(event: JobProgressEvent): Promise<void> {
    await this.ready;
    if (this.dead || !this.socket) return;
    try {
      this.socket.write(JSON.stringify(event) + '\n');
    } catch (e) {
      this.giveUp(`cannot send progress to socket ${this.sockAddr}: ${(e as Error).message}`);
    }
  }

  /** Flush what was written (bounded wait) and close. */
  async close(timeoutMs = 2000): Promise<void> {
    await this.ready;
    const s = this.socket;
    if (!s || this.dead) return;
    this.dead = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        s.destroy();
        resolve();
      }, timeoutMs);
      s.end(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
