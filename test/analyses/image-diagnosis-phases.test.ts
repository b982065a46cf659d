/**
 * @jest-environment ./test/helpers/onnx-environment.cjs
 */
/**
 * The diagnosis' phases one at a time, on small data made here: each phase's node-side step on a
 * few node states and its aggregator-side merge, compared with the pooled computation or with the
 * in-process protocol of src/ml that the benchmarks measure (the same functions, so the same numbers).
 */
import { DisclosureControl } from '../../src/star/disclosure.js';
import { federatedLabelIssues, findLabelIssues } from '../../src/ml/confident-learning.js';
import { crossValidatedProbabilities } from '../../src/ml/cross-validation.js';
import { contentDigest, contentFolds, releaseGramSessions } from '../../src/ml/ridge.js';
import { federatedPca } from '../../src/ml/projection.js';
import { SeededRandom } from '../../src/ml/random.js';
import { headLogits, localFeatureSums, releaseTrainingSessions, standardizerFrom } from '../../src/ml/softmax.js';
import { cutoffsFrom, emptyHistograms } from '../../analyses/image-diagnosis/distribution.js';
import type { DiagnosisAggregate } from '../../analyses/image-diagnosis/global.js';
import { diagnosisContext, f32, f64, logitsInChunks, probabilitiesOf, settleProbabilities, type NodeState } from '../../analyses/image-diagnosis/phases/context.js';
import { featureSums, mergeFeatures } from '../../analyses/image-diagnosis/phases/features.js';
import { iterateLocal, mergeIterate, standardizeAndFold, type IterateStep } from '../../analyses/image-diagnosis/phases/iterate.js';
import { mergeThresholds, thresholdsLocal, thresholdsOf } from '../../analyses/image-diagnosis/phases/cl-thresholds.js';
import { jointLocal, mergeJoint } from '../../analyses/image-diagnosis/phases/cl-joint.js';
import { cutoffsLocal, cutoffsOf, cutoffsPhase, mergeCutoffs } from '../../analyses/image-diagnosis/phases/cl-cutoffs.js';

afterAll(async () => {
  await releaseTrainingSessions();
  await releaseGramSessions();
});

const CLASSES = ['a', 'b', 'c'];
const DIM = 6;

/** Labelled gaussian clusters per node, each node's features shifted so that pooling matters. */
function nodeData(sizes: number[], seed: number): Array<{ features: Float32Array; labels: Int32Array; digests: Uint32Array }> {
  const rng = new SeededRandom(seed);
  const centres = CLASSES.map(() => Array.from({ length: DIM }, () => 2 * rng.normal()));
  return sizes.map((n, k) => {
    const labels = Int32Array.from({ length: n }, () => rng.int(CLASSES.length));
    const features = new Float32Array(n * DIM);
    for (let i = 0; i < n; i++) for (let j = 0; j < DIM; j++) features[i * DIM + j] = centres[labels[i]][j] + rng.normal() + k;
    // What the features phase hashes is the image; here the row stands for it.
    const digests = Uint32Array.from({ length: n }, (_, i) => contentDigest(new Uint8Array(features.buffer, i * DIM * 4, DIM * 4)));
    return { features, labels, digests };
  });
}

/** A node's state as the load and features phases leave it (no images needed past that). */
function stateOf(nodeIndex: number, d: { features: Float32Array; labels: Int32Array; digests: Uint32Array }, minCount = 1): NodeState {
  return {
    nodeId: `node-${nodeIndex}`,
    nodeIndex,
    data: { images: [], classes: CLASSES, skipped: [] },
    control: new DisclosureControl({ minCount }),
    features: { labels: d.labels, values: d.features.slice(), dim: DIM, digests: d.digests },
  };
}

function featuresGlobal(count: number): DiagnosisAggregate {
  return {
    phase: 'features',
    setup: { tasks: ['mislabeled_images'], classes: CLASSES, mean: [0.5], std_dev: [0.25], shape: { channels: 1, height: 8, width: 8 }, cutoffs: cutoffsFrom(emptyHistograms()), duplicates: {}, count, filters: 16 },
  };
}

describe('features phase', () => {
  it('pools the standardisation from the nodes feature sums, and the iterate phase standardises and folds with it', async () => {
    const data = nodeData([40, 25, 35], 1);
    const states = data.map((d, k) => stateOf(k, d));
    const g = mergeFeatures(states.map(featureSums), featuresGlobal(0), { train: true, pca: true });
    expect(g.setup.count).toBe(100);
    expect(g.basis?.data.length).toBe(DIM * 6);
    const all = new Float32Array(100 * DIM);
    let off = 0;
    for (const d of data) {
      all.set(d.features, off);
      off += d.features.length;
    }
    const pooled = standardizerFrom(localFeatureSums(all, DIM));
    const st = g.standardizer ?? fail('no standardizer');
    for (let j = 0; j < DIM; j++) {
      expect(f32(st.mean)[j]).toBeCloseTo(pooled.mean[j], 5);
      expect(f32(st.invStd)[j]).toBeCloseTo(pooled.invStd[j], 5);
    }
    // Standardised on every node with the pooled figures (as 8-bit codes, steps of 6/127): mean 0 and variance 1 over all nodes.
    for (const s of states) await standardizeAndFold(s, g, 5);
    const z = new Float32Array(100 * DIM);
    off = 0;
    for (const s of states) {
      z.set(s.features?.values ?? fail('no features'), off);
      off += s.features?.values.length ?? 0;
    }
    const after = standardizerFrom(localFeatureSums(z, DIM));
    for (let j = 0; j < DIM; j++) {
      expect(Math.abs(after.mean[j])).toBeLessThan(0.01);
      expect(after.invStd[j]).toBeCloseTo(1, 2);
    }
    states.forEach((s, k) => expect(s.folds).toEqual(contentFolds(data[k].digests, 5)));
    expect(states.every((s) => s.trainRows?.codes.length === s.features?.values.length)).toBe(true);
  });

  it('sends only the setup count when nothing iterates, and a node under its minimum count refuses', () => {
    const data = nodeData([10, 2], 2);
    const g = mergeFeatures([featureSums(stateOf(0, data[0]))], featuresGlobal(0), { train: false, pca: false });
    expect(Object.keys(g).sort()).toEqual(['phase', 'setup']);
    expect(g.setup.count).toBe(10);
    expect(() => featureSums(stateOf(1, data[1], 3))).toThrow(/feature sums/);
  });
});

describe('iterate phase', () => {
  it('trains the folds to the very probabilities crossValidatedProbabilities gives, and projects as federatedPca does', async () => {
    const data = nodeData([60, 45, 50], 3);
    const states = data.map((d, k) => stateOf(k, d));
    let g = mergeFeatures(states.map(featureSums), featuresGlobal(0), { train: true, pca: true });
    for (const s of states) await standardizeAndFold(s, g, 3);
    const [folds, trainSteps, pcaSteps] = [3, 2, 5];
    const steps = Math.max(trainSteps, pcaSteps);
    for (let step = 0; step < steps; step++) {
      const at: IterateStep = { step, folds, trainSteps, pcaSteps };
      const partials = await Promise.all(states.map((s) => iterateLocal(s, g, at)));
      expect(partials.every((p) => (step < pcaSteps) === (p.product !== undefined))).toBe(true);
      expect(partials.every((p) => (step === 0) === (p.sums !== undefined) && (step === 1) === (p.losses !== undefined))).toBe(true);
      g = await mergeIterate(partials, g, at);
    }
    expect(g.foldWeights).toHaveLength(folds);
    expect(g.rawHeads).toBeUndefined();
    expect(g.foldCounts).toEqual([0, 1, 2].map((f) => states.reduce((a, s) => a + (s.folds ?? new Int32Array()).filter((x) => x !== f).length, 0)));
    const cv = await crossValidatedProbabilities(data, { classes: CLASSES.length, folds });
    for (const s of states) await settleProbabilities(s, g);
    states.forEach((s, k) => expect(Array.from(probabilitiesOf(s))).toEqual(Array.from(cv.probabilities[k])));

    const pca = g.pca ?? fail('no pca');
    const expected = await federatedPca(states.map((s) => s.features?.values ?? fail('no features')), DIM);
    const axes = f64(pca.axes);
    for (let i = 0; i < axes.length; i++) expect(axes[i]).toBeCloseTo(expected.axes[i], 4);
    expect(g.basis).toBeNull();
  });
});

describe('a node stays responsive through its heavy steps', () => {
  /** How many turns the event loop made while `work` ran (a heartbeat is a timer on the same loop: it fires only between turns). */
  async function loopTurnsDuring(work: () => Promise<unknown>): Promise<number> {
    let turns = 0;
    let counting = true;
    const count = (): void => {
      if (!counting) return;
      turns++;
      setImmediate(count);
    };
    setImmediate(count);
    try {
      await work();
    } finally {
      counting = false;
    }
    return turns;
  }

  it('standardising, quantising and predicting the rows of a node let timers run between chunks, with the same numbers', async () => {
    const [d] = nodeData([5000], 4);
    const s = stateOf(0, d);
    const g = mergeFeatures([featureSums(s)], featuresGlobal(0), { train: true, pca: false });
    expect(await loopTurnsDuring(() => standardizeAndFold(s, g, 5))).toBeGreaterThan(3);
    const values = s.features?.values ?? fail('no features');
    const folds = s.folds ?? fail('no folds');
    const rng = new SeededRandom(8);
    const heads = Array.from({ length: 5 }, () => ({ dim: DIM, classes: CLASSES.length, w: Float32Array.from({ length: DIM * CLASSES.length }, () => rng.normal()), b: new Float32Array(CLASSES.length) }));
    let logits: Float64Array = new Float64Array(0);
    expect(await loopTurnsDuring(async () => (logits = await logitsInChunks(values, heads, folds)))).toBeGreaterThan(3);
    expect(Array.from(logits)).toEqual(Array.from(headLogits(values, heads, folds)));
  });
});

describe('confident-learning phases', () => {
  /** Noisy classifier probabilities: the true class favoured, some labels flipped. */
  function predictions(sizes: number[], seed: number) {
    const rng = new SeededRandom(seed);
    const K = CLASSES.length;
    return sizes.map((n) => {
      const labels = new Int32Array(n);
      const probs = new Float32Array(n * K);
      for (let i = 0; i < n; i++) {
        const truth = rng.int(K);
        labels[i] = rng.next() < 0.15 ? (truth + 1 + rng.int(K - 1)) % K : truth;
        const z = Array.from({ length: K }, (_, c) => (c === truth ? 2 : 0) + rng.normal());
        const total = z.reduce((a, v) => a + Math.exp(v), 0);
        z.forEach((v, c) => (probs[i * K + c] = Math.exp(v) / total));
      }
      return { probs, labels };
    });
  }

  it('thresholds, joint and cut-offs merged from the nodes flag what federatedLabelIssues flags', () => {
    const preds = predictions([80, 50, 70], 4);
    const states = preds.map((p, k): NodeState => ({ ...stateOf(k, { features: new Float32Array(p.labels.length * DIM), labels: p.labels, digests: new Uint32Array(p.labels.length) }), probs: p.probs }));
    const choice = { filterBy: 'both' as const, rankBy: 'self_confidence' as const };
    let g = featuresGlobal(200);
    g = mergeThresholds(states.map((s) => thresholdsLocal(s, g)), g);
    g = mergeJoint(states.map((s) => jointLocal(s, g)), g);
    g = mergeCutoffs(states.map((s) => cutoffsLocal(s, g, choice)), g, choice);
    const expected = federatedLabelIssues(preds, CLASSES.length, choice);
    expect(thresholdsOf(g)).toEqual(expected.thresholds);
    expect(g.joint).toEqual(expected.joint);
    const cutoffs = cutoffsOf(g);
    states.forEach((s, k) => {
      const issues = findLabelIssues(preds[k].probs, preds[k].labels, g.joint ?? fail('no joint'), { ...choice, thresholds: thresholdsOf(g), ...(cutoffs ? { cutoffs } : {}) });
      expect(issues.indices).toEqual(expected.issues[k].indices);
    });
    expect(expected.issues.some((i) => i.indices.length > 0)).toBe(true);
  });

  it('a node withholds the threshold sums of a class it holds fewer than its minimum of; the cut-offs run only for ranking filters', () => {
    const [p] = predictions([30], 5);
    const labels = Int32Array.from(p.labels, (y, i) => (i < 2 ? 2 : y === 2 ? 0 : y)); // class c: 2 images
    const s: NodeState = { ...stateOf(0, { features: new Float32Array(30 * DIM), labels, digests: new Uint32Array(30) }, 3), probs: p.probs };
    const { thresholdSums } = thresholdsLocal(s, featuresGlobal(30));
    expect(thresholdSums.counts[2]).toBe(0);
    expect(thresholdSums.sums[2]).toBe(0);
    expect(s.control.report().suppressed).toHaveProperty('class_counts');
    const steps = (filterBy: 'both' | 'confident_learning' | 'predicted_neq_given') => cutoffsPhase(diagnosisContext({ filterBy })).steps?.(featuresGlobal(0));
    expect([steps('both'), steps('confident_learning'), steps('predicted_neq_given')]).toEqual([1, 0, 0]);
  });
});

function fail(what: string): never {
  throw new Error(what);
}

describe('diagnosis options', () => {
  it('refuses an augmentation it does not know, naming the option', () => {
    expect(() => diagnosisContext({ augment: 'vflip' as never })).toThrow(/option augment: expected 'hflip' or 'none', got "vflip"/);
    expect(diagnosisContext({ augment: 'none' }).trainSteps).toBe(2);
  });
});
