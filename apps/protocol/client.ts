/**
 * The web side of the seed-004 protocol, for driving a worker process over its pipes: used by the
 * tests and the benchmark, and usable by any TypeScript backend. It sends packets (or raw lines),
 * keeps every packet received, acknowledges the ones that want an `ack` (unless told not to) and
 * collects the answers to a request until it ends (final `progress`, `pong` or `error`).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { decodePacket, type Packet, type PacketBodies, type PacketOf, type PacketType } from './packets.js';
import { LineSplitter } from './stdio.js';

/** Everything the worker sent about one request. */
export interface RequestOutcome {
  /** The request's id. */
  id: number;
  /** Packets about it in arrival order (`ack`, `progress`, `pong`, `inference-result`, `error`). */
  packets: Packet[];
  /** `completeness` of each `progress`, in order. */
  progress: number[];
  /** The `error` that ended it, if any. */
  error?: PacketOf<'error'>;
  /** The `inference-result` label, for an `infer` with an empty `output_path`. */
  label?: string;
}

/** Options of {@link WorkerClient.spawn}. */
export interface WorkerClientOptions {
  /** Acknowledge every packet that expects an `ack` (default true). */
  autoAck?: boolean;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

type Waiter = { match: (p: Packet) => boolean; resolve: (p: Packet) => void };

/** Types whose receipt the sender expects an `ack` for. */
const WANTS_ACK: ReadonlySet<PacketType> = new Set(['error', 'pong', 'progress', 'inference-result']);

/** Which request a packet from the worker is about (its `data.id`), if any. */
export function referencedId(p: Packet): number | undefined {
  return 'id' in p.data && typeof p.data.id === 'number' ? p.data.id : undefined;
}

/** A worker child process and the packets it sent. */
export class WorkerClient {
  /** Every packet received, in order. */
  readonly received: Packet[] = [];
  /** Lines on stdout that are not packets (must stay empty: stdout is for packets only). */
  readonly strayLines: string[] = [];
  private stderrText = '';
  private waiters: Waiter[] = [];
  private nextId = 1;
  private readonly exited: Promise<number | null>;
  autoAck: boolean;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, options: WorkerClientOptions) {
    this.autoAck = options.autoAck ?? true;
    const splitter = new LineSplitter((line) => this.onLine(line));
    child.stdout.on('data', (c: Buffer) => splitter.push(c));
    child.stderr.on('data', (c: Buffer) => (this.stderrText += c.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    // A worker that died must not crash the client with EPIPE; the test sees the exit instead.
    child.stdin.on('error', () => undefined);
  }

  /** Starts `command args…` (e.g. `flame worker --classes a,b`) with piped stdio. */
  static spawn(command: string, args: readonly string[], options: WorkerClientOptions = {}): WorkerClient {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    return new WorkerClient(child, options);
  }

  /** What the worker wrote on stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  /** The process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the process has exited. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private onLine(line: string): void {
    let packet: Packet;
    try {
      packet = decodePacket(line);
    } catch {
      this.strayLines.push(line);
      return;
    }
    this.received.push(packet);
    if (this.autoAck && WANTS_ACK.has(packet.type)) this.sendPacket('ack', { id: packet.id });
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.match(packet)) w.resolve(packet);
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Writes one raw line (an LF is added). */
  sendLine(line: string): void {
    this.child.stdin.write(line + '\n');
  }

  /** Writes raw bytes as they are (e.g. invalid UTF-8); the caller adds the LF. */
  sendBytes(bytes: Uint8Array): void {
    this.child.stdin.write(bytes);
  }

  /**
   * Writes raw bytes and resolves once the pipe takes more (backpressure), so a caller can stream
   * far more than it holds; rejects when the worker's stdin closed or failed meanwhile.
   */
  write(bytes: Uint8Array): Promise<void> {
    const stdin = this.child.stdin;
    if (stdin.destroyed || stdin.writableEnded) return Promise.reject(new Error('the worker\'s stdin is closed'));
    if (stdin.write(bytes)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (e?: Error): void => {
        stdin.off('drain', onDrain);
        stdin.off('close', onClose);
        stdin.off('error', done);
        if (e) reject(e);
        else resolve();
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(new Error('the worker\'s stdin closed'));
      stdin.on('drain', onDrain);
      stdin.on('close', onClose);
      stdin.on('error', done);
    });
  }

  /** Sends a packet and returns its id (a fresh one unless given). */
  sendPacket<T extends PacketType>(type: T, data: PacketBodies[T] | Record<string, unknown>, id = this.nextId++): number {
    this.sendLine(JSON.stringify({ type, id, data }));
    return id;
  }

  /**
   * The first packet from now on (or already received at index ≥ `from`) matching `match`;
   * rejects after `timeoutMs`.
   */
  waitFor(match: (p: Packet) => boolean, timeoutMs = 20_000, from = this.received.length): Promise<Packet> {
    const seen = this.received.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<Packet>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching packet within ${timeoutMs} ms; stderr:\n${this.stderrText.slice(-2000)}`));
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Sends a request and waits for its end: the final `progress` (completeness 1), the `pong` of a
   * `ping`, the `ack` of an `error`/`pong` sent by us, or an `error` about it.
   */
  async request<T extends PacketType>(type: T, data: PacketBodies[T] | Record<string, unknown>, timeoutMs = 60_000): Promise<RequestOutcome> {
    const from = this.received.length;
    const id = this.nextId++;
    const ends = (p: Packet): boolean =>
      referencedId(p) === id &&
      (p.type === 'error' ||
        (p.type === 'progress' && p.data.completeness === 1) ||
        (p.type === 'pong' && type === 'ping') ||
        (p.type === 'ack' && type !== 'load-samples' && type !== 'infer'));
    const done = this.waitFor(ends, timeoutMs, from);
    this.sendPacket(type, data, id);
    await done;
    const packets = this.received.slice(from).filter((p) => referencedId(p) === id);
    const outcome: RequestOutcome = { id, packets, progress: [] };
    for (const p of packets) {
      if (p.type === 'progress') outcome.progress.push(p.data.completeness);
      if (p.type === 'error') outcome.error = p;
      if (p.type === 'inference-result') outcome.label = p.data.label;
    }
    return outcome;
  }

  /** Closes stdin (the worker finishes its requests and exits) and resolves with the exit code. */
  async close(timeoutMs = 20_000): Promise<number | null> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process (for tests that give up). */
  kill(): void {
    this.child.kill('SIGKILL');
  }
}
