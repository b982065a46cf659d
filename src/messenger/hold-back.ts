/**
 * Step 3 of the messenger's receive: a sender whose unread messages reached `maxUnreadBytes` is held
 * back. Its flow waits here, in order, with its messages still on the broker, until the analysis has
 * read enough of what it sent; other senders' flows are not held up.
 */
import type { Logger } from '../logger.js';
import type { MessageStats } from './message.js';

/** Why a held-back message goes back to the broker: the node is closing. */
class Closing extends Error {
  constructor() {
    super('closing: the message stays on the broker');
  }
}

/** What a HoldBack needs to know of the messenger. */
export interface HoldBackOptions {
  /** Bytes of `sender`'s messages in the inbox not yet taken (undefined once the inbox is closed). */
  unreadBytes(sender: string): number | undefined;
  /** The unread limit per sender. */
  maxUnreadBytes: number;
  /** Counts `heldBack`. */
  stats: MessageStats;
  log: Logger;
}

/** The senders' flows that wait for room in the inbox. */
export class HoldBack {
  private released = false;
  private readonly waiters = new Set<() => void>();
  private readonly lastWarned = new Map<string, number>();

  constructor(private readonly o: HoldBackOptions) {}

  /**
   * Waits while `sender`'s unread messages plus `size` would pass the unread limit (a message alone
   * over it is let in when nothing else of the sender is unread). The sender's flow waits here, in order.
   */
  full(sender: string, size: number): boolean {
    const unread = this.o.unreadBytes(sender) ?? 0;
    return unread > 0 && unread + size > this.o.maxUnreadBytes;
  }

  /** Resolves once `sender` has room for `size` more bytes; rejects with Closing once released. */
  async roomFor(sender: string, size: number): Promise<void> {
    const full = (): boolean => this.full(sender, size);
    if (!full()) return;
    this.o.stats.heldBack++;
    if (Date.now() - (this.lastWarned.get(sender) ?? 0) >= 10_000) {
      this.lastWarned.set(sender, Date.now());
      this.o.log.warn('holding back a sender: its unread messages reached the limit', { sender, unread_bytes: this.o.unreadBytes(sender), limit: this.o.maxUnreadBytes });
    }
    while (full()) {
      if (this.released) throw new Closing();
      await new Promise<void>((r) => {
        this.waiters.add(r);
        setTimeout(r, 1000).unref();
      });
    }
  }

  /** Lets the waiting flows look again (a message was taken). */
  wake(): void {
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w();
  }

  /** Lets every held-back message go back to the broker (the node is closing). */
  release(): void {
    this.released = true;
    this.wake();
  }
}
