/**
 * The features phase: nodes extract a feature row per image (random convolutions, or a user ONNX
 * extractor) and, with a user classifier, its probabilities; they send per-feature sums, from which
 * the aggregator pools the standardisation the training uses, and starts the iterate phase.
 */
import { Tensor } from 'flame-sdk';
import { BadRequestError } from 'flame-sdk';
import { ConvFeatureExtractor, OnnxFeatureExtractor, contentDigest, type FeatureExtractor } from 'flame-sdk/ml';
import { DEFAULT_PCA, initialBasis } from 'flame-sdk/ml';
import { localFeatureSums, mergeFeatureSums, standardizerFrom } from 'flame-sdk/ml';
import type { Phase } from 'flame-sdk';
import type { DiagnosisAggregate, DiagnosisSetup } from '../global.js';
import type { LocalData } from '../load.js';
import { diagnosisConvSpec, mirrors } from '../model.js';
import { f64, settled, type DiagnosisContext, type NodeFeatures, type NodeState } from './context.js';

/**
 * What a node sends in the features round: its feature sums (`count` rows, per-feature `sum` and
 * `sumSquares`) for the pooled standardisation.
 *
 * @property featureSums The node's sums over its feature rows.
 * @property images The node's images (its mirrored copies, when summed too, are not counted).
 * @property featureSums.__type.count Feature rows summed.
 * @property featureSums.__type.sum Σ x per feature.
 * @property featureSums.__type.sumSquares Σ x² per feature.
 */
export type FeaturesPartial = { images: number; featureSums: { count: number; sum: Tensor; sumSquares: Tensor } };

const FEATURE_CHUNK = 2048;

/** The same softmax per row as a probability vector (logits → probabilities; probabilities unchanged). */
export function toProbabilities(rows: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let off = 0; off < rows.length; off += classes) {
    let sum = 0;
    let negative = false;
    for (let c = 0; c < classes; c++) {
      sum += rows[off + c];
      if (rows[off + c] < 0) negative = true;
    }
    if (!negative && Math.abs(sum - 1) < 1e-3) {
      out.set(rows.subarray(off, off + classes), off);
      continue;
    }
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, rows[off + c]);
    let total = 0;
    for (let c = 0; c < classes; c++) total += out[off + c] = Math.exp(rows[off + c] - max);
    for (let c = 0; c < classes; c++) out[off + c] /= total;
  }
  return out;
}

/** Runs `extractor` over a node's thumbnails (grouped by shape, in chunks; mirrored left–right with `mirror`), row per image. */
async function runOverThumbnails(extractor: FeatureExtractor, data: LocalData, mirror = false): Promise<Float32Array> {
  const dim = extractor.dim;
  const out = new Float32Array(data.images.length * dim);
  const groups = new Map<string, number[]>();
  data.images.forEach((im, i) => {
    const s = im.signals;
    const key = `${s.thumbChannels}x${s.thumbHeight}x${s.thumbWidth}`;
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  });
  for (const idx of groups.values()) {
    const first = data.images[idx[0]].signals;
    const size = first.thumbChannels * first.thumbHeight * first.thumbWidth;
    for (let start = 0; start < idx.length; start += FEATURE_CHUNK) {
      const part = idx.slice(start, start + FEATURE_CHUNK);
      const batch = new Float32Array(part.length * size);
      const w = first.thumbWidth;
      part.forEach((i, r) => {
        const t = data.images[i].signals.thumbnail;
        if (!mirror) for (let k = 0; k < size; k++) batch[r * size + k] = t[k] / 255;
        else for (let row = 0; row < size; row += w) for (let x = 0; x < w; x++) batch[r * size + row + x] = t[row + w - 1 - x] / 255;
      });
      const rows = await extractor.extract({ count: part.length, channels: first.thumbChannels, height: first.thumbHeight, width: first.thumbWidth, data: batch });
      part.forEach((i, r) => out.set(rows.subarray(r * dim, (r + 1) * dim), i * dim));
    }
  }
  return out;
}

/** Each image's content digest: its thumbnail's shape and pixels (the same image, the same fold, on any node). */
export function imageDigests(data: LocalData): Uint32Array {
  return Uint32Array.from(data.images, (im) => {
    const t = im.signals;
    return contentDigest(t.thumbnail, contentDigest(Uint8Array.of(t.thumbChannels, t.thumbHeight, t.thumbWidth)));
  });
}

/**
 * Node side (the phase's `enter`, replayed on a resume): labels, features and, with a user
 * classifier, probabilities of the node's images, into its state.
 */
export async function extractFeatures(s: NodeState, setup: DiagnosisSetup, ctx: Pick<DiagnosisContext, 'options' | 'need'>): Promise<void> {
  const { options } = ctx;
  const classes = setup.classes;
  const labels = Int32Array.from(s.data.images, (im) => classes.indexOf(im.label));
  const extractor: FeatureExtractor = options.featureExtractor
    ? await OnnxFeatureExtractor.fromFile(options.featureExtractor)
    : await ConvFeatureExtractor.create(diagnosisConvSpec(setup.shape, setup.mean, setup.std_dev, setup.filters));
  try {
    s.features = { labels, values: await runOverThumbnails(extractor, s.data), dim: extractor.dim, digests: imageDigests(s.data) };
    if (mirrors(options) && ctx.need.train) s.features.mirrored = await runOverThumbnails(extractor, s.data, true);
  } finally {
    await extractor.release();
  }
  if (options.classifier && ctx.need.cl) {
    const model = await OnnxFeatureExtractor.fromFile(options.classifier);
    try {
      if (model.dim !== classes.length) throw new BadRequestError(`classifier ${options.classifier}: outputs ${model.dim} values per image, the dataset has ${classes.length} classes`);
      s.probs = toProbabilities(await runOverThumbnails(model, s.data), classes.length);
    } finally {
      await model.release();
    }
  }
}

/** Node side: the sums of the node's feature rows (it refuses below its minimum count). */
export function featureSums(s: NodeState): FeaturesPartial {
  const { values, dim, mirrored }: NodeFeatures = settled(s.features, 'features');
  // With mirrored copies the heads train on both, so both are standardised alike.
  const sums = mirrored ? mergeFeatureSums([localFeatureSums(values, dim), localFeatureSums(mirrored, dim)]) : localFeatureSums(values, dim);
  const images = values.length / dim;
  s.control.requireRecords(images, `diagnosis on node "${s.nodeId}" (feature sums)`);
  return { images, featureSums: { count: sums.count, sum: new Tensor('float64', [dim], sums.sum), sumSquares: new Tensor('float64', [dim], sums.sumSquares) } };
}

/**
 * Aggregator side: the pooled standardisation and the iterate phase's start (the PCA's seeded basis); only the setup's count when nothing iterates. The images counted from here on are
 * those of the nodes still in the run.
 */
export function mergeFeatures(partials: readonly FeaturesPartial[], previous: DiagnosisAggregate, iterate: { train: boolean; pca: boolean }): DiagnosisAggregate {
  const merged = mergeFeatureSums(partials.map((p) => ({ count: p.featureSums.count, sum: f64(p.featureSums.sum), sumSquares: f64(p.featureSums.sumSquares) })));
  const st = standardizerFrom(merged);
  const base: DiagnosisAggregate = { phase: previous.phase, setup: { ...previous.setup, count: partials.reduce((a, p) => a + p.images, 0) } };
  if (!iterate.train && !iterate.pca) return base;
  const dim = st.mean.length;
  const m = DEFAULT_PCA.components + DEFAULT_PCA.oversample;
  return {
    ...base,
    standardizer: { mean: new Tensor('float32', [dim], st.mean), invStd: new Tensor('float32', [dim], st.invStd) },
    basis: iterate.pca ? new Tensor('float64', [dim * m], initialBasis(dim, m, DEFAULT_PCA.seed)) : null,
    pca: null,
  };
}

/** The features phase. A hospital lost while its features are extracted is left out too. */
export function featuresPhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, FeaturesPartial> {
  return {
    name: 'features',
    steps: () => (ctx.need.features ? 1 : 0),
    enter: ({ state, global }) => extractFeatures(state, global.setup, ctx),
    local: ({ state }) => featureSums(state),
    merge(partials, { sdk, previous }) {
      const next = mergeFeatures(
        partials.map((p) => p.value),
        previous,
        { train: ctx.trainSteps > 0, pca: ctx.pcaSteps > 0 },
      );
      ctx.report(sdk, 'features', 0.35);
      return next;
    },
    tolerates: true,
  };
}
