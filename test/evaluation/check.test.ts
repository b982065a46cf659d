/** Detection metrics, the reference format and checking diagnosis/cleaning results, on hand-counted cases. */
import fs from 'node:fs';
import path from 'node:path';
import { checkResult } from '../../src/evaluation/check.js';
import { addCounts, confusion, detectionMetrics } from '../../src/evaluation/metrics.js';
import { parseReference, PathMatcher } from '../../src/evaluation/reference.js';

describe('metrics', () => {
  test('precision, recall, F1, accuracy from counts; 0/0 is null', () => {
    expect(detectionMetrics({ tp: 3, fp: 1, fn: 2, tn: 4 })).toEqual({ precision: 0.75, recall: 0.6, f1: 6 / 9, accuracy: 0.7 });
    expect(detectionMetrics({ tp: 0, fp: 0, fn: 0, tn: 5 })).toEqual({ precision: null, recall: null, f1: null, accuracy: 1 });
    expect(detectionMetrics({ tp: 0, fp: 0, fn: 2 })).toEqual({ precision: null, recall: 0, f1: 0, accuracy: null });
    expect(() => detectionMetrics({ tp: -1, fp: 0, fn: 0 })).toThrow(/tp/);
  });

  test('counts add up across nodes to the pooled counts', () => {
    const a = confusion(new Set(['a1', 'a2']), new Set(['a1', 'a3']), new Set(['a1', 'a2', 'a3', 'a4']));
    const b = confusion(new Set(['b1']), new Set(['b2']), new Set(['b1', 'b2', 'b3']));
    const pooled = confusion(new Set(['a1', 'a2', 'b1']), new Set(['a1', 'a3', 'b2']), new Set(['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'b3']));
    expect(addCounts(a, b)).toEqual(pooled);
    expect(pooled).toEqual({ tp: 1, fp: 2, fn: 2, tn: 2 });
    expect(addCounts(a, { tp: 0, fp: 0, fn: 0 }).tn).toBeUndefined();
  });
});

describe('reference', () => {
  test('both spellings parse to the same truth', () => {
    const a = parseReference(
      { mislabeled: { 'n/cat/1.png': { true_class: 'dog', given_class: 'cat' } }, lighting: { 'n/dog/2.png': 'dark', 'n/dog/3.png': 'bright' }, files: 10 },
      'a.json',
    );
    const b = parseReference(
      { flipped: [{ path: 'n/cat/1.png', true_class: 'dog', labelled_class: 'cat' }], darkened: ['n/dog/2.png'], brightened: ['n/dog/3.png'], files: 10 },
      'b.json',
    );
    expect(b).toEqual(a);
    expect(a.lighting.get('n/dog/3.png')).toBe('bright');
  });

  test('errors name the file and the field', () => {
    expect(() => parseReference([], 'r.json')).toThrow(/reference r.json: expected a JSON object/);
    expect(() => parseReference({ other: 1 }, 'r.json')).toThrow(/none of mislabeled/);
    expect(() => parseReference({ flipped: [{ true_class: 'x' }] }, 'r.json')).toThrow(/flipped\[0\]\.path/);
    expect(() => parseReference({ lighting: { p: 3 } }, 'r.json')).toThrow(/lighting\["p"\]/);
    expect(() => parseReference({ files: -1 }, 'r.json')).toThrow(/"files"/);
  });

  test('paths match by whole trailing segments, ambiguity is reported', () => {
    const m = new PathMatcher(['node-a/Bag/1.png', 'node-b/Bag/1.png', 'node-a/Coat/2.png']);
    expect(m.match('/data/node-a/Bag/1.png')).toEqual({ path: 'node-a/Bag/1.png' });
    expect(m.match('Coat/2.png')).toEqual({ path: 'node-a/Coat/2.png' });
    expect(m.match('Bag/1.png').ambiguous).toEqual(['node-a/Bag/1.png', 'node-b/Bag/1.png']);
    expect(m.match('xCoat/2.png')).toEqual({});
    expect(m.match('node-a\\Coat\\2.png')).toEqual({ path: 'node-a/Coat/2.png' });
  });
});

function dataset(files: Record<string, Record<string, { current_class?: string; original_class?: string }>>) {
  return { classes: Object.keys(files), mean: [0], std_dev: [0], class_files: files };
}

describe('checking results', () => {
  const ref = parseReference(
    {
      mislabeled: {
        'n1/cat/1.png': { true_class: 'dog', given_class: 'cat' },
        'n1/cat/2.png': { true_class: 'dog', given_class: 'cat' },
        'n2/dog/9.png': { true_class: 'cat', given_class: 'dog' },
      },
      lighting: { 'n1/dog/5.png': 'dark' },
      files: 8,
    },
    'truth.json',
  );

  test('a diagnosis result: counts, metrics, relabel accuracy, faults missing from the result', () => {
    const result = {
      dataset_uuid: 'd',
      tasks: [
        {
          name: 'mislabeled_images',
          datasets: {
            // keys relative to each node's folder, as the analyses write them
            outliers: dataset({ cat: { 'cat/1.png': { current_class: 'dog', original_class: 'cat' }, 'cat/3.png': { current_class: 'dog', original_class: 'cat' } }, dog: {} }),
            inliers: dataset({ cat: { 'cat/2.png': {}, 'cat/4.png': {} }, dog: { 'dog/5.png': {}, 'dog/6.png': {}, 'dog/7.png': {} } }),
          },
        },
        {
          name: 'lighting_conditions',
          datasets: {
            outliers: dataset({ dog: { '/abs/n1/dog/5.png': {} } }),
            inliers: dataset({ cat: { 'n1/cat/1.png': {}, 'n1/cat/2.png': {} }, dog: { 'n1/dog/6.png': {} } }),
          },
        },
        { name: 'something_else', datasets: {} },
      ],
    };
    const report = checkResult(result, ref, 'r.json');
    expect(report.kind).toBe('diagnosis');
    const [mis, light] = report.rows;
    // flagged {1, 3}; faults {1, 2, 9}; 9 is not in the result (n2 was not analysed) → fn; population 7 + 9
    expect(mis).toMatchObject({ task: 'mislabeled_images', flagged: 2, faults: 3, tp: 1, fp: 1, fn: 2, tn: 4, files: 8, missing: 1 });
    expect(mis.precision).toBe(0.5);
    expect(mis.recall).toBeCloseTo(1 / 3);
    expect(mis.f1).toBeCloseTo(0.4);
    expect(mis.accuracy).toBe(5 / 8);
    expect(mis.relabel_accuracy).toBe(1);
    expect(light).toMatchObject({ task: 'lighting_conditions', tp: 1, fp: 0, fn: 0, tn: 3, precision: 1, recall: 1, accuracy: 1, relabel_accuracy: null });
    expect(report.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/something_else: no reference/), expect.stringMatching(/mislabeled_images: 1 fault/)]));
  });

  test('a cleaning result: everything flagged vs every fault, corrected vs mislabeled with relabel accuracy', () => {
    const result = {
      dataset_uuid: 'd',
      corrected: dataset({ dog: { 'n1/cat/1.png': { current_class: 'dog', original_class: 'cat' }, 'n1/cat/2.png': { current_class: 'bird', original_class: 'cat' } } }),
      removed: dataset({ dog: { 'n1/dog/5.png': {} }, cat: { 'n1/cat/4.png': {} } }),
    };
    const report = checkResult(result, ref);
    expect(report.kind).toBe('cleaning');
    const [all, corrected] = report.rows;
    // flagged {1, 2, 5, 4}; faults {1, 2, 9, 5}; 8 files
    expect(all).toMatchObject({ task: 'cleaning', tp: 3, fp: 1, fn: 1, tn: 3, files: 8, precision: 0.75, recall: 0.75, accuracy: 0.75 });
    expect(corrected).toMatchObject({ task: 'corrected', tp: 2, fp: 0, fn: 1, tn: 5, relabel_accuracy: 0.5 });
  });

  test('without a population a cleaning check has no accuracy, and says so', () => {
    const noCount = parseReference({ lighting: { 'a/x.png': 'dark' } }, 't');
    const report = checkResult({ corrected: dataset({}), removed: dataset({ c: { 'a/x.png': {} } }) }, noCount);
    expect(report.rows[0]).toMatchObject({ tp: 1, tn: null, accuracy: null, files: null, precision: 1 });
    expect(report.warnings[0]).toMatch(/no "files"/);
  });

  test('malformed results are named', () => {
    expect(() => checkResult({ foo: 1 }, ref, 'x.json')).toThrow(/x.json: neither a diagnosis/);
    expect(() => checkResult({ tasks: [{ name: 'mislabeled_images', datasets: { outliers: { nope: 1 } } }] }, ref, 'x.json')).toThrow(
      /x.json: tasks\[0\]\.datasets\.outliers: expected a dataset/,
    );
  });

  test('the shipped sample truth parses', () => {
    const file = path.join(process.cwd(), 'data', 'sample', 'truth.json');
    const truth = parseReference(JSON.parse(fs.readFileSync(file, 'utf8')), file);
    expect(truth.mislabeled.size).toBe(24);
    expect(truth.lighting.size).toBe(15);
    expect(truth.fileCount).toBe(300);
    expect([...truth.mislabeled.values()].every((t) => t.true_class && t.given_class && t.true_class !== t.given_class)).toBe(true);
  });
});
