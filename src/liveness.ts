/**
 * Who of the analysis' nodes is alive, from the heartbeats they write to their participant records:
 * a node is online while its last heartbeat is younger than the loss window (default 3 heartbeat
 * intervals) and it has not closed. The ready check (FLAME's `ready_check`) waits for enough of them,
 * saying who is still missing.
 */
import { TimeoutError } from './errors.js';
import type { Logger } from './logger.js';
import type { ParticipantInfo } from './broker/port.js';

/** One node's liveness. */
export interface PeerLiveness {
  /** Announced, not closed, and its last heartbeat is within the loss window. */
  online: boolean;
  /** Whether it ever announced itself. */
  announced: boolean;
  /** Milliseconds since its last heartbeat (when announced). */
  silentMs?: number;
  /** True when it closed cleanly. */
  closed?: boolean;
  /**
   * Silent (closed or not) for longer than the loss window: gone for good as far as a run is
   * concerned. A node that closed is offline at once but lost only after the window, so a pod that
   * is stopped and started again (SIGTERM, reschedule) within it goes on where it was.
   */
  lost: boolean;
}

/**
 * Notices when this process' own event loop froze (long synchronous work): while it was frozen it
 * could not read the peers' heartbeats — and in a simulation, where every node shares the loop, they
 * could not even be sent — so that time does not count as a peer's silence.
 */
class FreezeWatch {
  private static readonly TICK_MS = 100;
  private lastTick = Date.now();
  private freezes: Array<{ start: number; end: number }> = [];
  private timer: NodeJS.Timeout | undefined;
  private users = 0;

  start(): void {
    if (this.users++ > 0) return;
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.tick(), FreezeWatch.TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (--this.users > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.freezes = [];
  }

  private tick(now = Date.now()): void {
    // A tick more than one interval late: the loop was held for that long.
    if (now - this.lastTick > 2 * FreezeWatch.TICK_MS) this.freezes.push({ start: this.lastTick + FreezeWatch.TICK_MS, end: now });
    this.lastTick = now;
    while (this.freezes.length > 0 && now - this.freezes[0].end > 10 * 60_000) this.freezes.shift();
  }

  /** Milliseconds this process was frozen in the last `windowMs`, a freeze still under way included. */
  frozenWithin(windowMs: number, now = Date.now()): number {
    if (!this.timer) return 0;
    const from = now - windowMs;
    const overlap = (a: number, b: number) => Math.max(0, Math.min(b, now) - Math.max(a, from));
    let ms = now - this.lastTick > 2 * FreezeWatch.TICK_MS ? overlap(this.lastTick + FreezeWatch.TICK_MS, now) : 0;
    for (const f of this.freezes) ms += overlap(f.start, f.end);
    return ms;
  }
}

/**
 * Resolves after one full turn of the event loop (timers and I/O included). Long computations call
 * it between chunks: a node's heartbeats are timers on the same loop, and a node that computes for
 * longer than its peers' loss window without yielding is taken for lost.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The process' one watch (every FlameSDK in it shares the loop). */
export const freezeWatch = new FreezeWatch();

/**
 * Liveness of `nodes` from their records; `lossAfterMs` is the loss window. Time this process itself
 * was frozen is not held against a node (see {@link freezeWatch}).
 */
export function livenessOf(nodes: string[], records: ParticipantInfo[], lossAfterMs: number, now = Date.now()): Record<string, PeerLiveness> {
  const byId = new Map(records.map((r) => [r.nodeId, r]));
  return Object.fromEntries(
    nodes.map((id) => {
      const r = byId.get(id);
      if (!r) return [id, { online: false, announced: false, lost: false }];
      const silentMs = Math.max(0, now - Date.parse(r.lastSeen));
      const heldAgainst = silentMs - freezeWatch.frozenWithin(silentMs, now);
      const lost = heldAgainst > lossAfterMs;
      return [id, { online: !r.closed && !lost, announced: true, silentMs, lost, ...(r.closed ? { closed: true } : {}) }];
    }),
  );
}

/** Options of `FlameSDK.waitForParticipants`. */
export interface ReadyCheckOptions {
  /** The nodes to wait for (default every other participant). */
  nodes?: string[];
  /** How many of them must be online (default all). */
  min?: number;
  /** Give up after this long (default 60 s): TimeoutError naming who is missing. */
  timeoutMs?: number;
  /** How often to look (default: the heartbeat interval). */
  intervalMs?: number;
}

/**
 * Waits until at least `min` of `nodes` are online; logs every few seconds who is still missing.
 * Resolves with each node's state; rejects with TimeoutError naming the missing ones.
 */
export async function waitForNodes(
  records: () => Promise<ParticipantInfo[]>,
  nodes: string[],
  o: { min: number; timeoutMs: number; intervalMs: number; lossAfterMs: number; log: Logger },
): Promise<Record<string, boolean>> {
  const deadline = Date.now() + o.timeoutMs;
  let lastLog = 0;
  const started = Date.now();
  for (;;) {
    const live = livenessOf(nodes, await records(), o.lossAfterMs);
    const online = nodes.filter((n) => live[n].online);
    const missing = nodes.filter((n) => !live[n].online);
    if (online.length >= o.min) return Object.fromEntries(nodes.map((n) => [n, live[n].online]));
    const now = Date.now();
    if (now >= deadline) {
      throw new TimeoutError(`ready check: ${online.length} of ${nodes.length} nodes online after ${o.timeoutMs} ms, ${o.min} needed; missing ${missing.map((m) => `"${m}"`).join(', ')}`);
    }
    if (now - lastLog >= 5000 || lastLog === 0) {
      lastLog = now;
      o.log.info('waiting for nodes', { online: online.length, needed: o.min, missing, waited_ms: now - started });
    }
    await new Promise((r) => setTimeout(r, Math.min(o.intervalMs, Math.max(1, deadline - now))));
  }
}
