/**
 * Upload and download throughput of a large final result through FlameSDK (on S3ObjectStore), against the bare
 * @aws-sdk/client-s3 doing the same work (manual multipart upload with the same part size and
 * parallelism; GetObject streamed to a sink), in the same run against an in-process s3rver.
 * The object is generated on the fly, never held in memory. Prints MB/s, the ratio store/bare
 * (target >= 0.8) and this process' peak RSS (target < 256 MiB; s3rver runs in a child process).
 *
 *   npx tsx bench/results.ts [--mib 512] [--rounds 2]
 */
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

async function main(): Promise<void> {
  const mib = argNumber('mib', 512);
  const rounds = argNumber('rounds', 2);
  const total = Math.round(mib * MiB);
  const server = await startS3Process('bench');
  const conn = { ...server, bucket: 'bench' };
  const client = makeS3Client(conn);
  // Our side goes through the whole SDK: FlameSDK → ResultService → S3ObjectStore.
  const sdk = await FlameSDK.connect({
    nodeId: 'bench',
    participants: ['bench'],
    hub: { type: 's3', ...conn, forcePathStyle: true },
    local: { type: 'fs', dir: path.join(os.tmpdir(), `flame-bench-${process.pid}`) },
    logLevel: 'warn',
  });
  let resultId = '';
  const startRss = process.memoryUsage().rss / MiB;
  const best = { bareUp: Infinity, storeUp: Infinity, bareDown: Infinity, storeDown: Infinity };
  const rssAfter: Record<string, number> = {};
  console.log(`object: ${mib} MiB generated on the fly; part size ${DEFAULT_PART_SIZE / MiB} MiB, ${DEFAULT_QUEUE_SIZE} parts in flight; ${rounds} round(s), best time counts`);
  try {
    for (let round = 0; round < rounds; round++) {
      // alternate who goes first, so neither always gets the warm (or the cold) server
      const order = round % 2 === 0 ? ['bare', 'store'] : ['store', 'bare'];
      for (const who of order) {
        if (who === 'bare') {
          best.bareUp = Math.min(best.bareUp, await timed(() => bareUpload(client, 'bench', 'bare.bin', generated(total), DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE)));
          rssAfter['bare upload'] = peakRssMiB();
        } else {
          let reported = 0;
          best.storeUp = Math.min(best.storeUp, await timed(async () => (resultId = await sdk.sendResultStream(generated(total), { name: 'bench', onProgress: (b) => (reported = b) }))));
          if (reported !== total) throw new Error(`progress ended at ${reported} of ${total} bytes`);
          rssAfter['store upload'] = peakRssMiB();
        }
      }
      for (const who of order) {
        if (who === 'bare') {
          let got = 0;
          best.bareDown = Math.min(best.bareDown, await timed(async () => (got = await bareDownload(client, 'bench', 'bare.bin'))));
          if (got !== total) throw new Error(`bare download got ${got} of ${total} bytes`);
          rssAfter['bare download'] = peakRssMiB();
        } else {
          const out = sink();
          best.storeDown = Math.min(best.storeDown, await timed(async () => pipeline(await sdk.results.getResultStream(resultId), out)));
          if (out.bytes !== total) throw new Error(`store download got ${out.bytes} of ${total} bytes`);
          rssAfter['store download'] = peakRssMiB();
        }
      }
    }
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: 'bench', Key: 'bare.bin' })).catch(() => undefined);
    await sdk.close();
    client.destroy();
    await server.close();
  }
  const mbps = (seconds: number): number => total / 1e6 / seconds;
  const row = (label: string, bare: number, ours: number): string =>
    `${label.padEnd(9)} bare ${mbps(bare).toFixed(1).padStart(7)} MB/s   FlameSDK ${mbps(ours).toFixed(1).padStart(7)} MB/s   ratio ${(bare / ours).toFixed(2)}x (target >= 0.80)`;
  console.log(row('upload', best.bareUp, best.storeUp));
  console.log(row('download', best.bareDown, best.storeDown));
  const peak = peakRssMiB();
  console.log(`peak RSS ${peak.toFixed(0)} MiB (target < 256 MiB, s3rver runs in its own process; ${startRss.toFixed(0)} MiB before the first transfer); after each phase: ${Object.entries(rssAfter).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
