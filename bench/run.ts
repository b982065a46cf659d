/**
 * `npm run bench [-- NAME ...]`: runs the benchmarks one after another, each in its own process so
 * one's memory and warm caches do not colour the next. Without names it runs the quick set; the
 * Fashion-MNIST ones need Debian's `dataset-fashion-mnist` package.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Each benchmark with the arguments of its default run here. */
const BENCHMARKS: Record<string, { args: string[]; what: string; quick: boolean }> = {
  broker: { args: ['--n', '1500', '--rounds', '5'], what: 'FlameSDK round trips on NATS vs bare nats core and JetStream', quick: true },
  'broker-adapter': { args: [], what: 'NatsBrokerAdapter vs bare nats (adapter level)', quick: true },
  'codec-decode': { args: [], what: 'bounded decoding (decodeUntrusted) vs decodeValue and bare tableFromIPC', quick: true },
  results: { args: ['--mib', '512', '--rounds', '2'], what: 'FlameSDK result upload/download vs bare @aws-sdk/client-s3, peak RSS', quick: true },
  liveness: { args: [], what: 'time to detect a SIGKILLed node from its heartbeats vs a bare nats.js KV clock', quick: true },
  images: { args: [], what: 'image statistics vs bare sharp raw decode and sharp .stats()', quick: true },
  worker: { args: [], what: 'flame worker infer throughput vs in-process model, accuracy (Fashion-MNIST)', quick: false },
  diagnosis: { args: [], what: 'federated diagnosis on Fashion-MNIST 60k: F1, agreement, images/s per phase, checkpoint cost', quick: false },
  'diagnosis-processes': { args: [], what: 'the same diagnosis as 3 analyzer processes + an aggregator on nats-server and S3: peak RSS per node', quick: false },
  'ml-experiments': { args: ['--n', '20000'], what: 'feature and pruning choices for mislabel detection (Fashion-MNIST)', quick: false },
};

const asked = process.argv.slice(2);
if (asked.includes('--help') || asked.includes('-h')) {
  console.log('npm run bench [-- NAME ...]   (no names: the quick set; "all": every benchmark)\n');
  for (const [name, b] of Object.entries(BENCHMARKS)) console.log(`  ${name.padEnd(15)} ${b.quick ? '     ' : '(FM) '}${b.what}`);
  process.exit(0);
}
const unknown = asked.filter((n) => n !== 'all' && !(n in BENCHMARKS));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
  process.exit(2);
}
const names = asked.length === 0 ? Object.keys(BENCHMARKS).filter((n) => BENCHMARKS[n].quick) : asked.includes('all') ? Object.keys(BENCHMARKS) : asked;
let failed = 0;
for (const name of names) {
  console.log(`\n=== ${name}: ${BENCHMARKS[name].what}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, `${name}.ts`), ...BENCHMARKS[name].args], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`=== ${name} failed (exit ${r.status})`);
  }
}
process.exit(failed > 0 ? 1 : 0);
