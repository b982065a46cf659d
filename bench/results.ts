/**
 * Upload and download throughput of a large final result through FlameSDK (on S3ObjectStore), against the bare
 * @aws-sdk/client-s3 doing the same work (manual multipart upload with the same part size and
 * parallelism; GetObject streamed to a sink), in the same run against an in-process s3rver.
 * The object is generated on the fly, never held in memory. Prints MB/s, the ratio store/bare
 * (target >= 0.8) and the peak RSS of each side (target < 256 MiB). s3rver and each side run in
 * processes of their own, so a peak RSS is that side's alone.
 *
 *   npx tsx bench/results.ts [--mib 512] [--rounds 2]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, makeS3Client } from '../src/results/s3.js';
import { FlameSDK } from '../src/sdk.js';
import { startS3Process } from './s3-process.js';

const MiB = 1024 * 1024;

function argNumber(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got ${JSON.stringify(process.argv[i + 1])}`);
  return n;
}

/** `total` bytes in 1 MiB chunks; each chunk is a fresh copy of a random template with a counter stamped in. */
function generated(total: number): Readable {
  const template = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += 4) template.writeUInt32LE((Math.random() * 0xffffffff) >>> 0, i);
  let sent = 0;
  let n = 0;
  return Readable.from(
    (function* () {
      while (sent < total) {
        const size = Math.min(MiB, total - sent);
        const chunk = Buffer.allocUnsafe(size);
        template.copy(chunk, 0, 0, size);
        if (size >= 8) chunk.writeBigUInt64LE(BigInt(n++), 0);
        sent += size;
        yield chunk;
      }
    })(),
  );
}

/** A sink that counts and drops what it gets. */
function sink(): Writable & { bytes: number } {
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      w.bytes += chunk.length;
      cb();
    },
  }) as Writable & { bytes: number };
  w.bytes = 0;
  return w;
}

/** The bare-client baseline: parts of `partSize` bytes, at most `queueSize` in flight. */
async function bareUpload(client: S3Client, bucket: string, key: string, body: Readable, partSize: number, queueSize: number): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let partNumber = 0;
  const send = (buf: Buffer): void => {
    const PartNumber = ++partNumber;
    const p = client
      .send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber, Body: buf, ContentLength: buf.length }))
      .then((r) => {
        parts.push({ PartNumber, ETag: r.ETag });
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of body) {
    pending.push(chunk as Buffer);
    pendingBytes += (chunk as Buffer).length;
    while (pendingBytes >= partSize) {
      const all = Buffer.concat(pending);
      send(all.subarray(0, partSize));
      pending = [all.subarray(partSize)];
      pendingBytes -= partSize;
      if (inFlight.size >= queueSize) await Promise.race(inFlight);
    }
  }
  if (pendingBytes > 0 || partNumber === 0) send(Buffer.concat(pending));
  await Promise.all(inFlight);
  parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
}

async function bareDownload(client: S3Client, bucket: string, key: string): Promise<number> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const out = sink();
  await pipeline(res.Body as Readable, out);
  return out.bytes;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
}

interface SideResult {
  up: number;
  down: number;
  /** Peak RSS of the side's process, and its RSS before the first transfer (MiB). */
  peak: number;
  base: number;
}

/** Child mode: one side (`bare` or `flame`) uploads and downloads once, and prints its figures as JSON. */
async function runSide(side: 'bare' | 'flame', endpoint: string, total: number): Promise<SideResult> {
  const conn = { endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', bucket: 'bench' };
  const key = `${side}-${process.pid}.bin`;
  if (side === 'bare') {
    const client = makeS3Client(conn);
    const base = process.memoryUsage().rss / MiB;
    const up = await timed(() => bareUpload(client, 'bench', key, generated(total), DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE));
    let got = 0;
    const down = await timed(async () => (got = await bareDownload(client, 'bench', key)));
    if (got !== total) throw new Error(`bare download got ${got} of ${total} bytes`);
    await client.send(new DeleteObjectCommand({ Bucket: 'bench', Key: key }));
    client.destroy();
    return { up, down, peak: peakRssMiB(), base };
  }
  // Our side goes through the whole SDK: FlameSDK → ResultService → S3ObjectStore.
  const sdk = await FlameSDK.connect({
    nodeId: 'bench',
    participants: ['bench'],
    hub: { type: 's3', ...conn, forcePathStyle: true },
    local: { type: 'fs', dir: path.join(os.tmpdir(), `flame-bench-${process.pid}`) },
    logLevel: 'warn',
  });
  const base = process.memoryUsage().rss / MiB;
  let reported = 0;
  let id = '';
  const up = await timed(async () => (id = await sdk.sendResultStream(generated(total), { name: 'bench', onProgress: (b) => (reported = b) })));
  if (reported !== total) throw new Error(`progress ended at ${reported} of ${total} bytes`);
  const out = sink();
  const down = await timed(async () => pipeline(await sdk.results.getResultStream(id), out));
  if (out.bytes !== total) throw new Error(`FlameSDK download got ${out.bytes} of ${total} bytes`);
  await sdk.close();
  return { up, down, peak: peakRssMiB(), base };
}

/** Parent mode: each side runs in its own process per round, so each peak RSS is that side's alone. */
async function main(): Promise<void> {
  const mib = argNumber('mib', 512);
  const total = Math.round(mib * MiB);
  const sideIdx = process.argv.indexOf('--side');
  if (sideIdx >= 0) {
    const side = process.argv[sideIdx + 1] as 'bare' | 'flame';
    const endpoint = process.argv[process.argv.indexOf('--endpoint') + 1];
    process.stdout.write(JSON.stringify(await runSide(side, endpoint, total)) + '\n');
    return;
  }
  const rounds = argNumber('rounds', 2);
  const server = await startS3Process('bench');
  const best: Record<'bare' | 'flame', SideResult> = {
    bare: { up: Infinity, down: Infinity, peak: 0, base: 0 },
    flame: { up: Infinity, down: Infinity, peak: 0, base: 0 },
  };
  console.log(`object: ${mib} MiB generated on the fly; part size ${DEFAULT_PART_SIZE / MiB} MiB, ${DEFAULT_QUEUE_SIZE} parts in flight; ${rounds} round(s), best time counts; each side in its own process`);
  try {
    for (let round = 0; round < rounds; round++) {
      // alternate who goes first, so neither always gets the warm (or the cold) server
      const order: ('bare' | 'flame')[] = round % 2 === 0 ? ['bare', 'flame'] : ['flame', 'bare'];
      for (const side of order) {
        const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--side', side, '--endpoint', server.endpoint, '--mib', String(mib)], { encoding: 'utf8', maxBuffer: 1 << 20 });
        if (r.status !== 0) throw new Error(`${side} side failed: ${r.stderr}`);
        const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as SideResult;
        const b = best[side];
        best[side] = { up: Math.min(b.up, res.up), down: Math.min(b.down, res.down), peak: Math.max(b.peak, res.peak), base: Math.max(b.base, res.base) };
      }
    }
  } finally {
    await server.close();
  }
  const mbps = (seconds: number): number => total / 1e6 / seconds;
  const row = (label: string, bare: number, ours: number): string =>
    `${label.padEnd(9)} bare ${mbps(bare).toFixed(1).padStart(7)} MB/s   FlameSDK ${mbps(ours).toFixed(1).padStart(7)} MB/s   ratio ${(bare / ours).toFixed(2)}x (target >= 0.80)`;
  console.log(row('upload', best.bare.up, best.flame.up));
  console.log(row('download', best.bare.down, best.flame.down));
  console.log(`peak RSS: FlameSDK process ${best.flame.peak.toFixed(0)} MiB (target < 256 MiB; ${best.flame.base.toFixed(0)} MiB after start-up), bare client process ${best.bare.peak.toFixed(0)} MiB (${best.bare.base.toFixed(0)} MiB after start-up)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
