/**
 * The in-memory side of the inbox: every message read so far (taken ones kept, within a byte budget,
 * for getMessages), the ones not yet taken, and the waiters of awaitMessage. The durable inbox
 * (`inbox.ts`) is the copy on disk; the messenger writes there first and files here after.
 */
import { TimeoutError } from '../errors.js';
import { describe, matches, type ClearOptions, type FlameMessage, type InboxEntry, type MessageFilter } from './message.js';

/** Bytes of taken messages kept in memory for getMessages (the oldest are forgotten first). */
const HISTORY_BYTES = 64 * 1024 * 1024;

interface Waiter {
  filter: MessageFilter;
  resolve: (e: InboxEntry) => void;
}

/** Messages in memory and the waiters on them. */
export class Mailbox {
  private readonly entries: InboxEntry[] = [];
  /** The entries not yet taken, oldest first (what awaitMessage searches). */
  private pending: InboxEntry[] = [];
  private waiters: Waiter[] = [];
  private historyBytes = 0;

  /** `onTaken` hears of every entry taken (the durable inbox marks it, held-back senders may go on). */
  constructor(private readonly onTaken: (entry: InboxEntry) => void) {}

  /** Puts back an entry kept from before a restart (no waiter exists yet). */
  restore(entry: InboxEntry): void {
    entry.receivedAt ??= Date.now();
    this.entries.push(entry);
    if (!entry.consumed) this.pending.push(entry);
  }

  /** Adds an entry to the in-memory inbox and hands it to the first waiter that wants it. */
  file(entry: InboxEntry): void {
    entry.receivedAt ??= Date.now();
    this.entries.push(entry);
    if (entry.consumed) return;
    this.pending.push(entry);
    const waiter = this.waiters.find((w) => matches(entry, w.filter));
    if (waiter) {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      this.take(entry);
      waiter.resolve(entry);
    }
  }

  private take(entry: InboxEntry): void {
    entry.consumed = true;
    const i = this.pending.indexOf(entry);
    if (i >= 0) this.pending.splice(i, 1);
    this.onTaken(entry);
    this.historyBytes += entry.size;
    while (this.historyBytes > HISTORY_BYTES) {
      const i = this.entries.findIndex((e) => e.consumed);
      if (i < 0) break;
      this.historyBytes -= this.entries[i].size;
      this.entries.splice(i, 1);
    }
  }

  /**
   * The first not-yet-awaited message that matches `filter`, waiting up to `timeoutMs` for one to arrive.
   * A message that arrived but could not be read rejects with the reason.
   */
  async await(filter: MessageFilter, timeoutMs: number): Promise<FlameMessage> {
    const found = this.pending.find((e) => matches(e, filter));
    let entry: InboxEntry;
    if (found) {
      this.take(found);
      entry = found;
    } else {
      entry = await new Promise<InboxEntry>((resolve, reject) => {
        const waiter: Waiter = {
          filter,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        const timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new TimeoutError(`no message ${describe(filter)} within ${timeoutMs} ms`));
        }, timeoutMs);
        this.waiters.push(waiter);
      });
    }
    if (entry.error) throw entry.error;
    return entry.msg;
  }

  /** Every message that has arrived so far (awaited or not), oldest first. */
  messages(filter: MessageFilter = {}): FlameMessage[] {
    return this.entries.filter((e) => matches(e, filter)).map((e) => e.msg);
  }

  /** Removes the entries with ids `ids` from memory; returns the ids it held. */
  remove(ids: ReadonlySet<string>): string[] {
    const gone = this.entries.filter((e) => ids.has(e.msg.id));
    if (gone.length === 0) return [];
    for (const e of gone) if (e.consumed) this.historyBytes -= e.size;
    const keep = (e: InboxEntry): boolean => !ids.has(e.msg.id);
    this.entries.splice(0, this.entries.length, ...this.entries.filter(keep));
    this.pending = this.pending.filter(keep);
    return gone.map((e) => e.msg.id);
  }

  /** Ids of the entries `clear` selects: of `status` (both when absent), filed at least `minAgeMs` ago. */
  idsToClear(opts: ClearOptions, now = Date.now()): string[] {
    return this.entries
      .filter((e) => (opts.status === undefined || e.consumed === (opts.status === 'read')) && now - (e.receivedAt ?? now) >= (opts.minAgeMs ?? 0))
      .map((e) => e.msg.id);
  }

  /** Fails all pending waiters with a TimeoutError of `reason`. */
  cancelWaiters(reason: string): void {
    const pending = this.waiters;
    this.waiters = [];
    for (const w of pending) w.resolve({ msg: { id: '', sender: '', recipient: '', category: '', time: '', message_number: 0, data: null }, error: new TimeoutError(reason), consumed: true, size: 0 });
  }
}
