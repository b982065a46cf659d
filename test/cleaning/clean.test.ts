/** The cleaning job: auto and reviewed requests checked field by field, pooled stats, validation. */
import { clean, planCleaning, requestSource } from '../../analyses/image-cleaning/index.js';
import { BadRequestError } from '../../src/errors.js';
import { imageStats, meanStd, mergeSums } from '../../src/images/index.js';
import type { CleaningRequest, CleaningResponse, Dataset, DatasetFile } from '../../src/images/types.js';
import { expectClose, tempDir } from '../images/helpers.js';
import { CLASSES, makeFixture, SEED_RULES, uuidKeyed, type Fixture } from './fixture.js';

let fx: Fixture;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const t = await tempDir('flame-clean-');
  cleanup = t.cleanup;
  fx = await makeFixture(t.dir);
});
afterAll(() => cleanup());

function request(auto: boolean): CleaningRequest {
  return { auto, dataset_uuid: fx.diagnosis.dataset_uuid, tasks: structuredClone(fx.diagnosis.tasks) };
}

/** The request file entry of `name` in the mislabeled task (what carries projections and vectors). */
function diagnosed(name: string): DatasetFile {
  const [cls] = name.split('/');
  const t = fx.diagnosis.tasks[0].datasets;
  return (t.outliers.class_files[cls][fx.path[name]] ?? t.inliers.class_files[cls][fx.path[name]])!;
}

/** class → sorted names of the files a response dataset holds. */
function layout(ds: Dataset): Record<string, string[]> {
  const byPath = new Map(Object.entries(fx.path).map(([n, p]) => [p, n]));
  return Object.fromEntries(Object.entries(ds.class_files).map(([c, files]) => [c, Object.keys(files).map((k) => byPath.get(k) ?? k).sort()]));
}

/** Pooled mean/std from the pixels of the named files (independent of the per-file mean/std). */
async function pixelStats(names: string[]): Promise<{ mean: number[]; std_dev: number[] }> {
  return meanStd(mergeSums(await Promise.all(names.map((n) => imageStats(fx.path[n])))));
}

async function expectPooled(ds: Dataset): Promise<void> {
  const names = Object.values(layout(ds)).flat();
  const want = await pixelStats(names);
  expectClose(ds.mean, want.mean, 10);
  expectClose(ds.std_dev, want.std_dev, 10);
}

describe('clean, auto: true, by default', () => {
  /** The request with the confidence vectors of some mislabeled outliers replaced. */
  function withVectors(vectors: Record<string, number[][]>): CleaningRequest {
    const req = request(true);
    for (const [name, v] of Object.entries(vectors)) req.tasks[0].datasets.outliers.class_files[name.split('/')[0]][fx.path[name]].confidence_vectors = v;
    return req;
  }

  it('leaves mislabeled outliers whose own class is not very unlikely for review, and removes the other tasks\' outliers', () => {
    const plan = planCleaning(request(true));
    const name = (key: string) => key.split('/').slice(-2).join('/').replace('.png', '');
    expect(Object.fromEntries(plan.deferred.map((d) => [name(d.key), d.reasons]))).toEqual({
      'cat/2': ['mislabeled_images: given class cat has confidence 0.100 > 0.010, left for review'],
      'cat/3': ['mislabeled_images: given class cat has confidence 0.350 > 0.010, left for review'],
      'dog/2': ['mislabeled_images: given class dog has confidence 0.400 > 0.010, left for review'],
      'bird/3': ['mislabeled_images: no confidence_vectors, left for review'],
    });
    const res = clean(request(true));
    expect(layout(res.corrected)).toEqual({ cat: [], dog: [], bird: [] });
    // dog/3: its mislabel verdict is not confident, but it is too bright
    expect(layout(res.removed)).toEqual({ cat: [], dog: ['dog/1', 'dog/3'], bird: ['bird/2'] });
  });

  it('acts on a verdict whose given class has at most 1 %: relabels a confident suggestion, removes an unsure one', () => {
    const res = clean(withVectors({ 'cat/2': [[0.005, 0.99, 0.005]], 'cat/3': [[0.01, 0.5, 0.49]] }));
    expect(layout(res.corrected)).toEqual({ cat: [], dog: ['cat/2'], bird: [] });
    expect(layout(res.removed)).toEqual({ cat: ['cat/3'], dog: ['dog/1', 'dog/3'], bird: ['bird/2'] });
    // a looser bar takes in more verdicts; one outside [0, 1] is refused
    expect(layout(clean(request(true), { maxGivenConfidence: 0.36 }).removed).cat).toEqual(['cat/3']);
    expect(() => clean(request(true), { maxGivenConfidence: -0.1 })).toThrow(/maxGivenConfidence/);
    // the request's own max_given_confidence sets the bar when the options do not
    expect(layout(clean({ ...request(true), max_given_confidence: 0.36 }).removed).cat).toEqual(['cat/3']);
    expect(layout(clean({ ...request(true), max_given_confidence: 0.36 }, { maxGivenConfidence: 0.01 }).removed).cat).toEqual([]);
    expect(() => clean({ ...request(true), max_given_confidence: 2 })).toThrow(/^request\.max_given_confidence: expected a number in \[0, 1\].*got number 2$/);
  });
});

describe('clean, auto: true, seed 000\'s rules (every outlier acted on)', () => {
  let res: CleaningResponse;
  beforeAll(() => {
    res = clean(request(true), SEED_RULES);
  });

  it('relabels only the confident suggestion and removes what cannot be trusted', () => {
    expect(res.dataset_uuid).toBe('fixture-dataset');
    expect(res.corrected.classes).toEqual(CLASSES);
    expect(res.removed.classes).toEqual(CLASSES);
    expect(layout(res.corrected)).toEqual({ cat: [], dog: ['cat/2'], bird: [] });
    // cat/3: confidence 0.4 < 0.5; dog/1: dark; dog/2: suggestion == given; dog/3: confident but bright;
    // bird/2: blurry (generic task); bird/3: suggestion without confidence vectors
    expect(layout(res.removed)).toEqual({ cat: ['cat/3'], dog: ['dog/1', 'dog/2', 'dog/3'], bird: ['bird/2', 'bird/3'] });
  });

  it('gives the corrected file its new class and keeps every other field', () => {
    const got = res.corrected.class_files.dog[fx.path['cat/2']];
    expect(got).toEqual({ ...diagnosed('cat/2'), current_class: 'dog', original_class: 'cat', node: 'node-a' });
    // the source metadata survives untouched
    for (const k of ['uuid', 'width', 'height', 'channels', 'mean', 'std_dev'] as const) expect(got[k]).toEqual(fx.file['cat/2'][k]);
    expect(got.confidence_vectors).toEqual([[0.1, 0.8, 0.1]]);
  });

  it('files removed images under their given class, not relabelled', () => {
    for (const [cls, files] of Object.entries(res.removed.class_files)) {
      for (const f of Object.values(files)) {
        expect(f.original_class).toBe(cls);
        expect(f.current_class).toBe(cls);
      }
    }
    const dog3 = res.removed.class_files.dog[fx.path['dog/3']];
    expect(dog3.uuid).toBe(fx.file['dog/3'].uuid);
    expect(dog3.projections).toEqual(diagnosed('dog/3').projections);
  });

  it('recomputes pooled mean/std of each output from its files (mixed grey/RGB/sizes)', async () => {
    await expectPooled(res.corrected);
    await expectPooled(res.removed);
    expect(res.removed.mean).toHaveLength(3); // grey pooled with RGB counts in R, G and B
  });

  it('explains each decision', () => {
    const plan = planCleaning(request(true), SEED_RULES);
    const why = Object.fromEntries(plan.decisions.map((d) => [d.key.split('/').slice(-2).join('/'), d]));
    expect(why['cat/2.png'].confidence).toBeCloseTo(0.8, 12);
    expect(why['cat/3.png'].reasons).toEqual(['mislabeled_images: suggested bird with confidence 0.400 < 0.700']);
    expect(why['dog/3.png'].confidence).toBeCloseTo(0.9, 12);
    expect(why['dog/3.png'].reasons).toEqual(['mislabeled_images: relabelled dog → cat (confidence 0.900), but removed', 'lighting_conditions: outlier']);
    expect(why['bird/2.png'].reasons).toEqual(['blurry: outlier']);
    expect(why['bird/3.png'].reasons).toEqual(['mislabeled_images: suggested cat without confidence_vectors']);
    expect(why['cat/1.png']).toBeUndefined();
  });

  it('applies a lower confidence bar when asked, and rejects one outside [0, 1]', () => {
    const res2 = clean(request(true), { ...SEED_RULES, minConfidence: 0.35 });
    expect(layout(res2.corrected)).toEqual({ cat: [], dog: ['cat/2'], bird: ['cat/3'] });
    expect(() => clean(request(true), { ...SEED_RULES, minConfidence: 1.5 })).toThrow(/minConfidence/);
  });

  it('does not modify the request', () => {
    const req = request(true);
    const before = structuredClone(req);
    clean(req, SEED_RULES);
    expect(req).toEqual(before);
  });

  it('reads the seed layout too: outliers filed under the suggested class with original_class', () => {
    const req = request(true);
    const out = req.tasks[0].datasets.outliers;
    const moved = out.class_files.cat[fx.path['cat/2']];
    delete out.class_files.cat[fx.path['cat/2']];
    out.class_files.dog[fx.path['cat/2']] = moved;
    expect(clean(req, SEED_RULES)).toEqual(res);
  });
});

describe('results keyed by uuid with a path field, filed under current_class', () => {
  it('gives the same decisions, keyed by uuid, and a source keyed by path', () => {
    const req: CleaningRequest = { auto: true, dataset_uuid: 'd', tasks: uuidKeyed(fx.diagnosis).tasks };
    const byUuid = new Map(Object.entries(fx.file).map(([n, f]) => [f.uuid, n]));
    const names = (ds: Dataset) => Object.fromEntries(Object.entries(ds.class_files).map(([c, fs]) => [c, Object.keys(fs).map((u) => byUuid.get(u)).sort()]));
    const res = clean(req, SEED_RULES);
    expect(names(res.corrected)).toEqual({ cat: [], dog: ['cat/2'], bird: [] });
    expect(names(res.removed)).toEqual({ cat: ['cat/3'], dog: ['dog/1', 'dog/2', 'dog/3'], bird: ['bird/2', 'bird/3'] });
    expect(res.corrected.class_files.dog[fx.file['cat/2'].uuid]).toMatchObject({ path: fx.path['cat/2'], current_class: 'dog', original_class: 'cat' });
    expect(res.removed.class_files.dog[fx.file['dog/1'].uuid]).toMatchObject({ issue: 'too_dark', current_class: 'dog' });
    expect(layout(requestSource(req))).toEqual(layout(requestSource(request(true))));
  });
});

describe('clean, auto: false (reviewed)', () => {
  it('acts on the outliers the reviewer kept, with the classes the reviewer set', async () => {
    const req = request(false);
    const mis = req.tasks[0].datasets;
    // the reviewer keeps cat/3 (deletes it from the outliers) and gives dog/2 the class bird
    const cat3 = mis.outliers.class_files.cat[fx.path['cat/3']];
    delete mis.outliers.class_files.cat[fx.path['cat/3']];
    mis.inliers.class_files.cat[fx.path['cat/3']] = { ...cat3, current_class: 'cat' };
    mis.outliers.class_files.dog[fx.path['dog/2']].current_class = 'bird';
    const res = clean(req, SEED_RULES);
    // no confidence bar: bird/3 is relabelled although it has no confidence vectors
    expect(layout(res.corrected)).toEqual({ cat: ['bird/3'], dog: ['cat/2'], bird: ['dog/2'] });
    expect(layout(res.removed)).toEqual({ cat: [], dog: ['dog/1', 'dog/3'], bird: ['bird/2'] });
    expect(res.corrected.class_files.bird[fx.path['dog/2']]).toEqual({ ...diagnosed('dog/2'), current_class: 'bird', original_class: 'dog', node: 'node-b' });
    expect(res.corrected.class_files.cat[fx.path['bird/3']]).toMatchObject({ current_class: 'cat', original_class: 'bird', uuid: fx.file['bird/3'].uuid });
    await expectPooled(res.corrected);
    await expectPooled(res.removed);
  });

  it('removes a mislabeled outlier whose class the reviewer left as given', () => {
    const res = clean(request(false));
    expect(layout(res.removed).dog).toContain('dog/2');
  });
});

describe('requestSource', () => {
  it('is the diagnosed dataset: every file under its given class, stats as the source', () => {
    const src = requestSource(request(true));
    expect(layout(src)).toEqual({ cat: ['cat/1', 'cat/2', 'cat/3'], dog: ['dog/1', 'dog/2', 'dog/3'], bird: ['bird/1', 'bird/2', 'bird/3'] });
    expectClose(src.mean, fx.dataset.mean, 10);
    expectClose(src.std_dev, fx.dataset.std_dev, 10);
  });
});

describe('request validation', () => {
  const cases: Array<[string, (r: Record<string, unknown>) => void, RegExp]> = [
    ['missing tasks', (r) => delete r.tasks, /^request\.tasks: missing/],
    ['missing auto', (r) => delete r.auto, /^request\.auto: missing/],
    ['missing dataset_uuid', (r) => delete r.dataset_uuid, /^request\.dataset_uuid: missing/],
    [
      'unknown current_class',
      (r) => (((r.tasks as CleaningRequest['tasks'])[0].datasets.outliers.class_files.cat as Record<string, DatasetFile>)[fx.path['cat/2']].current_class = 'horse'),
      /^request\.tasks\[0\]\.datasets\.outliers\.class_files\["cat"\]\[".*cat\/2\.png"\]\.current_class: unknown class "horse" \(classes: "cat", "dog", "bird"\)/,
    ],
    [
      'unknown class key',
      (r) => ((r.tasks as CleaningRequest['tasks'])[1].datasets.outliers.class_files.horse = {}),
      /^request\.tasks\[1\]\.datasets\.outliers\.class_files\["horse"\]: unknown class "horse"/,
    ],
    [
      'confidence vector of the wrong length',
      (r) => ((r.tasks as CleaningRequest['tasks'])[0].datasets.outliers.class_files.cat[fx.path['cat/2']].confidence_vectors = [[0.5, 0.5]]),
      /confidence_vectors\[0\]: has 2 values for 3 classes/,
    ],
    [
      'mean of the wrong length',
      (r) => ((r.tasks as CleaningRequest['tasks'])[0].datasets.inliers.class_files.cat[fx.path['cat/1']].mean = [0.1, 0.2]),
      /inliers\.class_files\["cat"\]\[".*"\]\.mean: has 2 values for 1 channel/,
    ],
    ['missing outliers', (r) => delete (r.tasks as Array<{ datasets: Record<string, unknown> }>)[2].datasets.outliers, /^request\.tasks\[2\]\.datasets\.outliers: missing/],
    ['task twice', (r) => (r.tasks as unknown[]).push((r.tasks as unknown[])[0]), /^request\.tasks\[3\]\.name: task "mislabeled_images" appears twice/],
  ];
  it.each(cases)('%s is a BadRequestError naming the field', (_what, mutate, message) => {
    const req = request(true) as unknown as Record<string, unknown>;
    mutate(req);
    let err: unknown;
    try {
      clean(req, SEED_RULES);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toMatch(message);
  });

  it('rejects a non-object', () => {
    expect(() => clean([])).toThrow(/^request: expected a JSON object/);
  });
});
