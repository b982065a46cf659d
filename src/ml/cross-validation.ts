/**
 * Out-of-sample predicted probabilities for every local sample, as confident learning needs:
 * K-fold cross-validation whose fold heads are solved in closed form from summed statistics
 * (ridge.ts). Folds follow from each sample's content digest, so no sample ever leaves its node
 * and the split over nodes does not change any fold; the aggregator sees only feature sums,
 * per-fold sums of quantised features and log-losses.
 *
 * The image diagnosis' iterate phase runs ridge.ts's steps over the broker;
 * {@link crossValidatedProbabilities} runs them in one process over simulated nodes (tests,
 * bench/ml-experiments.ts), so what the bench measures is what runs.
 */
import { BadRequestError } from '../errors.js';
import { contentFolds, dequantizeFeatures, quantizeFeatures, ridgeCrossValidation } from './ridge.js';
import { type SoftmaxWeights, type Standardizer, headLogits, localFeatureSums, mergeFeatureSums, softmaxRows, standardize, standardizerFrom } from './softmax.js';

/** One node's labelled features (row-major `labels.length × dim`). */
export interface NodeData {
  /** Feature rows, `labels.length × dim`. */
  features: Float32Array;
  /** Class index of each row. */
  labels: Int32Array;
}

/**
 * Defaults measured on Fashion-MNIST (analyses/image-diagnosis/EXPERIMENTS.md).
 *
 * @property __type.folds 5 cross-validation folds.
 */
export const DEFAULT_CROSS_VALIDATION = { folds: 5 } as const;

/** Out-of-sample probabilities of a node's rows (`rows × classes`): each row predicted by the head of its own fold. */
export function outOfFoldProbabilities(features: Float32Array, folds: Int32Array, foldWeights: readonly SoftmaxWeights[]): Float32Array {
  if (foldWeights.length === 0) throw new BadRequestError('cross-validation: no fold heads');
  return softmaxRows(headLogits(features, foldWeights, folds), foldWeights[0].classes);
}

/** Settings of {@link crossValidatedProbabilities}. */
export interface CrossValidationOptions {
  /** Number of classes. */
  classes: number;
  /** Number of folds (≥ 2); default {@link DEFAULT_CROSS_VALIDATION}. */
  folds?: number;
  /** Ridge penalty per training row (ridge.ts's DEFAULT_RIDGE). */
  penaltyPerRow?: number;
}

/** What {@link crossValidatedProbabilities} returns. */
export interface CrossValidationResult {
  /** Per node, out-of-sample probabilities `count × classes` in the node's sample order. */
  probabilities: Float32Array[];
  /** Per node, the fold of each sample. */
  folds: Int32Array[];
  /** The pooled feature standardisation every fold used. */
  standardizer: Standardizer;
  /** The calibrated fold heads. */
  heads: SoftmaxWeights[];
}

/**
 * K-fold cross-validation over simulated nodes: pooled standardisation from merged sums, each
 * row's fold from its digest, closed-form fold heads from merged sums (ridge.ts), and each row
 * predicted by the head that did not see it.
 */
export async function crossValidatedProbabilities(
  nodes: ReadonlyArray<NodeData & { digests: ArrayLike<number> }>,
  options: CrossValidationOptions,
): Promise<CrossValidationResult> {
  const { classes } = options;
  const K = options.folds ?? DEFAULT_CROSS_VALIDATION.folds;
  const withData = nodes.find((n) => n.labels.length > 0);
  if (!withData) throw new BadRequestError('cross-validation: no node has samples');
  const dim = withData.features.length / withData.labels.length;
  nodes.forEach((n, k) => {
    if (n.features.length !== n.labels.length * dim || n.digests.length !== n.labels.length) {
      throw new BadRequestError(`cross-validation: node ${k} has ${n.features.length} feature values and ${n.digests.length} digests for ${n.labels.length} labels of dimension ${dim}`);
    }
  });
  const standardizer = standardizerFrom(mergeFeatureSums(nodes.map((n) => localFeatureSums(n.features, dim))));
  const prepared = nodes.map((n) => ({ codes: quantizeFeatures(standardize(n.features, standardizer)), labels: n.labels, folds: contentFolds(n.digests, K) }));
  const { heads } = await ridgeCrossValidation(prepared, { dim, classes, folds: K, penaltyPerRow: options.penaltyPerRow });
  const probabilities = prepared.map((n) => outOfFoldProbabilities(dequantizeFeatures(n.codes), n.folds, heads));
  return { probabilities, folds: prepared.map((n) => n.folds), standardizer, heads };
}
