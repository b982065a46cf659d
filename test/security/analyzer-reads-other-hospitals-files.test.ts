/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * Attack: an analyzer reads the other hospitals' files out of what the aggregator sends it. On the
 * unfixed main every analyzer got the same round globals (with every node's duplicate marks, other
 * nodes' uuids included) and, at the end, the whole merged seed-000 result with every hospital's file
 * paths (file names carry patient ids). Here every message an analyzer receives in a full diagnosis
 * is captured and searched for the other nodes' paths, file names and uuids. A copy of one of
 * node-a's images is planted at node-b, so a duplicate across hospitals puts foreign uuids at stake.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FlameMessage } from '../../src/messenger/index.js';
import type { FlameSDK } from '../../src/sdk.js';
import { Tensor } from '../../src/codec/index.js';
import { simulate } from '../../src/star/simulator.js';
import { createDiagnosis, diagnosisRounds, type DiagnosisOptions, type DiagnosisResult } from '../../analyses/image-diagnosis/index.js';

const NODES = ['node-a', 'node-b', 'node-c'];
let SAMPLE: string;

beforeAll(async () => {
  SAMPLE = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-foreign-files-'));
  await fs.cp(path.resolve('data/sample'), SAMPLE, { recursive: true });
  // The shipped sample has no duplicates across nodes: node-b gets a copy of one of node-a's bags.
  const bags = (await fs.readdir(path.join(SAMPLE, 'node-a', 'Bag'))).sort();
  await fs.copyFile(path.join(SAMPLE, 'node-a', 'Bag', bags[0]), path.join(SAMPLE, 'node-b', 'Bag', 'copy-of-a-bag.png'));
});

afterAll(async () => {
  await fs.rm(SAMPLE, { recursive: true, force: true });
});

/** Every string a message carries (bytes read as latin1), for searching. */
function text(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Tensor) return `tensor ${v.dtype} ${v.shape.join('x')}`;
    if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
    if (ArrayBuffer.isView(v)) return `typed array of ${(v as unknown as { length: number }).length}`;
    return v;
  });
}

/** Every file of a merged result, by node: paths (as keyed and as file names) and uuids. */
function filesByNode(r: DiagnosisResult): Map<string, { paths: Set<string>; names: Set<string>; uuids: Set<string> }> {
  const out = new Map<string, { paths: Set<string>; names: Set<string>; uuids: Set<string> }>();
  for (const t of r.tasks) {
    for (const ds of Object.values(t.datasets)) {
      for (const files of Object.values(ds.class_files)) {
        for (const f of Object.values(files)) {
          const e = out.get(f.node) ?? { paths: new Set(), names: new Set(), uuids: new Set() };
          e.paths.add(f.path);
          e.names.add(path.basename(f.path));
          e.uuids.add(f.uuid);
          out.set(f.node, e);
        }
      }
    }
  }
  return out;
}

test('an analyzer receives none of the other hospitals’ file paths, file names or uuids in any message of a diagnosis', async () => {
  const received = new Map<string, FlameMessage[]>(NODES.map((n) => [n, []]));
  const sdks: FlameSDK[] = [];
  const observe = (sdk: FlameSDK): void => {
    sdks.push(sdk);
    const log = received.get(sdk.nodeId);
    if (!log) return; // the aggregator
    // Everything the runner takes from the inbox goes through awaitMessage.
    const awaitMessage = sdk.awaitMessage.bind(sdk);
    sdk.awaitMessage = async (...args: Parameters<FlameSDK['awaitMessage']>) => {
      const msg = await awaitMessage(...args);
      log.push(msg);
      return msg;
    };
  };
  const options: DiagnosisOptions = { datasetUuid: 'attack', folds: 3 };
  const { outcome, outcomes } = await simulate(createDiagnosis(options), {
    nodes: NODES.map((id) => ({ id, dataSources: [{ id: 'images', type: 'folder' as const, path: path.join(SAMPLE, id) }] })),
    maxRounds: diagnosisRounds(options),
    timeoutMs: 120_000,
    logLevel: 'error',
    onConnect: observe,
  });
  // Whatever else reached an analyzer's inbox without being awaited.
  for (const sdk of sdks) {
    const log = received.get(sdk.nodeId);
    if (log) for (const m of sdk.getMessages()) if (!log.some((x) => x.id === m.id)) log.push(m);
  }
  const merged = outcome.result.result!;
  const byNode = filesByNode(merged);
  expect([...byNode.keys()].sort()).toEqual(NODES);
  // Not vacuous: the planted duplicate across hospitals was found, so foreign uuids were at stake.
  const crossDuplicates = merged.tasks
    .find((t) => t.name === 'duplicates')!
    .datasets.outliers.class_files;
  const cross = Object.values(crossDuplicates).flatMap((files) => Object.values(files)).filter((f) => f.duplicate_of_node !== f.node);
  expect(cross.length).toBeGreaterThan(0);

  const leaks: string[] = [];
  for (const node of NODES) {
    const messages = received.get(node)!;
    expect(messages.length).toBeGreaterThanOrEqual(outcome.rounds);
    const seen = messages.map((m) => text(m.data)).join('\n') + text(outcomes[node].result);
    // The search works: the node's own final view names its own files.
    const own = byNode.get(node)!;
    expect([...own.names].some((n) => seen.includes(n))).toBe(true);
    for (const [other, files] of byNode) {
      if (other === node) continue;
      for (const p of files.paths) if (seen.includes(p)) leaks.push(`${node} saw ${other}'s path ${p}`);
      // A file name counts only as a whole name (164.png is not 1164.png).
      for (const n of files.names) if (new RegExp(`(?<![\\w-])${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`).test(seen)) leaks.push(`${node} saw ${other}'s file name ${n}`);
      for (const u of files.uuids) if (seen.includes(u)) leaks.push(`${node} saw ${other}'s uuid ${u}`);
    }
  }
  expect({ leaks: leaks.length, first: leaks.slice(0, 5) }).toEqual({ leaks: 0, first: [] });
}, 120_000);
