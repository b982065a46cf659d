/**
 * The `duplicates` task on real Fashion-MNIST images (Debian's dataset-fashion-mnist) with planted
 * near-duplicates — re-encoded as JPEG, resized, cropped by 1–2 px, brightened — on the node of
 * their original and on other nodes: precision and recall of the pairs the task reports; and the
 * shipped sample, whose 300 images are all distinct, with nothing flagged.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { diagnose, type DiagnosisResult } from '../../analyses/image-diagnosis/index.js';
import { datasetFromFolder, decodeImage } from '../../src/images/index.js';
import { tempDir } from '../images/helpers.js';
import { plantedSet } from './planted-duplicates.js';

const NODES = ['node-a', 'node-b', 'node-c'];

/** Every file the duplicates task flagged: its node and path, and the uuid it duplicates. */
function flaggedPairs(r: DiagnosisResult): Array<{ node: string; path: string; duplicateOf: string }> {
  const t = r.tasks.find((x) => x.name === 'duplicates')!;
  return Object.values(t.datasets.outliers.class_files).flatMap((fs) =>
    Object.values(fs).map((f) => ({ node: f.node, path: f.path, duplicateOf: (f as unknown as { duplicate_of: string }).duplicate_of })),
  );
}

/** uuid → absolute path of every file of the duplicates task. */
function filesByUuid(r: DiagnosisResult): Map<string, string> {
  const t = r.tasks.find((x) => x.name === 'duplicates')!;
  const out = new Map<string, string>();
  for (const ds of [t.datasets.outliers, t.datasets.inliers]) for (const fs of Object.values(ds.class_files)) for (const f of Object.values(fs)) out.set(f.uuid, path.resolve(f.path));
  return out;
}

describe('duplicates on real Fashion-MNIST with planted copies', () => {
  let cleanup: () => Promise<void>;
  afterAll(() => cleanup?.());

  test('finds copies within a node and across nodes with precision >= 0.95 and recall >= 0.90', async () => {
    const t = await tempDir('flame-dups-');
    cleanup = t.cleanup;
    // a slice the thresholds were not chosen on (EXPERIMENTS.md used offsets 1000 and 20000)
    const set = await plantedSet({ offset: 40_000, originals: 300, copyEvery: 3 });
    const where = new Map<string, string>(); // image name → its file
    const nodeOf = new Map<string, string>();
    let copyNo = 0;
    for (const im of set) {
      let node: string;
      if (im.copyOf === undefined) node = NODES[Number(im.name) % NODES.length];
      else {
        // every other copy on its original's node, the rest on the next node
        const home = NODES.indexOf(nodeOf.get(im.copyOf)!);
        node = NODES[(home + (copyNo++ % 2)) % NODES.length];
      }
      nodeOf.set(im.name, node);
      const rel = `${im.cls}/${im.name}.${im.ext}`;
      await mkdir(path.join(t.dir, node, im.cls), { recursive: true });
      await writeFile(path.join(t.dir, node, rel), im.bytes);
      where.set(im.name, path.join(t.dir, node, rel));
    }
    const r = await diagnose(
      { dataset_uuid: 'planted-duplicates', tasks: [{ name: 'duplicates' }] },
      { nodes: NODES.map((id) => ({ id, data: { folder: path.join(t.dir, id) } })), projections: false },
    );
    const byUuid = filesByUuid(r);
    const nodeOfFile = (file: string): string => path.relative(t.dir, file).split(path.sep)[0];
    const planted = new Set(set.filter((im) => im.copyOf).map((im) => [where.get(im.copyOf!)!, where.get(im.name)!].sort().join('\n')));
    const found = new Set(flaggedPairs(r).map((f) => [path.resolve(f.path), byUuid.get(f.duplicateOf)!].sort().join('\n')));
    const tp = [...found].filter((p) => planted.has(p)).length;
    const precision = tp / found.size;
    const recall = tp / planted.size;
    const across = [...planted].filter((p) => new Set(p.split('\n').map((f) => nodeOfFile(f))).size === 2);
    const within = [...planted].filter((p) => !across.includes(p));
    const recallOf = (pairs: string[]) => pairs.filter((p) => found.has(p)).length / pairs.length;
    process.stdout.write(`planted ${planted.size} pairs (${within.length} within a node, ${across.length} across): flagged ${found.size}, P ${precision.toFixed(3)}, R ${recall.toFixed(3)} (within ${recallOf(within).toFixed(3)}, across ${recallOf(across).toFixed(3)})\n`);
    expect(planted.size).toBe(100);
    expect(within.length).toBeGreaterThanOrEqual(40);
    expect(across.length).toBeGreaterThanOrEqual(40);
    expect(precision).toBeGreaterThanOrEqual(0.95);
    expect(recall).toBeGreaterThanOrEqual(0.9);
    expect(recallOf(within)).toBeGreaterThanOrEqual(0.85);
    expect(recallOf(across)).toBeGreaterThanOrEqual(0.85);
  }, 120_000);
});

describe('duplicates on the shipped sample', () => {
  test('its 300 images are all distinct (no two decode to the same pixels), and none is flagged', async () => {
    const digests = new Set<string>();
    let files = 0;
    for (const node of NODES) {
      const { dataset } = await datasetFromFolder(path.resolve('data/sample', node));
      for (const fs of Object.values(dataset.class_files)) {
        for (const p of Object.keys(fs)) {
          const img = await decodeImage(p);
          digests.add(createHash('sha256').update(img.pixels).digest('hex'));
          files++;
        }
      }
    }
    expect(files).toBe(300);
    expect(digests.size).toBe(300);
    const r = await diagnose(
      { dataset_uuid: 'sample', tasks: [{ name: 'duplicates' }] },
      { nodes: NODES.map((id) => ({ id, data: { folder: path.resolve('data/sample', id) } })), projections: false },
    );
    expect(flaggedPairs(r)).toEqual([]);
    expect(filesByUuid(r).size).toBe(300);
  }, 120_000);
});
