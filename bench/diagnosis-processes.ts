/**
 * The federated diagnosis of Fashion-MNIST as real node processes: the planted set of
 * bench/diagnosis.ts (same seeds, same images and truth: planted-fashion-mnist.ts) split over 3
 * analyzers written as PNG folders (`<node>/<class>/<global index>.png`, each node's folder its
 * `images` data source), and every node — three analyzers and the aggregator — a
 * `flame run analyses/image-diagnosis/index.ts` in its own child process, on a private nats-server
 * and an S3 hub (s3rver in a child process) this bench starts. Each node process runs under GNU
 * time (`/usr/bin/time`), which gives its peak RSS; the bench prints per process its peak RSS and
 * wall time, the run's wall time, and mislabeled_images / lighting_conditions precision, recall and
 * F1 against the planted truth, from the aggregator's printed response. Tasks mislabeled_images and
 * lighting_conditions, otherwise default options and disclosure (FLAME_MIN_COUNT unset: 3). The
 * time to write the PNGs is printed apart and not part of the run.
 *
 *   npx tsx bench/diagnosis-processes.ts [--n 60000] [--seed 1] [--loss-after-ms MS]
 *
 * Measured (60,000 images, seed 1, 2 cores shared with other work: load average 11–14 during the
 * run, so the wall times are inflated; one run): peak RSS node-0 1064 MB, node-1 1097 MB, node-2
 * 1081 MB (analyzers), aggregator 1141 MB (sum of peaks 4.38 GB, vs 2.24 GB for bench/diagnosis.ts's
 * one process); wall 221–223 s per process, the run 223.7 s (first spawn to last exit, node and
 * tsx start-up included); mislabeled P 0.766 R 0.903 F1 0.829 and lighting P = R = F1 1.000, the
 * same verdict figures as the in-process run; writing the 60k PNGs 50.4 s. At 3,000 images: analyzers
 * 301–316 MB, aggregator 387 MB, run 26.0 s, mislabeled P 0.640 R 0.790 F1 0.707 (same as in process).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { flaggedPaths, type DiagnosisResult } from '../analyses/image-diagnosis/index.js';
import { classFolderName } from '../src/images/dataset-idx.js';
import { writeLocalRoster } from '../src/testing/federation-keys.js';
import { startNatsServer } from '../src/testing/nats-server.js';
import { FASHION_MNIST_CLASSES } from './fashion-mnist.js';
import { fmt, plantFashionMnist, prf, SIZE } from './planted-fashion-mnist.js';
import { startS3Process } from './s3-process.js';
import { MiB, runMeasured, type MeasuredRun } from '../test/security/measure.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '60000' },
    seed: { type: 'string', default: '1' },
    'loss-after-ms': { type: 'string' },
  },
});

const ANALYZERS = ['node-0', 'node-1', 'node-2'];
const AGGREGATOR = 'aggregator';
const BUCKET = 'diagnosis-hub';
const OPTIONS = JSON.stringify({ tasks: ['mislabeled_images', 'lighting_conditions'], datasetUuid: 'fashion-mnist' });
/** Per-round timeout of every node: the load and feature rounds of 20k images each on shared cores take a while. */
const ROUND_TIMEOUT_MS = 30 * 60_000;
/**
 * How long a node's heartbeats may stop before it counts as lost: the SDK's default (3 heartbeats,
 * 6 s) unless `--loss-after-ms` says otherwise. The default once stopped a 60k run in round 2 (an
 * analyzer's event loop busy for over 6 s on 2 shared cores, standardising and predicting a whole
 * node's rows at once); those now yield between chunks of rows.
 */
const LOSS_ARGS = args['loss-after-ms'] ? ['--loss-after-ms', String(Number(args['loss-after-ms']))] : [];

/** Global image index of every flagged file of a task (files are named `<global index>.png`). */
function flaggedIndices(r: DiagnosisResult, task: 'mislabeled_images' | 'lighting_conditions'): Set<number> {
  const out = new Set<number>();
  for (const p of flaggedPaths(r, task)) {
    const i = Number(path.basename(p, '.png'));
    if (!Number.isInteger(i)) throw new Error(`flagged file ${p}: not named by its index`);
    out.add(i);
  }
  return out;
}

/** The ceilings of a node process (runMeasured's watchdog kills it past them): far above what a run needs. */
const NODE_WATCH = { rssLimit: 16 * 1024 * MiB, timeoutMs: 2 * ROUND_TIMEOUT_MS };

/** `flame run` of the diagnosis for one node under GNU time (runMeasured), `env` added to this process's (FLAME_* dropped). */
async function runNode(id: string, env: Record<string, string>): Promise<MeasuredRun & { id: string }> {
  const run = await runMeasured(['run', 'analyses/image-diagnosis/index.ts', '--timeout-ms', String(ROUND_TIMEOUT_MS), ...LOSS_ARGS], { env, ...NODE_WATCH });
  return { id, ...run };
}

/** Writes images [a, b) as `<dir>/<class folder>/<global index>.png` under their given class, `concurrency` at a time. */
async function writePngs(dir: string, images: Uint8Array, given: Uint8Array, a: number, b: number, classes: string[], concurrency = 8): Promise<void> {
  for (const c of classes) await mkdir(path.join(dir, c), { recursive: true });
  let next = a;
  const worker = async (): Promise<void> => {
    while (next < b) {
      const i = next++;
      await sharp(images.subarray(i * SIZE, (i + 1) * SIZE), { raw: { width: 28, height: 28, channels: 1 } })
        .toColourspace('b-w')
        .png()
        .toFile(path.join(dir, classes[given[i]], `${i}.png`));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function main(): Promise<void> {
  const { n, images, given, flipped, altered } = await plantFashionMnist({ split: 'train', n: Number(args.n), seed: Number(args.seed), noise: 'uniform', noiseRate: 0.1 });
  const classes = FASHION_MNIST_CLASSES.map((c) => classFolderName(c).replace(/\s+/g, '-'));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-diagnosis-processes-'));
  const bounds = Array.from({ length: ANALYZERS.length + 1 }, (_, k) => Math.floor((k * n) / ANALYZERS.length));
  console.log(`Fashion-MNIST train: ${n} images over ${ANALYZERS.length} node processes + an aggregator, ${flipped.size} labels flipped (${((100 * flipped.size) / n).toFixed(1)}%, uniform), ${altered.size} darkened/brightened (${((100 * altered.size) / n).toFixed(1)}%)`);

  const tw = performance.now();
  for (const [k, id] of ANALYZERS.entries()) await writePngs(path.join(dir, 'data', id), images, given, bounds[k], bounds[k + 1], classes);
  console.log(`PNGs written in ${((performance.now() - tw) / 1000).toFixed(1)} s (not part of the run)`);

  const nats = await startNatsServer();
  const s3 = await startS3Process(BUCKET);
  try {
    const analysisId = `bench-diag-proc-${Date.now().toString(36)}`;
    const localDir = (id: string): string => path.join(dir, 'local', id);
    const federation = await writeLocalRoster({ dir: path.join(dir, 'roster'), analysisId, nodes: [...ANALYZERS, AGGREGATOR], aggregatorId: AGGREGATOR, localDir });
    const env = (id: string, data: boolean): Record<string, string> => ({
      FLAME_ANALYSIS_ID: analysisId,
      FLAME_PARTICIPANTS: [...ANALYZERS, AGGREGATOR].join(','),
      FLAME_AGGREGATOR_ID: AGGREGATOR,
      FLAME_NATS_URL: nats.url,
      FLAME_HUB_S3_ENDPOINT: s3.endpoint,
      FLAME_HUB_S3_BUCKET: BUCKET,
      FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
      FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      FLAME_LOG_LEVEL: 'warn',
      DIAGNOSIS_OPTIONS: OPTIONS,
      ...federation.env,
      FLAME_NODE_ID: id,
      FLAME_LOCAL_DIR: localDir(id),
      FLAME_DATA_SOURCES: JSON.stringify(data ? [{ id: 'images', type: 'folder', path: path.join(dir, 'data', id) }] : []),
    });
    const t0 = performance.now();
    const runs = await Promise.all([...ANALYZERS.map((id) => runNode(id, env(id, true))), runNode(AGGREGATOR, env(AGGREGATOR, false))]);
    const runMs = performance.now() - t0;

    console.log('node processes (peak RSS from GNU time, wall time from spawn to exit):');
    for (const r of runs) {
      const role = r.id === AGGREGATOR ? 'aggregator' : 'analyzer';
      console.log(`  ${r.id.padEnd(11)} ${role.padEnd(10)} peak RSS ${(r.peakRss / MiB).toFixed(0).padStart(5)} MB  wall ${(r.elapsedMs / 1000).toFixed(1).padStart(6)} s  exit ${r.code}${r.killed ? ` (killed: ${r.killed})` : ''}`);
    }
    const total = runs.reduce((s, r) => s + r.peakRss, 0);
    console.log(`  sum of peaks ${(total / MiB).toFixed(0)} MB (the processes' peaks need not coincide)`);
    const failed = runs.filter((r) => r.code !== 0);
    for (const r of failed) console.log(`${r.id} exited ${r.code}; its stderr's tail:\n${r.stderr.slice(-3000)}`);
    if (failed.length) {
      process.exitCode = 1;
      return;
    }
    const printed = JSON.parse(runs[runs.length - 1].stdout) as { role: string; result: { phase: string; result: DiagnosisResult } };
    if (printed.role !== 'aggregator' || printed.result.phase !== 'done') throw new Error(`aggregator printed role ${printed.role}, phase ${printed.result.phase}`);
    const result = printed.result.result;
    console.log(`mislabeled_images   ${fmt(prf(flaggedIndices(result, 'mislabeled_images'), flipped))}`);
    console.log(`lighting_conditions ${fmt(prf(flaggedIndices(result, 'lighting_conditions'), altered))}`);
    console.log(`run wall time ${(runMs / 1000).toFixed(1)} s (${Math.round(n / (runMs / 1000))} img/s), first spawn to last exit`);
  } finally {
    await s3.close();
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
