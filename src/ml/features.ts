/**
 * Image feature extractors run by onnxruntime-node. The built-in one is a single convolutional
 * layer with fixed-seed random filters (every node regenerates the same weights from the seed,
 * so nothing is downloaded or exchanged), a ReLU on both signs, average pooling over a coarse
 * grid and a square root that tames heavy-tailed activations. A user-supplied ONNX
 * model works through the same {@link FeatureExtractor} interface.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { BadRequestError, NotFoundError } from '../errors.js';
import { GraphBuilder, attr, encodeModel } from './onnx-writer.js';
import { type ImageBatch, type ImageShape, fitBatch, sliceBatch } from './pixels.js';
import { SeededRandom } from './random.js';

/** Turns images into fixed-length feature vectors. */
export interface FeatureExtractor {
  /** Length of one feature vector. */
  readonly dim: number;
  /** The image shape the model takes; other shapes are converted by {@link fitBatch}. */
  readonly input: ImageShape;
  /** Features of every image in the batch, row-major `count × dim`. */
  extract(batch: ImageBatch): Promise<Float32Array>;
  /** Frees the inference session. */
  release(): Promise<void>;
}

/** Everything that defines the built-in convolutional extractor (its weights included). */
export interface ConvFeatureSpec {
  /** The image shape the extractor takes (images are fitted to it first). */
  input: ImageShape;
  /** Per-channel mean and standard deviation of the pixels (0–1 scale), e.g. the dataset's `mean`/`std_dev`. */
  mean: readonly number[];
  /** Per-channel standard deviation of the pixels; every entry positive. */
  std: readonly number[];
  /** Filters, `filterCount × channels × kernelSize × kernelSize`. */
  filters: Float32Array;
  /** Number of filters (feature maps) before the activation. */
  filterCount: number;
  /** Side of each square filter, in pixels. */
  kernelSize: number;
  /** Pooling grid: the feature map is averaged over `poolGrid × poolGrid` regions. */
  poolGrid: number;
  /** Keep ReLU(z) and ReLU(−z) (twice the features, no information thrown away) or ReLU(z) only. */
  activation: 'relu' | 'split-relu';
  /** Square root of the pooled values (a power normalisation that helps linear heads). */
  sqrt: boolean;
}

/** Options of {@link randomConvSpec}; defaults are the best configuration measured in bench/ml-experiments.ts. */
export interface RandomConvOptions {
  /** The image shape the extractor takes. */
  input: ImageShape;
  /** Per-channel pixel mean (0–1 scale), e.g. the dataset's `mean`. */
  mean: readonly number[];
  /** Per-channel pixel standard deviation, e.g. the dataset's `std_dev`. */
  std: readonly number[];
  /** Number of random filters; default {@link DEFAULT_CONV_FEATURES}. */
  filterCount?: number;
  /** Filter side in pixels; default {@link DEFAULT_CONV_FEATURES}. */
  kernelSize?: number;
  /** Pooling grid side; default {@link DEFAULT_CONV_FEATURES}. */
  poolGrid?: number;
  /** Activation (see {@link ConvFeatureSpec.activation}); default split ReLU. */
  activation?: 'relu' | 'split-relu';
  /** Square-root the pooled values; default true. */
  sqrt?: boolean;
  /** Seed of the filters: nodes that use the same seed get the same filters, hence the same features. */
  seed?: number;
}

/**
 * Default random-filter configuration, from bench/ml-experiments.ts on Fashion-MNIST 60k: 64
 * filters 5×5, split ReLU, 4×4 grid, sqrt → 2048 features, 90.7% out-of-sample accuracy with 10%
 * noisy labels (raw pixels: 84.7%). 128 or 256 filters gained ≤ 0.5% accuracy, no F1, and cost
 * 4–8× the time; plain ReLU, no sqrt, 3×3 kernels or a 3×3 grid were each slightly worse.
 */
export const DEFAULT_CONV_FEATURES = {
  /** 64 filters. */
  filterCount: 64,
  /** 5×5 kernels. */
  kernelSize: 5,
  /** Averaged over a 4×4 grid. */
  poolGrid: 4,
  /** ReLU(z) and ReLU(−z). */
  activation: 'split-relu',
  /** Square root of the pooled values. */
  sqrt: true,
  /** The seed every node uses unless told otherwise. */
  seed: 1234,
} as const;

/** Length of the feature vector a spec produces. */
export function convFeatureDim(spec: Pick<ConvFeatureSpec, 'filterCount' | 'poolGrid' | 'activation'>): number {
  return spec.filterCount * spec.poolGrid * spec.poolGrid * (spec.activation === 'split-relu' ? 2 : 1);
}

/**
 * Random filters with zero mean (insensitive to overall brightness) and unit norm (comparable
 * scales), drawn from a seeded Gaussian so every node gets identical ones.
 */
export function randomFilters(count: number, channels: number, kernelSize: number, seed: number): Float32Array {
  const size = channels * kernelSize * kernelSize;
  const out = new Float32Array(count * size);
  const rng = new SeededRandom(seed);
  for (let f = 0; f < count; f++) {
    const w = out.subarray(f * size, (f + 1) * size);
    let mean = 0;
    for (let i = 0; i < size; i++) mean += (w[i] = rng.normal());
    mean /= size;
    let norm = 0;
    for (let i = 0; i < size; i++) norm += (w[i] -= mean) ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < size; i++) w[i] /= norm;
  }
  return out;
}

/** A full extractor spec with seeded random filters. */
export function randomConvSpec(options: RandomConvOptions): ConvFeatureSpec {
  const o = { ...DEFAULT_CONV_FEATURES, ...options };
  return {
    input: o.input,
    mean: o.mean,
    std: o.std,
    filters: randomFilters(o.filterCount, o.input.channels, o.kernelSize, o.seed),
    filterCount: o.filterCount,
    kernelSize: o.kernelSize,
    poolGrid: o.poolGrid,
    activation: o.activation,
    sqrt: o.sqrt,
  };
}

function checkSpec(spec: ConvFeatureSpec): void {
  const { channels, height, width } = spec.input;
  if (spec.mean.length !== channels || spec.std.length !== channels) {
    throw new BadRequestError(`conv features: mean/std need ${channels} values, got ${spec.mean.length}/${spec.std.length}`);
  }
  if (spec.std.some((s) => !(s > 0))) throw new BadRequestError(`conv features: std must be positive, got [${spec.std.join(', ')}]`);
  if (spec.filters.length !== spec.filterCount * channels * spec.kernelSize ** 2) {
    throw new BadRequestError(`conv features: ${spec.filters.length} filter weights for ${spec.filterCount} filters of ${channels}×${spec.kernelSize}²`);
  }
  if (!(spec.poolGrid >= 1 && spec.poolGrid <= Math.min(height, width))) {
    throw new BadRequestError(`conv features: poolGrid ${spec.poolGrid} does not fit a ${height}×${width} image`);
  }
}

/** Pool windows that tile a length into `grid` parts: stride ⌊len/grid⌋, the last window reaching the end. */
function poolWindow(length: number, grid: number): { kernel: number; stride: number } {
  const stride = Math.floor(length / grid);
  return { kernel: length - stride * (grid - 1), stride };
}

/**
 * Appends the extractor to a graph: `pixels` (N×C×H×W, 0–1) → features (N×dim).
 * Shared by {@link ConvFeatureExtractor} and the exported classifier, so both compute the same thing.
 */
export function appendConvFeatures(g: GraphBuilder, pixels: string, spec: ConvFeatureSpec): string {
  checkSpec(spec);
  const { channels, height, width } = spec.input;
  const mean = g.floats('pixel_mean', [1, channels, 1, 1], [...spec.mean]);
  const std = g.floats('pixel_std', [1, channels, 1, 1], [...spec.std]);
  const normalised = g.op('Div', [g.op('Sub', [pixels, mean]), std]);
  const k = spec.kernelSize;
  const pad = Math.floor(k / 2);
  // ReLU(z) and ReLU(−z) come from one convolution with the filters and their negatives:
  // cheaper than negating and concatenating full-size feature maps.
  const split = spec.activation === 'split-relu';
  const weights = split ? new Float32Array(spec.filters.length * 2) : spec.filters;
  if (split) {
    weights.set(spec.filters);
    for (let i = 0; i < spec.filters.length; i++) weights[spec.filters.length + i] = -spec.filters[i];
  }
  const outChannels = split ? 2 * spec.filterCount : spec.filterCount;
  const conv = g.op('Conv', [normalised, g.floats('filters', [outChannels, channels, k, k], weights)], {
    kernel_shape: attr.ints([k, k]),
    pads: attr.ints([pad, pad, k - 1 - pad, k - 1 - pad]),
  });
  const maps = g.op('Relu', [conv]);
  const ph = poolWindow(height, spec.poolGrid);
  const pw = poolWindow(width, spec.poolGrid);
  let pooled = g.op('AveragePool', [maps], {
    kernel_shape: attr.ints([ph.kernel, pw.kernel]),
    strides: attr.ints([ph.stride, pw.stride]),
  });
  if (spec.sqrt) pooled = g.op('Sqrt', [pooled]);
  return g.op('Flatten', [pooled], { axis: attr.int(1) });
}

/** Rows per inference call: large enough for throughput, small enough to bound memory. */
const DEFAULT_BATCH_SIZE = 256;

/** Runs a session on fitted batches in chunks and concatenates the feature rows. */
async function extractInChunks(
  session: ort.InferenceSession,
  inputName: string,
  outputName: string,
  dim: number,
  input: ImageShape,
  batch: ImageBatch,
  batchSize: number,
  prepare: (data: Float32Array) => Float32Array = (d) => d,
): Promise<Float32Array> {
  const fitted = fitBatch(batch, input);
  const out = new Float32Array(fitted.count * dim);
  for (let start = 0; start < fitted.count; start += batchSize) {
    const end = Math.min(fitted.count, start + batchSize);
    const chunk = sliceBatch(fitted, start, end);
    const tensor = new ort.Tensor('float32', prepare(chunk.data), [end - start, input.channels, input.height, input.width]);
    const result = await session.run({ [inputName]: tensor });
    const data = result[outputName].data as Float32Array;
    if (data.length !== (end - start) * dim) {
      throw new BadRequestError(`feature extractor: output '${outputName}' has ${data.length} values, expected ${(end - start) * dim}`);
    }
    out.set(data, start * dim);
  }
  return out;
}

/** The built-in random-convolution extractor. */
export class ConvFeatureExtractor implements FeatureExtractor {
  readonly dim: number;
  readonly input: ImageShape;

  private constructor(
    /** The spec (filters included) it runs; `exportClassifierOnnx` takes the same spec to embed these features. */
    readonly spec: ConvFeatureSpec,
    private readonly session: ort.InferenceSession,
    private readonly batchSize: number,
  ) {
    this.dim = convFeatureDim(spec);
    this.input = spec.input;
  }

  /** Builds the ONNX graph for a spec and opens an inference session on it. */
  static async create(spec: ConvFeatureSpec, options: { batchSize?: number } = {}): Promise<ConvFeatureExtractor> {
    const session = await ort.InferenceSession.create(convFeatureModel(spec));
    return new ConvFeatureExtractor(spec, session, options.batchSize ?? DEFAULT_BATCH_SIZE);
  }

  /** Features of every image, `count × dim`. */
  extract(batch: ImageBatch): Promise<Float32Array> {
    return extractInChunks(this.session, 'pixels', 'features', this.dim, this.input, batch, this.batchSize);
  }

  /** Frees the inference session. */
  release(): Promise<void> {
    return this.session.release();
  }
}

/** The bytes of an ONNX model `pixels` (N×C×H×W) → `features` (N×dim) for a spec. */
export function convFeatureModel(spec: ConvFeatureSpec): Uint8Array {
  const g = new GraphBuilder('conv_features');
  const { channels, height, width } = spec.input;
  g.input('pixels', 'float32', ['batch', channels, height, width]);
  const features = appendConvFeatures(g, 'pixels', spec);
  g.op('Identity', [features], undefined, 'features');
  g.output('features', 'float32', ['batch', convFeatureDim(spec)]);
  return encodeModel(g.build(), { docString: 'flame-sdk random convolutional features' });
}

/** Options of {@link OnnxFeatureExtractor.fromFile}. */
export interface OnnxExtractorOptions {
  /** Input to feed; the model's first input by default. */
  inputName?: string;
  /** Output to read; the model's first output by default. */
  outputName?: string;
  /** Per-channel normalisation applied before the model ((x − mean) / std); none by default. */
  mean?: readonly number[];
  /** The `std` of that normalisation, per channel; none by default. */
  std?: readonly number[];
  /** Images per inference call (bounds memory); default 256. */
  batchSize?: number;
}

/** A user-supplied ONNX model taking N×C×H×W float pixels and returning N×dim features. */
export class OnnxFeatureExtractor implements FeatureExtractor {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
    readonly input: ImageShape,
    readonly dim: number,
    private readonly options: OnnxExtractorOptions,
  ) {}

  /** Opens the model at `path` and finds its input shape and feature length. */
  static async fromFile(path: string, options: OnnxExtractorOptions = {}): Promise<OnnxFeatureExtractor> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new NotFoundError(`feature extractor model ${path} cannot be read`, { cause: e });
    }
    return OnnxFeatureExtractor.fromBytes(bytes, options, path);
  }

  /** Same as {@link fromFile} for model bytes already in memory. */
  static async fromBytes(bytes: Uint8Array, options: OnnxExtractorOptions = {}, label = 'model'): Promise<OnnxFeatureExtractor> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes);
    } catch (e) {
      throw new BadRequestError(`feature extractor ${label} is not a valid ONNX model: ${(e as Error).message}`, { cause: e });
    }
    const inputName = options.inputName ?? session.inputNames[0];
    const outputName = options.outputName ?? session.outputNames[0];
    if (!session.inputNames.includes(inputName)) throw new BadRequestError(`feature extractor ${label} has no input '${inputName}'`);
    if (!session.outputNames.includes(outputName)) throw new BadRequestError(`feature extractor ${label} has no output '${outputName}'`);
    const meta = session.inputMetadata.find((m) => m.name === inputName);
    const shape = meta && meta.isTensor ? meta.shape : [];
    const [, c, h, w] = shape;
    if (shape.length !== 4 || typeof c !== 'number' || typeof h !== 'number' || typeof w !== 'number') {
      throw new BadRequestError(`feature extractor ${label}: input '${inputName}' must be N×C×H×W with fixed C, H, W, got [${shape.join(', ')}]`);
    }
    const input = { channels: c, height: h, width: w };
    for (const key of ['mean', 'std'] as const) {
      const v = options[key];
      if (v && v.length !== c) throw new BadRequestError(`feature extractor ${label}: ${key} needs ${c} values, got ${v.length}`);
    }
    // The output length is found by running one blank image: metadata often leaves it symbolic.
    const probe = await session.run({ [inputName]: new ort.Tensor('float32', new Float32Array(c * h * w), [1, c, h, w]) });
    const dim = probe[outputName].data.length;
    return new OnnxFeatureExtractor(session, inputName, outputName, input, dim, options);
  }

  /** Features of every image, `count × dim`. */
  extract(batch: ImageBatch): Promise<Float32Array> {
    const { mean, std } = this.options;
    const plane = this.input.height * this.input.width;
    const channels = this.input.channels;
    const prepare = (data: Float32Array): Float32Array => {
      if (!mean && !std) return data;
      const out = new Float32Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const c = Math.floor(i / plane) % channels;
        out[i] = (data[i] - (mean?.[c] ?? 0)) / (std?.[c] ?? 1);
      }
      return out;
    };
    return extractInChunks(this.session, this.inputName, this.outputName, this.dim, this.input, batch, this.options.batchSize ?? DEFAULT_BATCH_SIZE, prepare);
  }

  /** Frees the inference session. */
  release(): Promise<void> {
    return this.session.release();
  }
}
