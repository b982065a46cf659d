/** applyCleaning: the cleaned copy holds the right files in the right class folders; sources stay byte-identical. */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { applyCleaning, clean, MANIFEST_FILE, requestSource, type CleaningManifest } from '../../analyses/image-cleaning/index.js';
import { BadRequestError, ConflictError, NotFoundError } from '../../src/errors.js';
import { datasetFromFolder, encodeIdx } from '../../src/images/index.js';
import type { CleaningRequest, CleaningResponse } from '../../src/images/types.js';
import { expectClose, tempDir } from '../images/helpers.js';
import { makeFixture, SEED_RULES, uuidKeyed, type Fixture } from './fixture.js';

let fx: Fixture;
let dir: string;
let cleanup: () => Promise<void>;
let response: CleaningResponse;
/** The dataset folder: the only place source files may be read from. */
let roots: { roots: string[] };

beforeAll(async () => {
  const t = await tempDir('flame-apply-');
  ({ dir, cleanup } = t);
  fx = await makeFixture(dir);
  roots = { roots: [fx.root] };
  response = clean({ auto: true, dataset_uuid: fx.diagnosis.dataset_uuid, tasks: fx.diagnosis.tasks } satisfies CleaningRequest, SEED_RULES);
});
afterAll(() => cleanup());

/** relative path → sha256 of every file under `root`. */
async function hashTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out[relative(root, p)] = createHash('sha256').update(await readFile(p)).digest('hex');
    }
  };
  await walk(root);
  return out;
}

describe('applyCleaning', () => {
  it('copies kept and corrected images into class folders, writes a manifest, leaves the source untouched', async () => {
    const before = await hashTree(fx.root);
    const sourceStat = await stat(fx.path['cat/2']);
    const out = join(dir, 'cleaned');
    const res = await applyCleaning(response, fx.dataset, out, roots);
    expect(await hashTree(fx.root)).toEqual(before);
    expect((await stat(fx.path['cat/2'])).mtimeMs).toBe(sourceStat.mtimeMs);

    const copied = await hashTree(out);
    // cat/2 relabelled to dog; cat/3, dog/1-3, bird/2-3 removed
    expect(Object.keys(copied).sort()).toEqual(['bird/1.png', 'cat/1.png', 'dog/2.png', MANIFEST_FILE].sort());
    expect(copied['dog/2.png']).toBe(before['cat/2.png']);
    expect(copied['cat/1.png']).toBe(before['cat/1.png']);
    expect(copied['bird/1.png']).toBe(before['bird/1.png']);

    const manifest = JSON.parse(await readFile(join(out, MANIFEST_FILE), 'utf8')) as CleaningManifest;
    expect(manifest).toEqual(res.manifest);
    expect(manifest.dataset_uuid).toBe('fixture-dataset');
    expect(manifest.counts).toEqual({ source: 9, kept: 2, corrected: 1, removed: 6, not_in_source: 0, refused: 0 });
    expect(manifest.files).toContainEqual({ path: 'dog/2.png', source: fx.path['cat/2'], uuid: fx.file['cat/2'].uuid, class: 'dog', original_class: 'cat', action: 'corrected' });
    expect(manifest.files).toContainEqual({ path: 'cat/1.png', source: fx.path['cat/1'], uuid: fx.file['cat/1'].uuid, class: 'cat', original_class: 'cat', action: 'kept' });
    expect(manifest.removed.map((r) => r.source).sort()).toEqual(['cat/3', 'dog/1', 'dog/2', 'dog/3', 'bird/2', 'bird/3'].map((n) => fx.path[n]).sort());

    // the manifest's dataset describes the copy as reading the copy would
    const reread = await datasetFromFolder(out, { logger: { warn: () => undefined } });
    expect(manifest.dataset.classes).toEqual(['bird', 'cat', 'dog']);
    for (const c of reread.dataset.classes) expect(Object.keys(manifest.dataset.class_files[c]).sort()).toEqual(Object.keys(reread.dataset.class_files[c]).sort());
    expectClose(manifest.dataset.mean, reread.dataset.mean, 10);
    expectClose(manifest.dataset.std_dev, reread.dataset.std_dev, 10);
    expect(manifest.dataset.class_files.dog[join(out, 'dog/2.png')]).toMatchObject({ current_class: 'dog', original_class: 'cat', uuid: fx.file['cat/2'].uuid });
  });

  it('renames a relabelled file that meets a namesake in its new class, and accepts the request as source', async () => {
    // reviewed: bird/3 → cat, where cat/3.png stays (the reviewer kept it)
    const tasks = structuredClone(fx.diagnosis.tasks);
    delete tasks[0].datasets.outliers.class_files.cat[fx.path['cat/3']];
    const req: CleaningRequest = { auto: false, dataset_uuid: 'd', tasks };
    const out = join(dir, 'reviewed');
    const res = await applyCleaning(clean(req, SEED_RULES), requestSource(req), out, roots);
    const copied = await hashTree(out);
    const suffixed = `cat/3-${fx.file['bird/3'].uuid.slice(0, 8)}.png`;
    expect(copied[suffixed]).toBe((await hashTree(fx.root))['bird/3.png']);
    expect(copied['cat/3.png']).toBe((await hashTree(fx.root))['cat/3.png']);
    expect(res.manifest.files.find((f) => f.path === suffixed)).toMatchObject({ action: 'corrected', class: 'cat', original_class: 'bird' });
  });

  it('applies a result keyed by uuid with a path field with the request as source', async () => {
    const req: CleaningRequest = { auto: true, dataset_uuid: 'd', tasks: uuidKeyed(fx.diagnosis).tasks };
    const out = join(dir, 'uuid-keyed');
    const res = await applyCleaning(clean(req, SEED_RULES), requestSource(req), out, roots);
    expect(Object.keys(await hashTree(out)).sort()).toEqual(['bird/1.png', 'cat/1.png', 'dog/2.png', MANIFEST_FILE].sort());
    expect(res.manifest.counts).toEqual({ source: 9, kept: 2, corrected: 1, removed: 6, not_in_source: 0, refused: 0 });
  });

  it('refuses an output folder inside the source folder, a non-empty one, and a file', async () => {
    const before = await hashTree(fx.root);
    await expect(applyCleaning(response, fx.dataset, join(fx.root, 'cleaned'), roots)).rejects.toThrow(BadRequestError);
    await expect(applyCleaning(response, fx.dataset, join(fx.root, 'cat', 'x'), roots)).rejects.toThrow(/is inside the source folder/);
    await expect(applyCleaning(response, fx.dataset, fx.root, roots)).rejects.toThrow(/is inside the source folder/);
    const full = join(dir, 'full');
    await mkdir(full);
    await writeFile(join(full, 'keep.txt'), 'mine');
    await expect(applyCleaning(response, fx.dataset, full, roots)).rejects.toThrow(ConflictError);
    await expect(applyCleaning(response, fx.dataset, join(full, 'keep.txt'), roots)).rejects.toThrow(/not a folder/);
    expect(await readFile(join(full, 'keep.txt'), 'utf8')).toBe('mine');
    expect(await hashTree(fx.root)).toEqual(before);
  });

  it('writes nothing when a source file to copy is missing', async () => {
    const ds = structuredClone(fx.dataset);
    ds.class_files.cat[join(fx.root, 'cat', 'gone.png')] = { ...fx.file['cat/1'], uuid: 'gone' };
    const out = join(dir, 'missing');
    await expect(applyCleaning(response, ds, out, roots)).rejects.toThrow(NotFoundError);
    await expect(applyCleaning(response, ds, out, roots)).rejects.toThrow(/gone\.png does not exist/);
    await expect(stat(out)).rejects.toThrow();
  });

  it('refuses a source that holds none of the response files', async () => {
    const ds = structuredClone(fx.dataset);
    for (const files of Object.values(ds.class_files)) for (const [k, f] of Object.entries(files)) files[k] = { ...f, uuid: `other-${f.uuid}` };
    const moved = Object.fromEntries(Object.entries(ds.class_files).map(([c, files]) => [c, Object.fromEntries(Object.entries(files).map(([k, f]) => [`${k}.x`, f]))]));
    await expect(applyCleaning(response, { ...ds, class_files: moved }, join(dir, 'other'), roots)).rejects.toThrow(/None of the cleaning response's files/);
  });

  it('writes images of an IDX source (virtual paths) as PNGs', async () => {
    const idxDir = join(dir, 'idx');
    await mkdir(idxDir);
    const px = new Uint8Array(2 * 4 * 3).map((_, i) => i * 10);
    await writeFile(join(idxDir, 'images.idx'), encodeIdx([2, 4, 3], px));
    const meta = { width: 3, height: 4, channels: 1, mean: [0.5], std_dev: [0.1] };
    const key = (i: number) => `${join(idxDir, 'images.idx')}#${i}`;
    const source = { classes: ['a'], mean: [0.5], std_dev: [0.1], class_files: { a: { [key(0)]: { uuid: 'u0', ...meta }, [key(1)]: { uuid: 'u1', ...meta } } } };
    const empty = { classes: ['a'], mean: [], std_dev: [], class_files: { a: {} } };
    const removed = { ...empty, class_files: { a: { [key(1)]: { uuid: 'u1', ...meta } } } };
    const out = join(dir, 'idx-out');
    const res = await applyCleaning({ dataset_uuid: 'i', corrected: empty, removed }, source, out, { roots: [idxDir] });
    expect(res.manifest.files.map((f) => f.path)).toEqual(['a/images.idx-0.png']);
    const reread = await datasetFromFolder(out, { logger: { warn: () => undefined } });
    const f = Object.values(reread.dataset.class_files.a)[0];
    expect([f.width, f.height, f.channels]).toEqual([3, 4, 1]);
    expect(f.mean[0]).toBeCloseTo(px.subarray(0, 12).reduce((a, b) => a + b, 0) / 12 / 255, 10);
  });
});
