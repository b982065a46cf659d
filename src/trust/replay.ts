/**
 * Replay and duplicate protection by message number: for each sender session (a sender's process run,
 * named by the random session id its messages carry), the highest number seen and a bitmap of the last
 * {@link REPLAY_WINDOW} numbers. A number already seen, or older than the window, is a duplicate. The
 * authentication tag covers sender, session and number, so nobody can make a fresh message look old
 * or an old one look new. Memory per session is fixed; the state is saved with the node's inbox.
 */

/** Numbers remembered behind the highest one, per sender session. */
export const REPLAY_WINDOW = 65_536;
/** Sessions unseen for this long are forgotten (longer than a message can wait on the broker). */
export const SESSION_RETENTION_MS = 8 * 24 * 3600_000;

interface Window {
  high: number;
  bits: Uint8Array;
  lastSeen: number;
}

/** A saved window (see {@link ReplayGuard.snapshot}). */
export interface WindowSnapshot {
  sender: string;
  session: string;
  high: number;
  /** Base64 of the bitmap. */
  bits: string;
  lastSeen: number;
}

/** See the module comment. */
export class ReplayGuard {
  private readonly windows = new Map<string, Window>();

  private static key(sender: string, session: string): string {
    return `${sender}\u0000${session}`;
  }

  /** True when (sender, session, number) was seen already or is too old for the window. */
  seen(sender: string, session: string, n: number): boolean {
    const w = this.windows.get(ReplayGuard.key(sender, session));
    if (!w) return false;
    if (n > w.high) return false;
    if (n <= w.high - REPLAY_WINDOW) return true;
    const i = n % REPLAY_WINDOW;
    return (w.bits[i >> 3] & (1 << (i & 7))) !== 0;
  }

  /** Records (sender, session, number) as seen. */
  mark(sender: string, session: string, n: number, now = Date.now()): void {
    const k = ReplayGuard.key(sender, session);
    let w = this.windows.get(k);
    if (!w) {
      w = { high: 0, bits: new Uint8Array(REPLAY_WINDOW / 8), lastSeen: now };
      this.windows.set(k, w);
    }
    w.lastSeen = now;
    if (n > w.high) {
      if (n - w.high >= REPLAY_WINDOW) w.bits.fill(0);
      else for (let m = w.high + 1; m < n; m++) w.bits[(m % REPLAY_WINDOW) >> 3] &= ~(1 << ((m % REPLAY_WINDOW) & 7));
      w.high = n;
    }
    if (n > w.high - REPLAY_WINDOW) {
      const i = n % REPLAY_WINDOW;
      w.bits[i >> 3] |= 1 << (i & 7);
    }
  }

  /** Every window still within {@link SESSION_RETENTION_MS}. */
  snapshot(now = Date.now()): WindowSnapshot[] {
    const out: WindowSnapshot[] = [];
    for (const [k, w] of this.windows) {
      if (now - w.lastSeen > SESSION_RETENTION_MS) continue;
      const [sender, session] = k.split('\u0000');
      out.push({ sender, session, high: w.high, bits: Buffer.from(w.bits).toString('base64'), lastSeen: w.lastSeen });
    }
    return out;
  }

  /** Restores windows saved by {@link snapshot} (malformed entries are skipped). */
  restore(list: WindowSnapshot[]): void {
    for (const s of list) {
      if (!s || typeof s.sender !== 'string' || typeof s.session !== 'string' || !Number.isSafeInteger(s.high)) continue;
      const bits = Buffer.from(String(s.bits), 'base64');
      if (bits.length !== REPLAY_WINDOW / 8) continue;
      this.windows.set(ReplayGuard.key(s.sender, s.session), { high: s.high, bits: new Uint8Array(bits), lastSeen: Number(s.lastSeen) || Date.now() });
    }
  }

  /** Number of sender sessions tracked. */
  get sessions(): number {
    return this.windows.size;
  }
}
