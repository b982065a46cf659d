/**
 * The node's durable inbox: every message that passed verification is written to a journal in the
 * node's state folder before the broker is told it arrived, with whether the analysis has taken it yet.
 * A node that is killed and restarted therefore has every message it was sent, exactly once: what the
 * broker redelivers after the crash is recognised as seen (sender session and number, see ReplayGuard)
 * and dropped; what the analysis had not taken yet is offered again.
 *
 * Journal records: M (a message: header JSON and body), T (the analysis took message id), D (the
 * analysis deleted message id: it does not come back after a restart), S (replay windows, written when
 * the journal is compacted). T records are written with the next M record or
 * within {@link TAKE_FLUSH_MS}: a node killed in between offers those messages once more after its
 * restart (at least once to the analysis), while an M record is always written before the broker is told. Compaction keeps untaken messages and the most
 * recent taken ones within `historyBytes` (for getMessages); older bodies are dropped.
 */
import path from 'node:path';
import type { WireMessage } from '../broker/port.js';
import type { FlameErrorKind } from '../errors.js';
import { ReplayGuard, type WindowSnapshot } from '../trust/replay.js';
import { decodeWire, wireBytes } from '../broker/wire.js';
import { Journal, readRecords } from './journal.js';

/** How a message ended up in the inbox. */
export type InboxStatus = 'ok' | 'quarantined';

/** A message as the inbox keeps it. */
export interface InboxRecord {
  /** The verified wire message (its body only when returned by {@link DurableInbox.open}). */
  wire: WireMessage;
  /** `quarantined`: the body could not be read; `error` says why. */
  status: InboxStatus;
  /** Why a quarantined message could not be read. */
  error?: { kind: FlameErrorKind; message: string };
  /** Bytes the message accounts for (inline body or referenced object). */
  size: number;
  /** True once the analysis has taken it. */
  taken: boolean;
}

const M = 1;
const T = 2;
const S = 3;
const D = 4;
/** How long a "taken" record may wait to be written with the next message. */
export const TAKE_FLUSH_MS = 50;

const QUARANTINED = 1;
const TAKEN = 2;

/** An M record: M | flags | accounted size (u32) | error JSON length (u16) | error JSON | the message's wire bytes. */
function encodeMessage(w: WireMessage, status: InboxStatus, size: number, error: InboxRecord['error'] | undefined, taken: boolean): Buffer {
  const err = error ? Buffer.from(JSON.stringify(error), 'utf8') : EMPTY;
  const wire = wireBytes(w);
  const out = Buffer.allocUnsafe(8 + err.length + wire.byteLength);
  out[0] = M;
  out[1] = (status === 'quarantined' ? QUARANTINED : 0) | (taken ? TAKEN : 0);
  out.writeUInt32LE(Math.min(size, 0xffffffff), 2);
  out.writeUInt16LE(err.length, 6);
  err.copy(out, 8);
  out.set(wire, 8 + err.length);
  return out;
}

/** Reads an M record; undefined when it is malformed. */
function decodeMessage(r: Buffer): InboxRecord | undefined {
  if (r.length < 8) return undefined;
  const flags = r[1];
  const size = r.readUInt32LE(2);
  const errLen = r.readUInt16LE(6);
  if (8 + errLen > r.length) return undefined;
  let error: InboxRecord['error'];
  if (errLen > 0) {
    try {
      error = JSON.parse(r.toString('utf8', 8, 8 + errLen)) as InboxRecord['error'];
    } catch {
      return undefined;
    }
  }
  const wire = decodeWire(r.subarray(8 + errLen));
  if (!wire) return undefined;
  return { wire, status: flags & QUARANTINED ? 'quarantined' : 'ok', ...(error ? { error } : {}), size, taken: (flags & TAKEN) !== 0 };
}

const EMPTY = Buffer.alloc(0);

/** Options of {@link DurableInbox.open}. */
export interface InboxOptions {
  /** Bytes of taken messages kept for getMessages across compactions (default 64 MiB). */
  historyBytes?: number;
  /** Compact once the journal is this large and mostly dead (default 64 MiB). */
  compactBytes?: number;
}

/** See the module comment. */
export class DurableInbox {
  private readonly replay = new ReplayGuard();
  private readonly records = new Map<string, Omit<InboxRecord, 'wire'> & { wire: Omit<WireMessage, 'body'> }>();
  private liveBytes = 0;
  private readonly unread = new Map<string, number>();
  private pendingTakes: Buffer[] = [];
  private takeTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly journal: Journal,
    private readonly historyBytes: number,
    private readonly compactBytes: number,
  ) {}

  /** Opens the inbox in `dir`; returns it and every message it holds (with bodies), in arrival order. */
  static open(dir: string, opts: InboxOptions = {}): { inbox: DurableInbox; restored: InboxRecord[] } {
    const { journal, records } = Journal.open(path.join(dir, 'inbox.journal'));
    const inbox = new DurableInbox(journal, opts.historyBytes ?? 64 * 1024 * 1024, opts.compactBytes ?? 64 * 1024 * 1024);
    const bodies = new Map<string, Uint8Array>();
    for (const r of records) {
      if (r[0] === M) {
        const rec = decodeMessage(r);
        if (!rec) continue;
        const { body, ...wire } = rec.wire;
        inbox.records.set(wire.id, { ...rec, wire });
        bodies.set(wire.id, body);
        if (wire.session !== undefined) inbox.replay.mark(wire.sender, wire.session, wire.message_number);
        inbox.liveBytes += r.length;
      } else if (r[0] === T) {
        const rec = inbox.records.get(r.subarray(1).toString('utf8'));
        if (rec) rec.taken = true;
      } else if (r[0] === D) {
        const id = r.subarray(1).toString('utf8');
        inbox.records.delete(id);
        bodies.delete(id);
      } else if (r[0] === S) {
        try {
          inbox.replay.restore((JSON.parse(r.subarray(1).toString('utf8')) as { windows: WindowSnapshot[] }).windows);
        } catch {
          // a snapshot that does not parse is skipped; messages still in the journal re-mark their numbers
        }
      }
    }
    for (const rec of inbox.records.values()) if (!rec.taken) inbox.count(rec.wire.sender, rec.size);
    const restored = [...inbox.records.values()].map((rec) => ({ ...rec, wire: { ...rec.wire, body: bodies.get(rec.wire.id) ?? new Uint8Array(0) } }));
    return { inbox, restored };
  }

  /** True when this message (by sender session and number) is already in the inbox or too old. */
  isDuplicate(w: WireMessage): boolean {
    if (this.records.has(w.id)) return true;
    return w.session !== undefined && this.replay.seen(w.sender, w.session, w.message_number);
  }

  /** Writes a verified message to the journal (before its arrival is acknowledged to the broker). */
  add(w: WireMessage, status: InboxStatus, size: number, error?: InboxRecord['error']): void {
    const rec = encodeMessage(w, status, size, error, false);
    // "Taken" records wait for their timer, never for the next message: one written in the same tick
    // as the take could reach the disk before the analysis' code after awaitMessage ran, and a kill
    // -9 between the two would lose that message to the analysis (seen: 1 of 2000).
    this.journal.append(rec);
    this.liveBytes += rec.length;
    const { body: _body, ...head } = w;
    void _body;
    this.records.set(w.id, { wire: head, status, ...(error ? { error } : {}), size, taken: false });
    this.count(w.sender, size);
    if (w.session !== undefined) this.replay.mark(w.sender, w.session, w.message_number);
  }

  /** Records that the analysis took message `id`. */
  take(id: string): void {
    const rec = this.records.get(id);
    if (!rec || rec.taken) return;
    rec.taken = true;
    this.count(rec.wire.sender, -rec.size);
    this.pendingTakes.push(Buffer.concat([Buffer.from([T]), Buffer.from(id, 'utf8')]));
    this.takeTimer ??= setTimeout(() => this.flushTakes(), TAKE_FLUSH_MS).unref();
  }

  /** Writes the "taken" records that wait (for their timer, or a close or compaction). */
  flushTakes(): void {
    if (this.takeTimer) clearTimeout(this.takeTimer);
    this.takeTimer = undefined;
    if (this.pendingTakes.length > 0) this.journal.append(...this.pendingTakes.splice(0));
    this.maybeCompact();
  }

  /**
   * Deletes messages `ids` for good: a D record is written at once (with any waiting "taken" records),
   * so they do not come back after a restart; their numbers stay seen, so a redelivery stays a duplicate.
   * Returns the ids that were in the inbox.
   */
  delete(ids: readonly string[]): string[] {
    const gone: string[] = [];
    for (const id of ids) {
      const rec = this.records.get(id);
      if (!rec) continue;
      if (!rec.taken) this.count(rec.wire.sender, -rec.size);
      this.records.delete(id);
      gone.push(id);
    }
    if (gone.length === 0) return gone;
    if (this.takeTimer) clearTimeout(this.takeTimer);
    this.takeTimer = undefined;
    this.journal.append(...this.pendingTakes.splice(0), ...gone.map((id) => Buffer.concat([Buffer.from([D]), Buffer.from(id, 'utf8')])));
    this.maybeCompact();
    return gone;
  }

  /** Bytes of untaken messages from `sender`. */
  unreadBytes(sender: string): number {
    return this.unread.get(sender) ?? 0;
  }

  private count(sender: string, delta: number): void {
    this.unread.set(sender, (this.unread.get(sender) ?? 0) + delta);
  }

  private maybeCompact(): void {
    if (this.journal.size < this.compactBytes || this.journal.size < 2 * this.liveBytes) return;
    this.compact();
  }

  /** Rewrites the journal with the replay windows, untaken messages and recent history only. */
  compact(): void {
    if (this.pendingTakes.length > 0) this.journal.append(...this.pendingTakes.splice(0));
    const keep = new Set<string>();
    let history = 0;
    for (const r of [...this.records.values()].reverse()) {
      if (!r.taken) keep.add(r.wire.id);
      else if (history + r.size <= this.historyBytes) {
        keep.add(r.wire.id);
        history += r.size;
      }
    }
    const out: Uint8Array[] = [Buffer.concat([Buffer.from([S]), Buffer.from(JSON.stringify({ windows: this.replay.snapshot() }), 'utf8')])];
    const { records } = readRecords(this.journal.file);
    let live = 0;
    for (const r of records) {
      if (r[0] !== M) continue;
      const old = decodeMessage(r);
      if (!old) continue;
      if (!keep.has(old.wire.id)) {
        this.records.delete(old.wire.id);
        continue;
      }
      const rec = this.records.get(old.wire.id);
      const next = encodeMessage(old.wire, old.status, old.size, old.error, rec?.taken ?? false);
      out.push(next);
      live += next.length;
    }
    this.journal.rewrite(out);
    this.liveBytes = live;
  }

  /** Writes what waits and closes the journal file. */
  close(): void {
    this.flushTakes();
    this.journal.close();
  }
}
