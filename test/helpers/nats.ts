/**
 * NATS servers for tests: the shared server (never stopped or restarted by a test) and private
 * `nats-server` processes on free ports for tests that need an auth config or a restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The shared NATS server with JetStream that every test may use (unique names, clean up). */
export const NATS_URL = process.env.FLAME_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

const NATS_SERVER_BIN = process.env.FLAME_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';

/** A private nats-server process started by {@link startNatsServer}. */
export interface TestNatsServer {
  url: string;
  port: number;
  /** Temporary JetStream store directory (kept across restart()). */
  storeDir: string;
  /** Stops the server (SIGTERM, so JetStream flushes) and deletes the store directory. */
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port with the same store directory. */
  restart(): Promise<void>;
  /** Stops the server without deleting anything; start it again with restart(). */
  kill(): Promise<void>;
}

/** A TCP port that was free a moment ago. */
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

/**
 * Runs /usr/sbin/nats-server on a free loopback port with a temporary store directory.
 * `config` is nats-server config text (e.g. an authorization block); `jetstream` defaults to true.
 */
export async function startNatsServer(opts: { config?: string; jetstream?: boolean } = {}): Promise<TestNatsServer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-nats-'));
  const storeDir = path.join(dir, 'store');
  const port = await freePort();
  const args = ['-a', '127.0.0.1', '-p', String(port)];
  if (opts.jetstream ?? true) args.push('-js', '-sd', storeDir);
  if (opts.config !== undefined) {
    const file = path.join(dir, 'server.conf');
    await fs.writeFile(file, opts.config);
    args.push('-c', file);
  }
  let proc: ChildProcess | undefined = await launch(args, port);

  const kill = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    kill,
    async stop() {
      await kill();
      await fs.rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      proc = await launch(args, port);
    },
  };
}

/** Spawns nats-server and resolves once it logs that it is ready (or rejects with its output). */
async function launch(args: string[], port: number): Promise<ChildProcess> {
  const proc = spawn(NATS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`nats-server on port ${port} not ready within 10 s:\n${output}`));
    }, 10_000);
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
      reject(new Error(`cannot run ${NATS_SERVER_BIN}: ${e.message}`));
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
