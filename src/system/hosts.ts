/**
 * What this machine offers analyses: the CPU, memory and the onnxruntime-node execution providers
 * that actually work. A provider counts as usable only if a tiny model (one Identity node) gets a
 * session on it and runs: being compiled into the binding is not enough (CUDA needs its libraries).
 */
import { createRequire } from 'node:module';
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

async function probe(name: string, model: Uint8Array, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const attempt = (async () => {
    const session = await ort.InferenceSession.create(model, { executionProviders: [name], logSeverityLevel: 4 });
    try {
      const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1.5, -2]), [2]) });
      const y = Array.from(out.y.data as Float32Array);
      if (y[0] !== 1.5 || y[1] !== -2) return `probe model returned ${JSON.stringify(y)} instead of [1.5,-2]`;
      return undefined;
    } finally {
      await session.release();
    }
  })();
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } catch (e) {
    const line = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    // native errors start with a source location and a condition: keep the last sentence
    return /\.cc:\d+/.test(line) ? (line.split(/(?<=\.)\s+/).pop() ?? line) : line;
  } finally {
    clearTimeout(timer);
  }
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
  ort.env.logLevel = 'fatal'; // failed probes are reported in the result, not as native log lines
  const providers: ExecutionProviderStatus[] = [];
  for (const name of names) {
    const known = listed.find((b) => b.name === name);
    const error = known ? await probe(name, model, options.timeoutMs ?? 20000) : `not compiled into this onnxruntime-node (it has ${listed.map((b) => b.name).join(', ')})`;
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
