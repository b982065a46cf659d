/**
 * Private `nats-server` processes for tests: one on a free loopback port with JetStream in a
 * temporary store directory, stopped (and its directory deleted) by the test that started it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '../errors.js';

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** nats-server config text (e.g. an `authorization` block), written to a file passed with `-c`. */
  config?: string;
  /** Run with JetStream (`-js`, store in the temporary directory); default true. */
  jetstream?: boolean;
  /** The nats-server binary; default `FLAME_TEST_NATS_SERVER`, else `nats-server` on PATH, else `/usr/sbin/nats-server`. */
  bin?: string;
  /** How long to wait for the server to say it is ready, in ms (default 10000). */
  readyTimeoutMs?: number;
}

/** A private nats-server process started by {@link startNatsServer}. */
export interface NatsServerHandle {
  /** Its URL, `nats://127.0.0.1:<port>`. */
  url: string;
  /** Its loopback port. */
  port: number;
  /** The temporary directory of the server (config file and JetStream store); deleted by stop(). */
  dir: string;
  /** Its JetStream store directory (inside `dir`, kept across restart()). */
  storeDir: string;
  /** The process id of the running server (undefined while it is down). */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, so JetStream flushes; SIGKILL after 5 s) and deletes its directory. */
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port with the same store directory. */
  restart(): Promise<void>;
  /** Stops the server without deleting anything; start it again with restart(). */
  kill(): Promise<void>;
  /** Kills the server with SIGKILL (no shutdown at all), waits `downMs` (default 300), then starts it again on the same port and store. */
  crash(downMs?: number): Promise<void>;
}

/** How to get the binary, named in the error when it cannot be found or run. */
export const NATS_SERVER_INSTALL_HINT =
  'install nats-server (Debian/Ubuntu: apt-get install nats-server; elsewhere https://github.com/nats-io/nats-server/releases) ' +
  'or name the binary with FLAME_TEST_NATS_SERVER';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The nats-server binary to run: `bin`, else `FLAME_TEST_NATS_SERVER`, else `nats-server` on PATH,
 * else Debian's `/usr/sbin/nats-server`. Throws NotFoundError saying how to install it.
 */
export function findNatsServer(bin?: string): string {
  const named = bin ?? (process.env.FLAME_TEST_NATS_SERVER || undefined);
  if (named !== undefined) {
    if (executable(named)) return named;
    throw new NotFoundError(`nats-server binary ${JSON.stringify(named)} is not an executable file: ${NATS_SERVER_INSTALL_HINT}`);
  }
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const file = path.join(dir, 'nats-server');
    if (executable(file)) return file;
  }
  throw new NotFoundError(`nats-server is not installed (not on PATH, not in /usr/sbin): ${NATS_SERVER_INSTALL_HINT}`);
}

/**
 * Runs nats-server on a free loopback port with a temporary store directory and resolves once it is
 * ready. Call `stop()` when done: it ends the process and deletes the directory.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = findNatsServer(opts.bin);
  const readyMs = opts.readyTimeoutMs ?? 10_000;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-nats-'));
  const storeDir = path.join(dir, 'store');
  const args = ['-a', '127.0.0.1'];
  if (opts.jetstream ?? true) args.push('-js', '-sd', storeDir);
  if (opts.config !== undefined) {
    const file = path.join(dir, 'server.conf');
    await fs.writeFile(file, opts.config);
    args.push('-c', file);
  }
  let port = 0;
  let proc: ChildProcess | undefined;
  // Another process may take the free port between freePort() and the server's bind: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      proc = await launch(bin, [...args, '-p', String(port)], port, readyMs);
      break;
    } catch (e) {
      const inUse = e instanceof Error && /address already in use/i.test(e.message);
      if (!inUse || attempt >= 3) {
        await fs.rm(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  const portArgs = [...args, '-p', String(port)];

  const kill = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    storeDir,
    get pid() {
      return proc?.pid;
    },
    kill,
    async stop() {
      await kill();
      await fs.rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      proc = await launch(bin, portArgs, port, readyMs);
    },
    async crash(downMs = 300) {
      const p = proc;
      proc = undefined;
      if (p && p.exitCode === null && p.signalCode === null) {
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGKILL');
        await exited;
      }
      await new Promise((r) => setTimeout(r, downMs));
      proc = await launch(bin, portArgs, port, readyMs);
    },
  };
}

/** Spawns nats-server and resolves once it logs that it is ready (or rejects with its output). */
async function launch(bin: string, args: string[], port: number, readyMs: number): Promise<ChildProcess> {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`nats-server on port ${port} not ready within ${readyMs} ms:\n${output}`));
    }, readyMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new NotFoundError(`cannot run ${bin}: ${e.message}; ${NATS_SERVER_INSTALL_HINT}`));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server on port ${port} exited with code ${code}:\n${output}`));
    });
  });
  // Keep draining its output so the pipe never fills up and blocks the server.
  proc.stdout?.resume();
  proc.stderr?.resume();
  return proc;
}
