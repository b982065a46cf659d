/** Disclosure-control helpers (src/star/disclosure.ts) and Laplace noise (src/star/noise.ts). */
import { Tensor } from '../../src/codec/index.js';
import {
  addLaplaceNoise,
  DisclosureControl,
  disclosureRecord,
  DisclosureRefusedError,
  type JointCounts,
  laplaceSample,
  mergeSmallBins,
  mergeSmallCategories,
  mergeSmallJointCells,
  recordNoise,
  requireMinRecords,
  strictestNoiseScale,
  suppressSmallCounts,
} from '../../src/star/disclosure.js';

/** A small deterministic generator for property checks. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0);

describe('minimum counts', () => {
  test('counts below the minimum are suppressed, zeros and larger counts kept, and the number suppressed reported', () => {
    expect(suppressSmallCounts([0, 1, 2, 3, 7], 3)).toEqual({ value: [0, 0, 0, 3, 7], suppressed: 2 });
    expect(suppressSmallCounts([0, 1, 2], 1)).toEqual({ value: [0, 1, 2], suppressed: 0 });
  });

  test('histogram bins below the minimum merge into neighbours: totals kept, every bin 0 or >= the minimum, counts move only a little', () => {
    expect(mergeSmallBins([0, 1, 5, 0, 2, 2, 0, 1], 3)).toEqual({ value: [0, 0, 6, 0, 0, 5, 0, 0], suppressed: 4 });
    expect(mergeSmallBins([4, 0, 3], 3)).toEqual({ value: [4, 0, 3], suppressed: 0 });
    // A total below the minimum cannot be shared at all.
    expect(mergeSmallBins([1, 0, 1], 3)).toEqual({ value: [0, 0, 0], suppressed: 2 });
    const rnd = seeded(11);
    for (let k = 0; k < 300; k++) {
      const minCount = 2 + Math.floor(rnd() * 6);
      const counts = Array.from({ length: 40 }, () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 6)));
      if (sum(counts) < minCount) continue;
      const { value, suppressed } = mergeSmallBins(counts, minCount);
      expect(sum(value)).toBe(sum(counts));
      expect(value.every((c) => c === 0 || c >= minCount)).toBe(true);
      expect(suppressed).toBe(counts.filter((c) => c > 0 && c < minCount).length);
      // Every unit moves only within its group: the cumulative counts never drift by more than a group.
      let a = 0;
      let b = 0;
      for (let i = 0; i < counts.length; i++) {
        a += counts[i];
        b += value[i];
        expect(Math.abs(a - b)).toBeLessThan(3 * minCount);
      }
    }
  });

  test('small categories merge into the largest one', () => {
    expect(mergeSmallCategories({ '28x28': 40, '32x32': 2, '64x64': 1, '10x10': 0 }, 3)).toEqual({ value: { '28x28': 43, '10x10': 0 }, suppressed: 2 });
    expect(mergeSmallCategories({ a: 2, b: 2 }, 3)).toEqual({ value: { a: 4 }, suppressed: 2 });
    expect(mergeSmallCategories({ a: 1, b: 1 }, 3)).toEqual({ value: {}, suppressed: 2 });
  });

  test('small confident-joint cells leave their row as an unattributed count: row sums kept, no small value shared, small classes left out', () => {
    // Row 0: flips of 2 and 1 become 3 unattributed; row 1: a lone flip is raised to the minimum
    // from the diagonal; row 2 is a class the node holds only 2 of.
    const joint = { classes: 3, counts: [20, 2, 1, 1, 9, 0, 0, 1, 1], labelCounts: [25, 10, 2] };
    const { value, suppressed } = mergeSmallJointCells(joint, 3);
    expect(value).toEqual({ classes: 3, counts: [20, 0, 0, 0, 7, 0, 0, 0, 0], labelCounts: [25, 10, 0], unattributed: [3, 3, 0] });
    expect(suppressed).toBe(2 + 1 + 1 + 2);
    // A small diagonal leaves too; a lone small cell next to a cell that cannot spare goes into it.
    expect(mergeSmallJointCells({ classes: 2, counts: [2, 6, 0, 9], labelCounts: [8, 9] }, 3).value).toEqual({ classes: 2, counts: [0, 5, 0, 9], labelCounts: [8, 9], unattributed: [3, 0] });
    expect(mergeSmallJointCells({ classes: 2, counts: [4, 1, 0, 9], labelCounts: [5, 9] }, 3).value).toEqual({ classes: 2, counts: [5, 0, 0, 9], labelCounts: [5, 9] });
    const rnd = seeded(3);
    for (let k = 0; k < 300; k++) {
      const classes = 2 + Math.floor(rnd() * 5);
      const counts = Array.from({ length: classes * classes }, (_, c) => (c % (classes + 1) === 0 ? Math.floor(rnd() * 30) : Math.floor(rnd() * rnd() * 6)));
      const labelCounts = Array.from({ length: classes }, (_, i) => sum(counts.slice(i * classes, (i + 1) * classes)) + Math.floor(rnd() * 3));
      const out: JointCounts = mergeSmallJointCells({ classes, counts, labelCounts }, 3).value;
      const unattributed = out.unattributed ?? new Array<number>(classes).fill(0);
      expect(out.counts.every((c) => c === 0 || c >= 3)).toBe(true);
      expect(unattributed.every((c) => c === 0 || c >= 3)).toBe(true);
      for (let i = 0; i < classes; i++) {
        const row = counts.slice(i * classes, (i + 1) * classes);
        const got = out.counts.slice(i * classes, (i + 1) * classes);
        if (out.labelCounts[i] === 0 || sum(got) + unattributed[i] === 0) continue; // suppressed class or row
        expect(sum(got) + unattributed[i]).toBe(sum(row));
        // cells shared are the node's own counts, except the one that gave to or took the unattributed count
        const changed = got.filter((c, j) => c !== 0 && c !== row[j]).length;
        expect(changed).toBeLessThanOrEqual(1);
      }
    }
    expect(mergeSmallJointCells(joint, 1)).toEqual({ value: joint, suppressed: 0 });
  });

  test('a node with fewer records than its minimum refuses, naming the policy', () => {
    expect(() => requireMinRecords(2, 3, 'diagnosis on node "x" (images)')).toThrow(DisclosureRefusedError);
    expect(() => requireMinRecords(2, 3, 'diagnosis on node "x" (images)')).toThrow(
      'diagnosis on node "x" (images): 2 records, fewer than this node\'s minimum count 3 (disclosure policy: config.disclosure.minCount / FLAME_MIN_COUNT): the node shares nothing',
    );
    expect(() => requireMinRecords(3, 3, 'x')).not.toThrow();
  });

  test('a node tallies what it suppressed per kind, and the record is absent when every minimum is 1', () => {
    const c = new DisclosureControl({ minCount: 3 });
    c.histogram('histogram_bins', [1, 1, 1, 4]);
    c.counts('class_counts', [5, 6]);
    c.count('class_counts', 2);
    expect(c.report()).toEqual({ min_count: 3, suppressed: { histogram_bins: 3, class_counts: 1 } });
    const off = new DisclosureControl({ minCount: 1 });
    off.histogram('histogram_bins', [1, 1]);
    expect(disclosureRecord([{ node: 'a', report: off.report() }])).toBeUndefined();
    expect(disclosureRecord([{ node: 'a', report: off.report() }, { node: 'b', report: c.report() }])).toEqual({
      min_count: { a: 1, b: 3 },
      suppressed: { a: { histogram_bins: 0 }, b: { histogram_bins: 3, class_counts: 1 } },
      suppressed_total: 4,
    });
  });
});

describe('Laplace noise', () => {
  test('draws have mean 0, mean absolute value b and variance 2b² (20,000 draws, generous bounds)', () => {
    const b = 2.5;
    const n = 20_000;
    const xs = Array.from({ length: n }, () => laplaceSample(b));
    const mean = sum(xs) / n;
    const meanAbs = sum(xs.map(Math.abs)) / n;
    const variance = sum(xs.map((x) => (x - mean) ** 2)) / n;
    process.stdout.write(`laplace b=${b}: mean ${mean.toFixed(4)}, mean |x| ${meanAbs.toFixed(4)}, variance ${variance.toFixed(3)} (expected 0, ${b}, ${2 * b * b})\n`);
    expect(Math.abs(mean)).toBeLessThan(0.1 * b); // sd of the mean: 0.01 b
    expect(meanAbs / b).toBeGreaterThan(0.93);
    expect(meanAbs / b).toBeLessThan(1.07); // sd: 0.7 %
    expect(variance / (2 * b * b)).toBeGreaterThan(0.85);
    expect(variance / (2 * b * b)).toBeLessThan(1.15);
  });

  test('the inverse CDF maps quantiles where Laplace(0, b) has them', () => {
    expect(laplaceSample(1, () => 0.5)).toBeCloseTo(0, 12);
    expect(laplaceSample(1, () => 0.75)).toBeCloseTo(-Math.log(0.5), 12);
    expect(laplaceSample(2, () => 0.25)).toBeCloseTo(2 * Math.log(0.5), 12);
  });

  test('noise goes only where the fields point, the input stays as it was, and the count of noised numbers is reported', () => {
    const value = {
      count: 10,
      mean: 4,
      tasks: [{ stats: { mean: [0.5, 0.25], std: [0.1] }, id: 'x' }, { stats: { mean: [1] } }],
      weights: new Tensor('float32', [2], Float32Array.from([1, 2])),
      ids: new Tensor('int32', [1], Int32Array.from([7])),
    };
    const one = (): number => 1;
    const some = addLaplaceNoise(value, 1, ['mean', 'tasks.*.stats.mean'], one);
    expect(some.noised).toBe(4);
    expect(some.value).toMatchObject({ count: 10, mean: 5, tasks: [{ stats: { mean: [1.5, 1.25], std: [0.1] }, id: 'x' }, { stats: { mean: [2] } }] });
    expect(value.mean).toBe(4);
    expect(value.tasks[0].stats.mean).toEqual([0.5, 0.25]);
    const all = addLaplaceNoise(value, 1, undefined, one);
    expect(all.noised).toBe(1 + 1 + 3 + 1 + 2); // every finite number and float tensor element, not int tensors
    expect(Array.from(all.value.weights.data)).toEqual([2, 3]);
    expect(Array.from(all.value.ids.data)).toEqual([7]);
  });

  test('the record lands in the disclosure field; without noise an existing record says so and an absent one stays absent', () => {
    const noise = { mechanism: 'laplace' as const, scale: 1, values: 2, fields: ['mean'], requested_by: ['a'] };
    expect(recordNoise({ mean: 1 }, 'disclosure', noise).value).toEqual({ mean: 1, disclosure: { noise } });
    expect(recordNoise({ result: { disclosure: { suppressed_total: 3 } } }, 'result.disclosure', null).value).toEqual({ result: { disclosure: { suppressed_total: 3, noise: null } } });
    const plain = { mean: 1 };
    expect(recordNoise(plain, 'disclosure', null).value).toEqual({ mean: 1 });
    expect(recordNoise(3, 'disclosure', noise)).toEqual({ value: 3, recorded: false });
    expect(strictestNoiseScale([{ node: 'a', policy: { minCount: 3 } }, { node: 'b', policy: { minCount: 3, noiseScale: 0.5 } }, { node: 'c', policy: { minCount: 3, noiseScale: 0.2 } }])).toEqual({ scale: 0.5, nodes: ['b'] });
    expect(strictestNoiseScale([{ node: 'a', policy: { minCount: 3 } }])).toBeUndefined();
  });
});
