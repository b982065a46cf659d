/**
 * What every phase of the diagnosis shares: the run's resolved settings and progress reporting
 * (one per analysis), and what a node keeps in memory between rounds (one per node).
 */
import type { Tensor } from 'flame-sdk';
import { BadRequestError, yieldToEventLoop } from 'flame-sdk';
import { DEFAULT_LABEL_ISSUE_OPTIONS, type FilterBy, type RankBy } from 'flame-sdk/ml';
import { DEFAULT_CROSS_VALIDATION, headLogits, softmaxRows, type SoftmaxWeights } from 'flame-sdk/ml';
import { DEFAULT_PCA } from 'flame-sdk/ml';
import type { FlameSDK } from 'flame-sdk';
import type { DisclosureControl } from 'flame-sdk';
import type { Phase } from 'flame-sdk';
import type { DiagnosisAggregate } from '../global.js';
import type { LocalData } from '../load.js';
import type { DiagnosisOptions } from '../options.js';
import type { DiagnosisResult } from '../output.js';
import { DIAGNOSIS_TASKS, type DiagnosisTaskName } from '../request.js';

/** Steps the training takes in the iterate phase: the fold sums, then the temperature (phases/iterate.ts). */
export const TRAIN_STEPS = 2;

/** Which tasks need features, training, confident learning. */
export function needs(tasks: readonly DiagnosisTaskName[], o: DiagnosisOptions): { features: boolean; train: boolean; cl: boolean } {
  const cl = tasks.includes('mislabeled_images');
  const features = cl || o.projections !== false || tasks.includes('outliers');
  return { features, train: cl && !o.classifier, cl };
}

/** The diagnosis' settings as every phase reads them, and its progress reporting. */
export interface DiagnosisContext {
  options: DiagnosisOptions;
  tasks: DiagnosisTaskName[];
  need: { features: boolean; train: boolean; cl: boolean };
  folds: number;
  /** Iterate steps that train (2: sums, temperature; 0 without training) and that run the PCA power iterations. */
  trainSteps: number;
  pcaSteps: number;
  filterBy: FilterBy;
  rankBy: RankBy;
  /** Aggregator: each node's own part of the response, sent to it at the end (views.ts). */
  ownParts: Map<string, DiagnosisResult>;
  /** Reports progress (never decreasing) to `onProgress`, and on the aggregator to the hub. */
  report(sdk: FlameSDK, phase: string, progress: number, task?: DiagnosisTaskName): void;
  /** The progress reported so far (node-local loading repeats it). */
  progress(): number;
}

/** Resolves `options` for one run. */
export function diagnosisContext(options: DiagnosisOptions, tasks: DiagnosisTaskName[] = [...(options.tasks ?? DIAGNOSIS_TASKS)]): DiagnosisContext {
  const need = needs(tasks, options);
  const folds = options.folds ?? DEFAULT_CROSS_VALIDATION.folds;
  if (options.augment !== undefined && options.augment !== 'hflip' && options.augment !== 'none') {
    throw new BadRequestError(`diagnosis option augment: expected 'hflip' or 'none', got ${JSON.stringify(options.augment)}`);
  }
  let lastProgress = 0;
  return {
    options,
    tasks,
    need,
    folds,
    trainSteps: need.train ? TRAIN_STEPS : 0,
    pcaSteps: need.features && options.projections !== false ? DEFAULT_PCA.iterations + 1 : 0,
    filterBy: options.filterBy ?? DEFAULT_LABEL_ISSUE_OPTIONS.filterBy,
    rankBy: options.rankBy ?? DEFAULT_LABEL_ISSUE_OPTIONS.rankBy,
    ownParts: new Map(),
    report(sdk, phase, progress, task) {
      lastProgress = Math.max(lastProgress, Math.min(1, progress));
      if (sdk.role === 'aggregator') sdk.setProgress(Math.min(0.99, lastProgress));
      options.onProgress?.({ phase, progress: lastProgress, node: sdk.nodeId, ...(task ? { task } : {}) });
    },
    progress: () => lastProgress,
  };
}

/** A node's labels (class indices), feature rows (standardised from the iterate phase on) and content digests. */
export interface NodeFeatures {
  labels: Int32Array;
  values: Float32Array;
  dim: number;
  /** A 32-bit hash of each image's thumbnail: its cross-validation fold follows from it (ridge.ts's contentFolds). */
  digests: Uint32Array;
  /** The features of each image's left–right mirror (with `augment: 'hflip'`), until the iterate phase averages them in. */
  mirrored?: Float32Array;
}

/** What a node keeps in memory between rounds. */
export interface NodeState {
  nodeId: string;
  /** The node's place among the participants: mixed into its fold and shuffle seeds. */
  nodeIndex: number;
  data: LocalData;
  /** The node's disclosure policy and tally of what it suppressed. */
  control: DisclosureControl;
  /** From the features phase on. */
  features?: NodeFeatures;
  /** Fold of each image, from the iterate phase on. */
  folds?: Int32Array;
  /** The rows the fold sums are taken over (images, then their mirrors): 8-bit codes, labels, folds; until the sums are sent. */
  trainRows?: { codes: Uint8Array; labels: Int32Array; folds: Int32Array };
  /** Out-of-sample (or the user classifier's) probabilities, once known. */
  probs?: Float32Array;
  /** The outliers task's score of every image, once scored (phases/outliers.ts). */
  outlierScores?: Float64Array;
  /** The outliers task's first-pass scores, which pick the images its second pass counts. */
  outlierTrimScores?: Float64Array;
  /** The outliers task's pixel block of every image (phases/outliers.ts). */
  outlierPixels?: Float32Array;
}

/** `value`, which an earlier phase of the run settled; an error naming it when it is missing. */
export function settled<T>(value: T | null | undefined, what: string): T {
  if (value === undefined || value === null) throw new BadRequestError(`diagnosis: no ${what} yet (a phase ran out of order)`);
  return value;
}

export function f32(t: Tensor): Float32Array {
  return t.data as Float32Array;
}

export function f64(t: Tensor): Float64Array {
  return t.data as Float64Array;
}

/** The node's probabilities: the user classifier's, or each image's out-of-fold prediction, once {@link settleProbabilities} has run. */
export function probabilitiesOf(s: NodeState): Float32Array {
  return settled(s.probs, 'probabilities');
}

/**
 * Computes the node's out-of-fold probabilities (kept in its state) unless it has them, in row
 * chunks with the event loop turning between them. Every phase that reads them calls it first, so
 * a node that resumed in a later phase computes them there.
 */
export async function settleProbabilities(s: NodeState, g: DiagnosisAggregate): Promise<void> {
  if (s.probs) return;
  const { values } = settled(s.features, 'features');
  const heads = foldHeadsOf(s, g);
  s.probs = softmaxRows(await logitsInChunks(values, heads, settled(s.folds, 'folds')), heads[0].classes);
}

function foldHeadsOf(s: NodeState, g: DiagnosisAggregate): SoftmaxWeights[] {
  const { dim } = settled(s.features, 'features');
  const classes = g.setup.classes.length;
  return settled(g.foldWeights, 'fold heads').map((fw) => ({ dim, classes, w: f32(fw.w), b: f32(fw.b) }));
}

/** Rows predicted between two turns of the event loop. */
const PREDICT_CHUNK_ROWS = 1024;

/**
 * `headLogits` (each row under its fold's head) over chunks of rows, yielding to the event loop
 * between them: a node's heartbeats wait for nothing longer than a chunk (at 60k images a whole
 * node's rows at once held them for seconds).
 */
export async function logitsInChunks(values: Float32Array, heads: readonly SoftmaxWeights[], folds: Int32Array): Promise<Float64Array> {
  if (heads.length === 0) throw new BadRequestError('diagnosis: no fold heads to predict with');
  const { dim, classes } = heads[0];
  const n = values.length / dim;
  const out = new Float64Array(n * classes);
  for (let a = 0; a < n; a += PREDICT_CHUNK_ROWS) {
    const b = Math.min(n, a + PREDICT_CHUNK_ROWS);
    out.set(headLogits(values.subarray(a * dim, b * dim), heads, folds.subarray(a, b)), a * classes);
    await yieldToEventLoop();
  }
  return out;
}

/**
 * A confident-learning phase (src/ml/confident-learning.ts's steps): it runs with the
 * mislabeled_images task (and when `runs` holds), and reports its progress once merged.
 */
export function confidentLearningPhase<P extends { [key: string]: unknown }>(
  ctx: DiagnosisContext,
  spec: { name: string; progress: number; runs?: boolean; local(s: NodeState, g: DiagnosisAggregate): P; merge(partials: P[], previous: DiagnosisAggregate): DiagnosisAggregate },
): Phase<NodeState, DiagnosisAggregate, P> {
  return {
    name: spec.name,
    steps: () => (ctx.need.cl && spec.runs !== false ? 1 : 0),
    local: async ({ state, global }) => {
      await settleProbabilities(state, global);
      return spec.local(state, global);
    },
    merge(partials, { sdk, previous }) {
      const next = spec.merge(
        partials.map((p) => p.value),
        previous,
      );
      ctx.report(sdk, 'confident-learning', spec.progress, 'mislabeled_images');
      return next;
    },
  };
}
