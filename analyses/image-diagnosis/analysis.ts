/**
 * The federated diagnosis as one StarAnalysis whose rounds are phases named in the aggregate:
 *
 *   load          nodes decode their images; send channel sums, signal histograms, shapes, (hashes)
 *   features      nodes extract features (random conv or a user ONNX extractor) and, with a user
 *                 classifier, its probabilities; send feature sums for pooled standardisation
 *   iterate       K-fold × R rounds of federated averaging of a softmax head, one fold after the
 *                 other; the first rounds also carry the federated PCA power iterations
 *   cl-thresholds / cl-joint / cl-cutoffs   confident learning on out-of-sample probabilities:
 *                 per-class threshold sums, confident-joint counts, prune-score candidates
 *   decide        nodes judge their own images against the global statistics and send their files
 *   done          the aggregator's merged seed-000 response (and, with `modelResult`, the trained
 *                 classifier stored on the hub as the final result `classifier.onnx`: model.ts)
 *
 * Each node keeps its state (images, features, folds, probabilities) in memory between rounds,
 * keyed by node id (the simulator runs every node in one process). The aggregator holds no image.
 */
import type { AnalyzeContext, NodeResult, StarAnalysis } from '../../src/star/analysis.js';
import { Readable } from 'node:stream';
import type { FlameSDK } from '../../src/sdk.js';
import { Tensor } from '../../src/codec/index.js';
import { BadRequestError } from '../../src/errors.js';
import { meanStd, mergeSums, toChannelSums, type ChannelSums } from '../../src/images/index.js';
import {
  DEFAULT_LABEL_ISSUE_OPTIONS,
  findLabelIssues,
  localConfidentJoint,
  localPruneCandidates,
  localThresholdSums,
  mergeConfidentJoints,
  mergeThresholdSums,
  pruneCutoffsFrom,
  thresholdsFrom,
  type ConfidentJoint,
  type FilterBy,
  type PruneCandidates,
  type RankBy,
  type ThresholdSums,
} from '../../src/ml/confident-learning.js';
import { assignFolds, DEFAULT_FEDERATED_TRAINING } from '../../src/ml/cross-validation.js';
import { ConvFeatureExtractor, OnnxFeatureExtractor, type FeatureExtractor } from '../../src/ml/features.js';
import type { ImageShape } from '../../src/ml/pixels.js';
import { initialBasis, localCovarianceProduct, mergeProducts, orthonormalize, pcaFrom, projectFeatures, type Pca } from '../../src/ml/projection.js';
import {
  averageWeights,
  DEFAULT_LOCAL_TRAINING,
  localFeatureSums,
  localUpdate,
  mergeFeatureSums,
  predictProbabilities,
  standardize,
  standardizerFrom,
  zeroWeights,
  type FeatureSums,
  type SoftmaxWeights,
} from '../../src/ml/softmax.js';
import {
  blurVerdict,
  countImage,
  cutoffsFrom,
  emptyHistograms,
  lightingVerdict,
  mergeHistograms,
  signalValues,
  sizeVerdict,
  type QualityCutoffs,
  type QualityVerdict,
  type SignalHistograms,
} from './distribution.js';
import { DEFAULT_DUPLICATE_DISTANCE, findDuplicates, type DuplicateMark, type HashedImage } from './duplicates.js';
import { loadLocalData, type LocalData, type NodeDataSpec } from './load.js';
import { diagnosisConvSpec, MODEL_RESULT_NAME, trainedModel } from './model.js';
import { DIAGNOSIS_TASKS, type DiagnosisTaskName } from './request.js';
import { assembleResponse, type DiagnosisResult, type NodeFile, type NodeTaskVerdicts } from './output.js';

/** Progress of a diagnosis as the aggregator (or a node, while loading) sees it. */
export interface DiagnosisProgress {
  /** Phase running: load, features, train, pca, confident-learning, decide, done. */
  phase: string;
  /** Overall completeness, 0–1 (never decreases). */
  progress: number;
  /** The node reporting (node-local phases), or the aggregator. */
  node: string;
  /** Task the phase serves, where there is one. */
  task?: DiagnosisTaskName;
}

/** Settings of a diagnosis run (every node must get the same ones, `data` aside). */
export interface DiagnosisOptions {
  /** Tasks to run (default every task). */
  tasks?: readonly DiagnosisTaskName[];
  /** Echoed as the response's `dataset_uuid`. */
  datasetUuid?: string;
  /** The class list of the request: its order is the output's; a node label outside it is an error. Default: the sorted union of the nodes' classes. */
  classes?: readonly string[];
  /** Where each node's images are, by node id (`*` for any node); default the node's first data source. */
  data?: Record<string, NodeDataSpec>;
  /**
   * A user ONNX classifier (N×C×H×W pixels on a 0–1 scale → N×classes probabilities or logits, in
   * the order of the classes): its probabilities replace the federated cross-validated ones.
   */
  classifier?: string;
  /** A user ONNX feature extractor (N×C×H×W → N×D) instead of the built-in random convolutions. */
  featureExtractor?: string;
  /** Cross-validation folds (default 5) and federated-averaging rounds per fold (default 20). */
  folds?: number;
  rounds?: number;
  /** Confident learning's filter and ranking (default `both` / `self_confidence`). */
  filterBy?: FilterBy;
  rankBy?: RankBy;
  /** Largest dHash distance of near duplicates (default 0: identical dHash). */
  duplicateDistance?: number;
  /** Compute the 2-D projection of every image (default true). */
  projections?: boolean;
  /** Images decoded at once per node (default 4). */
  concurrency?: number;
  /** Called with progress (runs in-process only: on the aggregator and, while loading, on nodes). */
  onProgress?: (p: DiagnosisProgress) => void;
  /** Called on the aggregator with each task's merged result as soon as it is ready. */
  onTaskResult?: (task: DiagnosisResult['tasks'][number]) => void;
  /**
   * Store the trained `mislabeled_images` classifier on the hub (model.ts): the aggregator submits
   * it as a second final result named `classifier.onnx` (raw ONNX bytes, before the response) and
   * the response carries its id as `model_result_id` and its output order as `model_labels`.
   * Needs the `mislabeled_images` task with the built-in federated training (no `classifier`,
   * no `featureExtractor`: a user extractor's graph cannot be merged into the model).
   */
  modelResult?: boolean;
}

type Phase = 'features' | 'iterate' | 'cl-thresholds' | 'cl-joint' | 'cl-cutoffs' | 'decide' | 'done';

/** What the load round settles for every later one. */
interface Setup {
  tasks: DiagnosisTaskName[];
  classes: string[];
  mean: number[];
  std_dev: number[];
  /** Shape every image is fitted to for the feature extractor. */
  shape: ImageShape;
  cutoffs: QualityCutoffs;
  /** Per node, uuid → duplicate mark. */
  duplicates: Record<string, Record<string, DuplicateMark>>;
  count: number;
}

/** The aggregate after each round; `phase` is what the nodes do next. */
export interface DiagnosisAggregate {
  phase: Phase;
  setup: Setup;
  standardizer?: { mean: Tensor; invStd: Tensor };
  /** Iterate rounds: fold and round within the fold; global weights of that round. */
  step?: number;
  weights?: { w: Tensor; b: Tensor } | null;
  /** Final weights of every fold (cl-thresholds on). */
  foldWeights?: Array<{ w: Tensor; b: Tensor }>;
  /** Training images of every fold, summed over the nodes (weights of the exported model's average). */
  foldCounts?: number[];
  basis?: Tensor | null;
  pca?: { mean: Tensor; axes: Tensor } | null;
  /** Thresholds (null = no sample of the class: +∞). */
  thresholds?: Array<number | null>;
  joint?: ConfidentJoint;
  /** Prune cutoffs (null = −∞). */
  cutoffs?: Record<string, number | null>;
  result?: DiagnosisResult;
  [key: string]: unknown;
}

/** A node's reply in any round; which fields are set depends on the phase. */
export interface DiagnosisLocal {
  load?: {
    classes: string[];
    count: number;
    sums: ChannelSums;
    histograms: SignalHistograms;
    /** `h×w` of thumbnails → count, and whether any image has colour. */
    shapes: Record<string, number>;
    colour: boolean;
    hashes?: { uuid: string[]; dhash: string[]; digest: string[] };
  };
  featureSums?: { count: number; sum: Tensor; sumSquares: Tensor };
  update?: { w: Tensor; b: Tensor; count: number };
  product?: Tensor;
  thresholdSums?: ThresholdSums;
  joint?: ConfidentJoint;
  candidates?: PruneCandidates;
  verdicts?: NodeTaskVerdicts;
  [key: string]: unknown;
}

/** Node-local memory between rounds. */
interface NodeState {
  data: LocalData;
  labels?: Int32Array;
  features?: Float32Array;
  dim?: number;
  folds?: Int32Array;
  /** Cached training rows of the current fold. */
  train?: { fold: number; features: Float32Array; labels: Int32Array };
  probs?: Float32Array;
}

const PCA_ITERATIONS = 4;
const PCA_OVERSAMPLE = 4;
const FOLD_SEED = 42;
const FEATURE_CHUNK = 2048;

function f32(t: Tensor): Float32Array {
  return t.data as Float32Array;
}

function f64(t: Tensor): Float64Array {
  return t.data as Float64Array;
}

/** Which tasks need features, training, confident learning. */
function needs(tasks: readonly DiagnosisTaskName[], o: DiagnosisOptions): { features: boolean; train: boolean; cl: boolean } {
  const cl = tasks.includes('mislabeled_images');
  const features = cl || o.projections !== false;
  return { features, train: cl && !o.classifier, cl };
}

/** The same softmax per row as a probability vector (logits → probabilities; probabilities unchanged). */
function toProbabilities(rows: Float32Array, classes: number): Float32Array {
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

/** Runs `extractor` over a node's thumbnails (grouped by shape, in chunks), row per image. */
async function runOverThumbnails(extractor: FeatureExtractor, data: LocalData): Promise<Float32Array> {
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
      part.forEach((i, r) => {
        const t = data.images[i].signals.thumbnail;
        for (let k = 0; k < size; k++) batch[r * size + k] = t[k] / 255;
      });
      const rows = await extractor.extract({ count: part.length, channels: first.thumbChannels, height: first.thumbHeight, width: first.thumbWidth, data: batch });
      part.forEach((i, r) => out.set(rows.subarray(r * dim, (r + 1) * dim), i * dim));
    }
  }
  return out;
}

function encodeInfinity(values: readonly number[]): Array<number | null> {
  return values.map((v) => (Number.isFinite(v) ? v : null));
}

/** Builds the diagnosis analysis. The returned object keeps per-node state: use it for one run. */
export function createDiagnosis(options: DiagnosisOptions = {}): StarAnalysis<DiagnosisLocal, DiagnosisAggregate> {
  const tasks = [...(options.tasks ?? DIAGNOSIS_TASKS)];
  for (const t of tasks) if (!(DIAGNOSIS_TASKS as readonly string[]).includes(t)) throw new BadRequestError(`tasks: unknown task "${t}" (known: ${DIAGNOSIS_TASKS.join(', ')})`);
  const need = needs(tasks, options);
  if (options.modelResult) {
    if (!need.cl) throw new BadRequestError('model export (modelResult, --export-model): a classifier is only trained for the mislabeled_images task, which is not requested');
    if (options.classifier) throw new BadRequestError('model export (modelResult, --export-model): with a user classifier nothing is trained (the classifier is already yours)');
    if (options.featureExtractor) throw new BadRequestError('model export (modelResult, --export-model): the model cannot be exported with a user feature extractor (its graph cannot be merged); use the built-in features');
  }
  const folds = options.folds ?? DEFAULT_FEDERATED_TRAINING.folds;
  const rounds = options.rounds ?? DEFAULT_FEDERATED_TRAINING.rounds;
  const trainSteps = need.train ? folds * rounds : 0;
  const pcaSteps = need.features && options.projections !== false ? PCA_ITERATIONS + 1 : 0;
  const filterBy = options.filterBy ?? DEFAULT_LABEL_ISSUE_OPTIONS.filterBy;
  const rankBy = options.rankBy ?? DEFAULT_LABEL_ISSUE_OPTIONS.rankBy;
  const states = new Map<string, NodeState>();
  let lastProgress = 0;

  const report = (sdk: FlameSDK, phase: string, progress: number, task?: DiagnosisTaskName): void => {
    lastProgress = Math.max(lastProgress, Math.min(1, progress));
    if (sdk.role === 'aggregator') sdk.setProgress(Math.min(0.99, lastProgress));
    options.onProgress?.({ phase, progress: lastProgress, node: sdk.nodeId, ...(task ? { task } : {}) });
  };

  const state = (sdk: FlameSDK): NodeState => {
    const s = states.get(sdk.nodeId);
    if (!s) throw new BadRequestError(`node "${sdk.nodeId}" has no loaded images (did it miss the load round?)`);
    return s;
  };

  // ------------------------------------------------------------------ node side

  async function load(sdk: FlameSDK): Promise<DiagnosisLocal> {
    const spec = options.data?.[sdk.nodeId] ?? options.data?.['*'];
    const data = await loadLocalData(sdk, spec, {
      concurrency: options.concurrency,
      onProgress: (done, total) => {
        if (done % 256 === 0 || done === total) options.onProgress?.({ phase: 'load', progress: lastProgress, node: sdk.nodeId });
      },
    });
    states.set(sdk.nodeId, { data });
    const histograms = emptyHistograms();
    const shapes: Record<string, number> = {};
    let colour = false;
    for (const im of data.images) {
      countImage(histograms, signalValues(im.signals, im.meta));
      const key = `${im.signals.thumbHeight}x${im.signals.thumbWidth}`;
      shapes[key] = (shapes[key] ?? 0) + 1;
      if (im.signals.thumbChannels === 3) colour = true;
    }
    return {
      load: {
        classes: [...new Set([...data.classes, ...data.images.map((i) => i.label)])].sort(),
        count: data.images.length,
        sums: mergeSums(data.images.map((i) => toChannelSums(i.stats))),
        histograms,
        shapes,
        colour,
        ...(tasks.includes('duplicates')
          ? { hashes: { uuid: data.images.map((i) => i.uuid), dhash: data.images.map((i) => i.signals.dhash), digest: data.images.map((i) => i.signals.digest) } }
          : {}),
      },
    };
  }

  async function features(sdk: FlameSDK, g: DiagnosisAggregate): Promise<DiagnosisLocal> {
    const s = state(sdk);
    const classes = g.setup.classes;
    s.labels = Int32Array.from(s.data.images, (im) => classes.indexOf(im.label));
    const extractor: FeatureExtractor = options.featureExtractor
      ? await OnnxFeatureExtractor.fromFile(options.featureExtractor)
      : await ConvFeatureExtractor.create(diagnosisConvSpec(g.setup.shape, g.setup.mean, g.setup.std_dev));
    try {
      s.features = await runOverThumbnails(extractor, s.data);
      s.dim = extractor.dim;
    } finally {
      await extractor.release();
    }
    if (options.classifier && need.cl) {
      const model = await OnnxFeatureExtractor.fromFile(options.classifier);
      try {
        if (model.dim !== classes.length) throw new BadRequestError(`classifier ${options.classifier}: outputs ${model.dim} values per image, the dataset has ${classes.length} classes`);
        s.probs = toProbabilities(await runOverThumbnails(model, s.data), classes.length);
      } finally {
        await model.release();
      }
    }
    const sums = localFeatureSums(s.features, s.dim);
    return { featureSums: { count: sums.count, sum: new Tensor('float64', [s.dim], sums.sum), sumSquares: new Tensor('float64', [s.dim], sums.sumSquares) } };
  }

  async function iterate(sdk: FlameSDK, g: DiagnosisAggregate): Promise<DiagnosisLocal> {
    const s = state(sdk);
    const dim = s.dim!;
    const classes = g.setup.classes.length;
    if (g.standardizer && s.features && g.step === 0) {
      s.features = standardize(s.features, { mean: f32(g.standardizer.mean), invStd: f32(g.standardizer.invStd) });
      const nodeIndex = sdk.config.participants.indexOf(sdk.nodeId);
      s.folds = assignFolds(s.labels!.length, folds, FOLD_SEED + 104729 * nodeIndex);
    }
    const step = g.step ?? 0;
    const out: DiagnosisLocal = {};
    if (step < trainSteps) {
      const fold = Math.floor(step / rounds);
      const round = step % rounds;
      if (s.train?.fold !== fold) s.train = { fold, ...selectRows(s.features!, s.labels!, dim, (i) => s.folds![i] !== fold) };
      const weights: SoftmaxWeights = g.weights ? { dim, classes, w: f32(g.weights.w), b: f32(g.weights.b) } : zeroWeights(dim, classes);
      const lr = DEFAULT_LOCAL_TRAINING.lr * 0.5 * (1 + Math.cos((Math.PI * (round + 0.5)) / rounds));
      const nodeIndex = sdk.config.participants.indexOf(sdk.nodeId);
      const u = await localUpdate(weights, s.train.features, s.train.labels, { lr, seed: DEFAULT_LOCAL_TRAINING.seed + 7919 * round + nodeIndex });
      out.update = { w: new Tensor('float32', [dim * classes], u.weights.w), b: new Tensor('float32', [classes], u.weights.b), count: u.count };
      if (step === trainSteps - 1) s.train = undefined;
    }
    if (step < pcaSteps && g.basis) {
      out.product = new Tensor('float64', [g.basis.data.length], localCovarianceProduct(s.features!, dim, new Float64Array(dim), f64(g.basis)));
    }
    return out;
  }

  function probabilities(s: NodeState, g: DiagnosisAggregate): Float32Array {
    if (s.probs) return s.probs;
    const dim = s.dim!;
    const classes = g.setup.classes.length;
    const probs = new Float32Array(s.labels!.length * classes);
    g.foldWeights!.forEach((fw, f) => {
      const held = selectRows(s.features!, s.labels!, dim, (i) => s.folds![i] === f);
      const p = predictProbabilities({ dim, classes, w: f32(fw.w), b: f32(fw.b) }, held.features);
      held.rows.forEach((i, r) => probs.set(p.subarray(r * classes, (r + 1) * classes), i * classes));
    });
    s.probs = probs;
    return probs;
  }

  function decide(sdk: FlameSDK, g: DiagnosisAggregate): DiagnosisLocal {
    const s = state(sdk);
    const { setup } = g;
    const classes = setup.classes;
    const images = s.data.images;
    let projection: Float32Array | undefined;
    if (g.pca && s.features) {
      const pca: Pca = { dim: s.dim!, mean: f64(g.pca.mean), axes: f64(g.pca.axes), components: 2, variances: [] };
      projection = projectFeatures(s.features, pca);
    }
    const probs = need.cl ? s.probs : undefined;
    const files: NodeFile[] = images.map((im, i): NodeFile => ({
      uuid: im.uuid,
      path: im.path,
      original_class: im.label,
      width: im.meta.width,
      height: im.meta.height,
      channels: im.meta.channels,
      mean: im.meta.mean,
      std_dev: im.meta.std_dev,
      projections: projection ? { '2d': [round6(projection[2 * i]), round6(projection[2 * i + 1])] } : ({} as Record<string, number[]>),
      confidence_vectors: probs ? [Array.from(probs.subarray(i * classes.length, (i + 1) * classes.length), round6)] : [],
    }));
    const verdicts: NodeTaskVerdicts = { node: sdk.nodeId, files, skipped: s.data.skipped, tasks: {} };
    const judge = (name: DiagnosisTaskName, verdict: (i: number) => (QualityVerdict & { current_class?: string; extra?: Record<string, unknown> }) | null): void => {
      const flagged: NodeTaskVerdicts['tasks'][string]['flagged'] = [];
      const outlierSums: ChannelSums[] = [];
      const inlierSums: ChannelSums[] = [];
      images.forEach((im, i) => {
        const v = verdict(i);
        if (v && v.issue) {
          flagged.push({ index: i, issue: v.issue, score: round6(v.score), ...(v.current_class ? { current_class: v.current_class } : {}), ...(v.extra ?? {}) });
          outlierSums.push(toChannelSums(im.stats));
        } else inlierSums.push(toChannelSums(im.stats));
      });
      verdicts.tasks[name] = { flagged, outlierSums: mergeSums(outlierSums), inlierSums: mergeSums(inlierSums) };
    };
    for (const name of setup.tasks) {
      if (name === 'lighting_conditions') judge(name, (i) => lightingVerdict(signalValues(images[i].signals, images[i].meta), setup.cutoffs));
      else if (name === 'blurry') judge(name, (i) => blurVerdict(signalValues(images[i].signals, images[i].meta), setup.cutoffs));
      else if (name === 'odd_size') judge(name, (i) => sizeVerdict(signalValues(images[i].signals, images[i].meta), setup.cutoffs));
      else if (name === 'duplicates') {
        const marks = setup.duplicates[sdk.nodeId] ?? {};
        judge(name, (i) => {
          const m = marks[images[i].uuid];
          return m ? { issue: m.issue, score: m.distance, extra: { duplicate_of: m.duplicate_of, duplicate_of_node: m.duplicate_of_node } } : null;
        });
      } else if (name === 'mislabeled_images') {
        const p = probabilities(s, g);
        const thresholds = g.thresholds!.map((t) => t ?? Number.POSITIVE_INFINITY);
        const cutoffs = g.cutoffs ? Object.fromEntries(Object.entries(g.cutoffs).map(([k, v]) => [k, v ?? Number.NEGATIVE_INFINITY])) : undefined;
        const issues = findLabelIssues(p, s.labels!, g.joint!, { filterBy, rankBy, thresholds, ...(cutoffs ? { cutoffs } : {}) });
        judge(name, (i) =>
          issues.isIssue[i] ? { issue: 'mislabeled', score: issues.selfConfidence[i], current_class: classes[issues.suggestedLabel[i]] } : null,
        );
      }
    }
    return { verdicts };
  }

  async function analyze({ sdk, global: g }: AnalyzeContext<DiagnosisAggregate>): Promise<DiagnosisLocal> {
    if (!g) return load(sdk);
    switch (g.phase) {
      case 'features':
        return features(sdk, g);
      case 'iterate':
        return iterate(sdk, g);
      case 'cl-thresholds':
        return { thresholdSums: localThresholdSums(probabilities(state(sdk), g), state(sdk).labels!, g.setup.classes.length) };
      case 'cl-joint':
        return { joint: localConfidentJoint(probabilities(state(sdk), g), state(sdk).labels!, g.thresholds!.map((t) => t ?? Number.POSITIVE_INFINITY)) };
      case 'cl-cutoffs':
        return { candidates: localPruneCandidates(probabilities(state(sdk), g), state(sdk).labels!, g.joint!, { filterBy, rankBy }) };
      case 'decide': {
        const out = decide(sdk, g);
        states.delete(sdk.nodeId);
        return out;
      }
      default:
        throw new BadRequestError(`diagnosis: unexpected phase "${g.phase}"`);
    }
  }

  // ------------------------------------------------------------------ aggregator side

  function afterLoad(results: NodeResult<DiagnosisLocal>[], sdk: FlameSDK): DiagnosisAggregate {
    const loads = results.map((r) => r.value.load!);
    const seen = [...new Set(loads.flatMap((l) => l.classes))].sort();
    let classes: string[];
    if (options.classes) {
      const unknown = seen.filter((c) => !options.classes!.includes(c));
      if (unknown.length) throw new BadRequestError(`classes: the nodes hold images of unknown class(es) ${unknown.map((c) => `"${c}"`).join(', ')} (request classes: ${options.classes.join(', ')})`);
      classes = [...options.classes];
    } else classes = seen;
    const count = loads.reduce((a, l) => a + l.count, 0);
    if (count === 0) throw new BadRequestError('diagnosis: no node has a readable image');
    if (need.cl && classes.length < 2) throw new BadRequestError(`mislabeled_images needs at least 2 classes, the dataset has ${classes.length}`);
    const { mean, std_dev } = meanStd(mergeSums(loads.map((l) => l.sums)));
    const shapes: Record<string, number> = {};
    for (const l of loads) for (const [k, c] of Object.entries(l.shapes)) shapes[k] = (shapes[k] ?? 0) + c;
    const [common] = Object.entries(shapes).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    const [height, width] = common.split('x').map(Number);
    const duplicates: Setup['duplicates'] = {};
    if (tasks.includes('duplicates')) {
      const hashed: HashedImage[] = results.flatMap((r) => {
        const h = r.value.load!.hashes!;
        return h.uuid.map((uuid, i) => ({ node: r.nodeId, uuid, dhash: h.dhash[i], digest: h.digest[i] }));
      });
      for (const r of results) duplicates[r.nodeId] = {};
      for (const [i, mark] of findDuplicates(hashed, options.duplicateDistance ?? DEFAULT_DUPLICATE_DISTANCE)) duplicates[hashed[i].node][hashed[i].uuid] = mark;
    }
    const setup: Setup = {
      tasks,
      classes,
      mean,
      std_dev,
      shape: { channels: loads.some((l) => l.colour) ? 3 : 1, height, width },
      cutoffs: cutoffsFrom(mergeHistograms(loads.map((l) => l.histograms))),
      duplicates,
      count,
    };
    report(sdk, 'load', 0.25);
    return { phase: need.features ? 'features' : 'decide', setup };
  }

  function afterIterate(results: NodeResult<DiagnosisLocal>[], prev: DiagnosisAggregate, sdk: FlameSDK): DiagnosisAggregate {
    const step = prev.step ?? 0;
    const { setup } = prev;
    const next: DiagnosisAggregate = { ...prev, step: step + 1 };
    if (step < trainSteps) {
      const classes = setup.classes.length;
      const avg = averageWeights(
        results.map((r) => {
          const u = r.value.update!;
          return { weights: { dim: u.w.data.length / classes, classes, w: f32(u.w), b: f32(u.b) }, count: u.count };
        }),
      );
      const weights = { w: new Tensor('float32', [avg.w.length], avg.w), b: new Tensor('float32', [avg.b.length], avg.b) };
      const round = step % rounds;
      if (round === rounds - 1) {
        next.foldWeights = [...(prev.foldWeights ?? []), weights];
        next.foldCounts = [...(prev.foldCounts ?? []), results.reduce((a, r) => a + r.value.update!.count, 0)];
        next.weights = null;
      } else next.weights = weights;
      report(sdk, 'train', 0.35 + 0.5 * ((step + 1) / Math.max(trainSteps, pcaSteps)), 'mislabeled_images');
    }
    if (step < pcaSteps && prev.basis) {
      const product = mergeProducts(results.map((r) => f64(r.value.product!)));
      const dim = product.length / (2 + PCA_OVERSAMPLE);
      if (step < pcaSteps - 1) next.basis = new Tensor('float64', [product.length], orthonormalize(product, dim));
      else {
        const pca = pcaFrom(new Float64Array(dim), f64(prev.basis), product, setup.count, 2);
        next.pca = { mean: new Tensor('float64', [dim], pca.mean), axes: new Tensor('float64', [pca.axes.length], pca.axes) };
        next.basis = null;
      }
      if (trainSteps === 0) report(sdk, 'pca', 0.35 + 0.5 * ((step + 1) / pcaSteps));
    }
    if (step + 1 >= Math.max(trainSteps, pcaSteps)) {
      next.phase = need.cl ? 'cl-thresholds' : 'decide';
      delete next.step;
      delete next.weights;
    }
    return next;
  }

  /** Builds the trained classifier (model.ts) and submits it to the hub; returns its result id. */
  async function storeModel(prev: DiagnosisAggregate, sdk: FlameSDK): Promise<string> {
    const { setup } = prev;
    const classes = setup.classes.length;
    if (!prev.standardizer || !prev.foldWeights?.length || prev.foldCounts?.length !== prev.foldWeights.length) {
      throw new BadRequestError('model export (modelResult, --export-model): the run has no trained fold heads to export');
    }
    const dim = prev.standardizer.mean.data.length;
    const model = trainedModel(
      diagnosisConvSpec(setup.shape, setup.mean, setup.std_dev),
      { mean: f32(prev.standardizer.mean), invStd: f32(prev.standardizer.invStd) },
      prev.foldWeights.map((fw, k) => ({ weights: { dim, classes, w: f32(fw.w), b: f32(fw.b) }, count: prev.foldCounts![k] })),
      setup.classes,
    );
    return sdk.results.sendResultStream(Readable.from([Buffer.from(model.bytes)]), { name: MODEL_RESULT_NAME, contentType: 'application/onnx' });
  }

  async function afterDecide(results: NodeResult<DiagnosisLocal>[], prev: DiagnosisAggregate, sdk: FlameSDK): Promise<DiagnosisAggregate> {
    const result = assembleResponse(options.datasetUuid ?? '', prev.setup.tasks, prev.setup.classes, results.map((r) => r.value.verdicts!));
    if (options.modelResult) {
      result.model_result_id = await storeModel(prev, sdk);
      result.model_labels = [...prev.setup.classes];
    }
    for (const t of result.tasks) options.onTaskResult?.(t);
    report(sdk, 'done', 1);
    return { phase: 'done', setup: prev.setup, result };
  }

  async function aggregate(results: NodeResult<DiagnosisLocal>[], { sdk, previous }: { sdk: FlameSDK; previous: DiagnosisAggregate | undefined }): Promise<DiagnosisAggregate> {
    if (!previous) return afterLoad(results, sdk);
    const base: DiagnosisAggregate = { phase: previous.phase, setup: previous.setup };
    switch (previous.phase) {
      case 'features': {
        const merged: FeatureSums = mergeFeatureSums(results.map((r) => ({ count: r.value.featureSums!.count, sum: f64(r.value.featureSums!.sum), sumSquares: f64(r.value.featureSums!.sumSquares) })));
        const st = standardizerFrom(merged);
        const dim = st.mean.length;
        report(sdk, 'features', 0.35);
        const next: DiagnosisAggregate = {
          ...base,
          phase: 'iterate',
          step: 0,
          standardizer: { mean: new Tensor('float32', [dim], st.mean), invStd: new Tensor('float32', [dim], st.invStd) },
          weights: null,
          basis: pcaSteps > 0 ? new Tensor('float64', [dim * (2 + PCA_OVERSAMPLE)], initialBasis(dim, 2 + PCA_OVERSAMPLE, 99)) : null,
          pca: null,
        };
        if (trainSteps === 0 && pcaSteps === 0) return { ...base, phase: need.cl ? 'cl-thresholds' : 'decide' };
        return next;
      }
      case 'iterate':
        return afterIterate(results, previous, sdk);
      case 'cl-thresholds': {
        const thresholds = thresholdsFrom(mergeThresholdSums(results.map((r) => r.value.thresholdSums!)));
        report(sdk, 'confident-learning', 0.87, 'mislabeled_images');
        return { ...previous, phase: 'cl-joint', thresholds: encodeInfinity(thresholds) };
      }
      case 'cl-joint': {
        const joint = mergeConfidentJoints(results.map((r) => r.value.joint!));
        const ranking = filterBy === 'prune_by_noise_rate' || filterBy === 'prune_by_class' || filterBy === 'both';
        report(sdk, 'confident-learning', 0.89, 'mislabeled_images');
        return { ...previous, phase: ranking ? 'cl-cutoffs' : 'decide', joint };
      }
      case 'cl-cutoffs': {
        const cutoffs = pruneCutoffsFrom(results.map((r) => r.value.candidates!), previous.joint!, { filterBy, rankBy });
        report(sdk, 'confident-learning', 0.9, 'mislabeled_images');
        return { ...previous, phase: 'decide', cutoffs: Object.fromEntries(Object.entries(cutoffs).map(([k, v]) => [k, Number.isFinite(v) ? v : null])) };
      }
      case 'decide':
        return afterDecide(results, previous, sdk);
      default:
        throw new BadRequestError(`diagnosis: unexpected phase "${previous.phase}"`);
    }
  }

  return {
    analyze,
    aggregate,
    converged: (current) => current.phase === 'done',
    maxRounds: diagnosisRounds(options),
  };
}

/** Upper bound on the rounds a diagnosis with these options takes (for the runner's maxRounds). */
export function diagnosisRounds(options: DiagnosisOptions = {}): number {
  const tasks = options.tasks ?? DIAGNOSIS_TASKS;
  const need = needs(tasks, options);
  const train = need.train ? (options.folds ?? DEFAULT_FEDERATED_TRAINING.folds) * (options.rounds ?? DEFAULT_FEDERATED_TRAINING.rounds) : 0;
  const pca = need.features && options.projections !== false ? PCA_ITERATIONS + 1 : 0;
  return 1 + 1 + Math.max(train, pca) + 3 + 1 + 1;
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/** Rows of a node's features whose mask holds, with their indices. */
function selectRows(features: Float32Array, labels: Int32Array, dim: number, keep: (i: number) => boolean): { features: Float32Array; labels: Int32Array; rows: number[] } {
  const rows: number[] = [];
  for (let i = 0; i < labels.length; i++) if (keep(i)) rows.push(i);
  const out = new Float32Array(rows.length * dim);
  rows.forEach((i, r) => out.set(features.subarray(i * dim, (i + 1) * dim), r * dim));
  return { features: out, labels: Int32Array.from(rows, (i) => labels[i]), rows };
}

