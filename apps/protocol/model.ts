/**
 * The pluggable model behind the worker: a {@link SampleModel} turns loaded images into feature
 * vectors and, from the labelled vectors, fits a {@link Predictor} that classifies images.
 *
 * Two implementations:
 * - {@link ConvSoftmaxModel}, the default: src/ml's random-convolution features plus per-channel
 *   mean and standard deviation (so plain brightness differences count too), a softmax head
 *   trained with src/ml's SGD step, and, for prediction, one ONNX graph pixels → probabilities
 *   run by onnxruntime-node.
 * - {@link OnnxClassifierModel}: a user's ONNX classifier given with `--model`; it is not trained.
 */
import * as ort from 'onnxruntime-node';
import { BadRequestError } from '../../src/errors.js';
import { appendConvFeatures, convFeatureDim, randomConvSpec, type ConvFeatureSpec, OnnxFeatureExtractor } from '../../src/ml/features.js';
import { GraphBuilder, attr, encodeModel } from '../../src/ml/onnx-writer.js';
import { type ImageBatch, type ImageShape, fitBatch, sliceBatch } from '../../src/ml/pixels.js';
import { localFeatureSums, localUpdate, standardize, standardizerFrom, zeroWeights, type SoftmaxWeights, type Standardizer } from '../../src/ml/softmax.js';

/** Classifies images; fitted once per training set and never changed afterwards. */
export interface Predictor {
  /** Class scores (probabilities for the built-in model), row-major `count × classes`. */
  scores(batch: ImageBatch): Promise<Float32Array>;
  /** Frees its inference session. */
  release(): Promise<void>;
}

/** A model the worker can train on loaded samples and infer with. */
export interface SampleModel {
  /** Class names, in the order of the score columns. */
  readonly classes: readonly string[];
  /** The image shape the model takes; files are decoded and resized to it. */
  readonly input: ImageShape;
  /** Length of the vector kept per loaded sample (0 when the model keeps nothing). */
  readonly featureDim: number;
  /** Whether {@link fit} learns from the samples (else it ignores them and needs none). */
  readonly trainable: boolean;
  /** Feature vectors of images (`count × featureDim`), computed once when samples are loaded. */
  features(batch: ImageBatch): Promise<Float32Array>;
  /** A predictor for a training set (`labels` index {@link classes}). */
  fit(features: Float32Array, labels: Int32Array): Promise<Predictor>;
  /** Frees the model's sessions. */
  release(): Promise<void>;
}

/** Rows per onnxruntime call: large enough for throughput, small enough to bound memory. */
const BATCH_ROWS = 256;

/** Runs `session` over a fitted batch in chunks; `output` has `dim` values per image. */
async function runInChunks(session: ort.InferenceSession, batch: ImageBatch, input: ImageShape, output: string, dim: number): Promise<Float32Array> {
  const fitted = fitBatch(batch, input);
  const out = new Float32Array(fitted.count * dim);
  for (let start = 0; start < fitted.count; start += BATCH_ROWS) {
    const end = Math.min(fitted.count, start + BATCH_ROWS);
    const chunk = sliceBatch(fitted, start, end);
    const tensor = new ort.Tensor('float32', chunk.data, [end - start, input.channels, input.height, input.width]);
    const result = await session.run({ pixels: tensor });
    out.set(result[output].data as Float32Array, start * dim);
  }
  return out;
}

/** Options of {@link ConvSoftmaxModel.create}. */
export interface ConvSoftmaxOptions {
  classes: readonly string[];
  /** Shape images are converted to; default 1 × 32 × 32 (grey). */
  input?: ImageShape;
  /** Passes over the training set (at least {@link MIN_TRAINING_STEPS} SGD steps are made). */
  epochs?: number;
  /** Seed of the random filters and of the shuffles. */
  seed?: number;
}

/** Defaults of {@link ConvSoftmaxModel}; epochs and rates measured with bench/worker.ts on Fashion-MNIST. */
export const CONV_SOFTMAX_DEFAULTS = {
  input: { channels: 1, height: 32, width: 32 },
  epochs: 20,
  lr: 0.02,
  seed: 1234,
} as const;

/** Tiny training sets still get enough SGD steps to converge. */
const MIN_TRAINING_STEPS = 300;
const TRAIN_BATCH = 128;

/**
 * Appends per-channel mean and standard deviation of the raw pixels (N×2C). The random filters
 * have zero mean, so without these a dark and a bright flat image would look alike.
 */
function appendChannelStats(g: GraphBuilder, pixels: string): string {
  const axes = { axes: attr.ints([2, 3]), keepdims: attr.int(1) };
  const mean = g.op('ReduceMean', [pixels], axes);
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [pixels, pixels])], axes);
  const variance = g.op('Relu', [g.op('Sub', [meanSquare, g.op('Mul', [mean, mean])])]);
  const flat = (v: string): string => g.op('Flatten', [v], { axis: attr.int(1) });
  return g.op('Concat', [flat(mean), flat(g.op('Sqrt', [variance]))], { axis: attr.int(1) });
}

/** Appends the full feature vector: random-convolution features then channel statistics. */
function appendFeatures(g: GraphBuilder, pixels: string, spec: ConvFeatureSpec): string {
  return g.op('Concat', [appendConvFeatures(g, pixels, spec), appendChannelStats(g, pixels)], { axis: attr.int(1) });
}

/** The built-in model: random-convolution features and a softmax head trained on the samples. */
export class ConvSoftmaxModel implements SampleModel {
  readonly featureDim: number;
  readonly trainable = true;

  private constructor(
    readonly classes: readonly string[],
    readonly input: ImageShape,
    private readonly spec: ConvFeatureSpec,
    private readonly featureSession: ort.InferenceSession,
    private readonly epochs: number,
    private readonly seed: number,
  ) {
    this.featureDim = convFeatureDim(spec) + 2 * input.channels;
  }

  /** Builds the feature graph and opens its session. */
  static async create(options: ConvSoftmaxOptions): Promise<ConvSoftmaxModel> {
    const input = options.input ?? CONV_SOFTMAX_DEFAULTS.input;
    const seed = options.seed ?? CONV_SOFTMAX_DEFAULTS.seed;
    if (options.classes.length === 0) throw new BadRequestError('the model needs at least one class');
    // Fixed normalisation: the filters have zero mean and the head standardises its inputs,
    // so dataset statistics would change nothing but the zero padding at the borders.
    const spec = randomConvSpec({ input, mean: new Array(input.channels).fill(0.5), std: new Array(input.channels).fill(0.25), seed });
    const g = new GraphBuilder('worker_features');
    g.input('pixels', 'float32', ['batch', input.channels, input.height, input.width]);
    g.op('Identity', [appendFeatures(g, 'pixels', spec)], undefined, 'features');
    g.output('features', 'float32', ['batch', convFeatureDim(spec) + 2 * input.channels]);
    const session = await ort.InferenceSession.create(encodeModel(g.build(), { docString: 'flame worker features' }));
    return new ConvSoftmaxModel([...options.classes], input, spec, session, options.epochs ?? CONV_SOFTMAX_DEFAULTS.epochs, seed);
  }

  /** Feature rows of a batch. */
  features(batch: ImageBatch): Promise<Float32Array> {
    return runInChunks(this.featureSession, batch, this.input, 'features', this.featureDim);
  }

  /** Standardises the features, trains the head with a stepped learning rate, builds the classifier. */
  async fit(features: Float32Array, labels: Int32Array): Promise<Predictor> {
    const n = labels.length;
    if (n === 0) throw new BadRequestError('no samples loaded: load-samples before infer');
    const dim = this.featureDim;
    const standardizer = standardizerFrom(localFeatureSums(features, dim));
    const x = standardize(features, standardizer);
    const stepsPerEpoch = Math.ceil(n / TRAIN_BATCH);
    const epochs = Math.max(this.epochs, Math.ceil(MIN_TRAINING_STEPS / stepsPerEpoch));
    // Three phases, each with a fifth of the previous rate: fast progress, then settling.
    const phases = [
      { share: 0.6, lr: CONV_SOFTMAX_DEFAULTS.lr },
      { share: 0.3, lr: CONV_SOFTMAX_DEFAULTS.lr / 5 },
      { share: 0.1, lr: CONV_SOFTMAX_DEFAULTS.lr / 25 },
    ];
    let weights = zeroWeights(dim, this.classes.length);
    for (const [i, phase] of phases.entries()) {
      const phaseEpochs = Math.max(1, Math.round(epochs * phase.share));
      const update = await localUpdate(weights, x, labels, { epochs: phaseEpochs, lr: phase.lr, batchSize: TRAIN_BATCH, seed: this.seed + i });
      weights = update.weights;
    }
    const bytes = classifierModel(this.spec, this.input, standardizer, weights);
    return new OnnxPredictor(await ort.InferenceSession.create(bytes), this.input, this.classes.length, bytes);
  }

  /** Frees the feature session. */
  release(): Promise<void> {
    return this.featureSession.release();
  }
}

/**
 * The bytes of a complete ONNX classifier `pixels` (N×C×H×W, 0–1) → `probabilities` (N×classes):
 * the worker's features, standardisation and the softmax head in one graph.
 */
export function classifierModel(spec: ConvFeatureSpec, input: ImageShape, s: Standardizer, weights: SoftmaxWeights): Uint8Array {
  const g = new GraphBuilder('worker_classifier');
  g.input('pixels', 'float32', ['batch', input.channels, input.height, input.width]);
  const features = appendFeatures(g, 'pixels', spec);
  const dim = weights.dim;
  const standardized = g.op('Mul', [g.op('Sub', [features, g.floats('feature_mean', [dim], s.mean)]), g.floats('feature_inv_std', [dim], s.invStd)]);
  const logits = g.op('Gemm', [standardized, g.floats('head_w', [dim, weights.classes], weights.w), g.floats('head_b', [weights.classes], weights.b)]);
  g.op('Softmax', [logits], { axis: attr.int(-1) }, 'probabilities');
  g.output('probabilities', 'float32', ['batch', weights.classes]);
  return encodeModel(g.build(), { docString: 'flame worker classifier' });
}

/** A predictor running a classifier graph with a `pixels` input and a `probabilities` output. */
export class OnnxPredictor implements Predictor {
  constructor(
    private readonly session: ort.InferenceSession,
    private readonly input: ImageShape,
    private readonly classes: number,
    /** The ONNX model bytes (to save or to run elsewhere). */
    readonly modelBytes: Uint8Array,
  ) {}

  /** Class probabilities, `count × classes`. */
  scores(batch: ImageBatch): Promise<Float32Array> {
    return runInChunks(this.session, batch, this.input, 'probabilities', this.classes);
  }

  /** Frees the session. */
  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * A user's ONNX classifier: first input N×C×H×W float pixels on a 0–1 scale (fixed C, H, W), first
 * output N×K class scores, with K names given as `labels`. Loaded samples are not used.
 */
export class OnnxClassifierModel implements SampleModel {
  readonly featureDim = 0;
  readonly trainable = false;
  private readonly predictor: Predictor;

  private constructor(
    readonly classes: readonly string[],
    private readonly runner: OnnxFeatureExtractor,
  ) {
    // The one predictor is shared; its session lives as long as the model.
    this.predictor = { scores: (batch) => this.runner.extract(batch), release: async () => undefined };
  }

  /** Opens the model and checks that it gives one score per label. */
  static async fromFile(path: string, labels: readonly string[]): Promise<OnnxClassifierModel> {
    const runner = await OnnxFeatureExtractor.fromFile(path);
    if (runner.dim !== labels.length) {
      await runner.release();
      throw new BadRequestError(`model ${path} gives ${runner.dim} scores per image but ${labels.length} labels were given`);
    }
    return new OnnxClassifierModel([...labels], runner);
  }

  /** The image shape the model takes. */
  get input(): ImageShape {
    return this.runner.input;
  }

  /** Nothing is kept per sample. */
  async features(batch: ImageBatch): Promise<Float32Array> {
    return new Float32Array(batch.count * 0);
  }

  /** The user's model, whatever the samples. */
  async fit(): Promise<Predictor> {
    return this.predictor;
  }

  /** Frees the session. */
  release(): Promise<void> {
    return this.runner.release();
  }
}

/** Index of the highest score in each row of a row-major `count × classes` matrix. */
export function argmaxRows(scores: Float32Array, classes: number): Int32Array {
  const n = classes === 0 ? 0 : scores.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (scores[i * classes + c] > scores[i * classes + best]) best = c;
    out[i] = best;
  }
  return out;
}
