/**
 * What this machine offers analyses: the CPU, memory and the onnxruntime-node execution providers
 * that actually work. A provider counts as usable only if a tiny model (one Identity node) gets a
 * session on it and runs: being compiled into the binding is not enough (CUDA needs its libraries).
 */
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import os from 'node:os';
import ort from 'onnxruntime-node';
import { encodeModel } from '../ml/onnx-writer.js';

/** One execution provider of onnxruntime-node. */
export interface ExecutionProviderStatus {
  /** Name to pass in `executionProviders` (e.g. `cpu`, `cuda`, `webgpu`). */
  name: string;
  /** Shipped inside the onnxruntime-node package (else it needs libraries installed beside it). */
  bundled: boolean;
  /** A session was created on it and ran the probe model. */
  usable: boolean;
  /** Why it is not usable (first line of the error). */
  error?: string;
}

/** The CPU, memory and execution providers of this machine. */
export interface HostInfo {
  hostname: string;
  platform: string;
  arch: string;
  cpu: { model: string; cores: number; parallelism: number; speed_mhz: number };
  memory: { total_bytes: number; free_bytes: number };
  node: string;
  onnxruntime: string;
  providers: ExecutionProviderStatus[];
}

/** Options of {@link describeHost}. */
export interface DescribeHostOptions {
  /** Providers to probe; default every one the binding lists. */
  providers?: string[];
  /** Give up on one provider's probe after this long (default 20 s). */
  timeoutMs?: number;
}

function probeModel(): Uint8Array {
  return encodeModel({
    name: 'probe',
    inputs: [{ name: 'x', type: 'float32', shape: [2] }],
    outputs: [{ name: 'y', type: 'float32', shape: [2] }],
    nodes: [{ opType: 'Identity', inputs: ['x'], outputs: ['y'] }],
    initializers: [],
  });
}

/**
 * The probe run in a child process: a provider's native code may print to the process' stderr (a
 * missing Vulkan library, say) or crash with a bad driver; neither reaches this terminal or this process.
 */
const PROBE_SCRIPT = `
const ort = require(process.argv[1]);
(async () => {
  ort.env.logLevel = 'fatal';
  const session = await ort.InferenceSession.create(Buffer.from(process.argv[3], 'base64'), { executionProviders: [process.argv[2]], logSeverityLevel: 4 });
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1.5, -2]), [2]) });
  const y = Array.from(out.y.data);
  await session.release();
  process.stdout.write(JSON.stringify(y[0] === 1.5 && y[1] === -2 ? { ok: true } : { error: 'probe model returned ' + JSON.stringify(y) + ' instead of [1.5,-2]' }));
})().catch((e) => process.stdout.write(JSON.stringify({ error: String(e && e.message || e) })));
`;

/** Keeps the sentence of a native error that says what went wrong (they start with a source location). */
function shortError(message: string): string {
  const line = message.split('\n')[0];
  return /\.cc:\d+/.test(line) ? (line.split(/(?<=\.)\s+/).pop() ?? line) : line;
}

async function probe(name: string, model: Uint8Array, timeoutMs: number, ortPath: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['-e', PROBE_SCRIPT, ortPath, name, Buffer.from(model).toString('base64')], { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, stdout) => {
      try {
        const r = JSON.parse(stdout) as { ok?: boolean; error?: string };
        resolve(r.ok ? undefined : shortError(r.error ?? 'no answer'));
      } catch {
        resolve(err && (err as { killed?: boolean }).killed ? `no answer within ${timeoutMs} ms` : `the probe process ended without an answer (${err?.message.split('\n')[0] ?? 'no output'})`);
      }
    });
    child.stdin?.end();
  });
}

function onnxruntimeVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Describes this machine; probes each execution provider one after the other. */
export async function describeHost(options: DescribeHostOptions = {}): Promise<HostInfo> {
  const cpus = os.cpus();
  const listed = ort.listSupportedBackends();
  const names = options.providers ?? listed.map((b) => b.name);
  const model = probeModel();
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  const providers: ExecutionProviderStatus[] = [];
  for (const name of names) {
    const known = listed.find((b) => b.name === name);
    const error = known ? await probe(name, model, options.timeoutMs ?? 20000, ortPath) : `not compiled into this onnxruntime-node (it has ${listed.map((b) => b.name).join(', ')})`;
    providers.push({ name, bundled: known?.bundled ?? false, usable: error === undefined, ...(error === undefined ? {} : { error }) });
  }
  return {
    hostname: os.hostname(),
    platform: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    cpu: { model: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length, parallelism: os.availableParallelism(), speed_mhz: cpus[0]?.speed ?? 0 },
    memory: { total_bytes: os.totalmem(), free_bytes: os.freemem() },
    node: process.version,
    onnxruntime: onnxruntimeVersion(),
    providers,
  };
}
