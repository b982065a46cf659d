/** The shipped sample (data/sample, made by scripts/make-sample.ts) loads and matches its truth file. */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { datasetFromFolder, type DatasetBuild } from '../../src/images/dataset.js';
import { meanStd, mergeSums } from '../../src/images/pooling.js';
import { expectClose } from './helpers.js';

const SAMPLE = join(process.cwd(), 'data', 'sample');
const NODES = ['node-a', 'node-b', 'node-c'];

interface Truth {
  classes: string[];
  files: number;
  nodes: Record<string, number>;
  flipped: Array<{ path: string; true_class: string; labelled_class: string }>;
  darkened: string[];
  brightened: string[];
}

let truth: Truth;
const builds = new Map<string, DatasetBuild>();

beforeAll(async () => {
  truth = JSON.parse(await readFile(join(SAMPLE, 'truth.json'), 'utf8')) as Truth;
  for (const node of NODES) builds.set(node, await datasetFromFolder(join(SAMPLE, node)));
});

/** Every file of every node: relative path → its dataset entry. */
function allFiles(): Map<string, { cls: string; mean: number; std: number; width: number; channels: number }> {
  const out = new Map<string, { cls: string; mean: number; std: number; width: number; channels: number }>();
  for (const [node, b] of builds) {
    for (const [cls, files] of Object.entries(b.dataset.class_files)) {
      for (const [path, f] of Object.entries(files)) {
        out.set(path.slice(SAMPLE.length + 1), { cls, mean: f.mean[0], std: f.std_dev[0], width: f.width, channels: f.channels });
        expect(path.startsWith(join(SAMPLE, node))).toBe(true);
      }
    }
  }
  return out;
}

test('three nodes, ten classes each, 300 grey 28x28 images, nothing skipped', () => {
  const files = allFiles();
  expect(files.size).toBe(300);
  expect(truth.files).toBe(300);
  for (const node of NODES) {
    const b = builds.get(node)!;
    expect(b.skipped).toEqual([]);
    expect(b.dataset.classes).toEqual([...truth.classes].sort());
    expect(Object.values(b.dataset.class_files).reduce((n, f) => n + Object.keys(f).length, 0)).toBe(truth.nodes[node]);
  }
  for (const f of files.values()) {
    expect(f.width).toBe(28);
    expect(f.channels).toBe(1);
  }
});

test('truth.json: ~8% flipped into another class folder, ~5% relit, disjoint', async () => {
  const files = allFiles();
  expect(truth.flipped.length).toBe(24);
  expect(truth.darkened.length + truth.brightened.length).toBe(15);
  for (const f of truth.flipped) {
    expect(f.true_class).not.toBe(f.labelled_class);
    expect(truth.classes).toContain(f.true_class);
    expect(files.get(f.path)?.cls).toBe(f.labelled_class);
  }
  const relit = [...truth.darkened, ...truth.brightened];
  for (const p of relit) expect((await stat(join(SAMPLE, p))).isFile()).toBe(true);
  expect(relit.filter((p) => truth.flipped.some((f) => f.path === p))).toEqual([]);
  // Darkening keeps 30% of the light; brightening lifts the black background to a grey of 150.
  for (const p of truth.darkened) expect(files.get(p)!.std).toBeLessThan(0.15);
  for (const p of truth.brightened) expect(files.get(p)!.mean).toBeGreaterThan(150 / 255);
});

test('merging the three nodes\' sums gives the mean over all 300 images', () => {
  const merged = meanStd(mergeSums([...builds.values()].map((b) => b.sums)));
  const means = [...allFiles().values()].map((f) => f.mean);
  // Equal-sized images: the pooled mean is the plain average of the per-image means.
  expectClose(merged.mean, [means.reduce((a, b) => a + b, 0) / means.length], 12);
  expect(merged.std_dev[0]).toBeGreaterThan(0.2);
});
