/**
 * What the aggregator sends the nodes each round (the global): the setup the load round settled and
 * what later phases add. `phase` (and, while training, `step`) say what the nodes run next
 * (src/star/phased.ts).
 */
import type { Tensor } from 'flame-sdk';
import type { ConfidentJoint } from 'flame-sdk/ml';
import type { ImageShape } from 'flame-sdk/ml';
import type { CheckCutoffs } from './checks.js';
import type { QualityCutoffs } from './distribution.js';
import type { OutlierModel } from './phases/outliers.js';
import type { DiagnosisResult } from './output.js';
import type { DiagnosisTaskName } from './request.js';
import type { NodeDuplicateMark } from './views.js';

/** What the load round settles for every later one. */
export interface DiagnosisSetup {
  /** The tasks the run performs. */
  tasks: DiagnosisTaskName[];
  /** The global classes (the union of the nodes', in order): label indices follow it. */
  classes: string[];
  /** Pooled per-channel mean of every image of every node, 0–1 scale. */
  mean: number[];
  /** Pooled per-channel population standard deviation, 0–1 scale. */
  std_dev: number[];
  /** Shape every image is fitted to for the feature extractor. */
  shape: ImageShape;
  /** Cut-offs of the quality tasks, from the merged histograms. */
  cutoffs: QualityCutoffs;
  /** Per node, uuid → duplicate mark (a node receives only its own, views.ts). */
  duplicates: Record<string, Record<string, NodeDuplicateMark>>;
  /** Images over every node. */
  count: number;
  /** Random filters of the built-in extractor (model.ts's featureFilterCount of the load round's images). */
  filters: number;
  /** Cut-offs of the grayscale and low_information checks, only when one of them runs (checks.ts). */
  checks?: CheckCutoffs;
}

/**
 * The aggregate after each round; `phase` is what the nodes do next.
 *
 * @property standardizer.__type.mean Pooled mean per feature.
 * @property standardizer.__type.invStd 1 / pooled standard deviation per feature.
 */
export interface DiagnosisAggregate {
  /** The phase the nodes run next (`features`, `iterate`, `cl-thresholds`, …). */
  phase: string;
  /** Within `iterate`: the step, from 0; training and the PCA's power iterations advance together. */
  step?: number;
  /** What the load round settled. */
  setup: DiagnosisSetup;
  /** The pooled feature standardisation (after the features round). */
  standardizer?: { mean: Tensor; invStd: Tensor };
  /** Between the two training steps: each fold's ridge head before its temperature (`w`, `b`). */
  rawHeads?: Array<{ w: Tensor; b: Tensor }>;
  /** The softmax temperature chosen for the fold heads (after training). */
  temperature?: number;
  /** Final weights of every fold (cl-thresholds on), each `{w, b}`. */
  foldWeights?: Array<{ w: Tensor; b: Tensor }>;
  /** Training images of every fold, summed over the nodes (weights of the exported model's average). */
  foldCounts?: number[];
  /** The PCA's current basis while its power iterations run; null when none runs or after the last. */
  basis?: Tensor | null;
  /** The 2-D projection's `mean` and `axes` once found; null until then, or when none is computed. */
  pca?: { mean: Tensor; axes: Tensor } | null;
  /** Thresholds (null = no sample of the class: +∞). */
  thresholds?: Array<number | null>;
  /** The merged confident joint (after cl-joint). */
  joint?: ConfidentJoint;
  /** Prune cutoffs (null = −∞). */
  cutoffs?: Record<string, number | null>;
  /**
   * The outliers task's first pass, over every image: its model (after step 0) and the log10 score
   * above which an image is left out of the second pass' sums (after step 1; null before).
   */
  outlierTrim?: { model: OutlierModel; cutoff: number | null };
  /** The outliers task: the pooled class means and variances of the images the first pass kept (after its third step). */
  outlierModel?: OutlierModel;
  /** The outliers task: the log10 score above which an image is flagged (after its fourth step). */
  outlierCutoff?: number;
  /** The response, after the decide round. */
  result?: DiagnosisResult;
  [key: string]: unknown;
}
