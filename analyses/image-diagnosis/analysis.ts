/**
 * The federated diagnosis as a phased StarAnalysis (src/star/phased.ts), one file per phase:
 *
 *   load          nodes decode their images; send channel sums, signal histograms, shapes, (hashes)
 *   features      nodes extract features (random conv or a user ONNX extractor) and, with a user
 *                 classifier, its probabilities; send feature sums for pooled standardisation
 *   iterate       K-fold cross-validation heads in closed form: per-fold sums of the quantised
 *                 features (one round), then the softmax temperature from summed log-losses (one
 *                 round); the same rounds also carry the federated PCA power iterations
 *   cl-thresholds / cl-joint / cl-cutoffs   confident learning on out-of-sample probabilities:
 *                 per-class threshold sums, confident-joint counts, prune-score candidates
 *   outliers      (the outliers task only) per-class feature sums, then a histogram of the
 *                 out-of-distribution scores (phases/outliers.ts)
 *   decide        nodes judge their own images against the global statistics and send their files
 *   done          the aggregator's merged seed-000 response (and, with `modelResult`, the trained
 *                 classifier stored on the hub as the final result `classifier.onnx`: model.ts)
 *
 * Each analyzer receives only its own part of every aggregate, and at the end only its own verdicts
 * (views.ts); every count a node shares is under its disclosure policy (disclosure.ts).
 *
 * Each node keeps its state (images, features, folds, probabilities) in memory between rounds
 * (phases/context.ts); a restarted node re-reads its images and re-enters the phases it had gone
 * through. The aggregator holds no image.
 */
import { BadRequestError, phased, type FlameValue, type StarAnalysis } from 'flame-sdk';
import type { DiagnosisAggregate } from './global.js';
import type { DiagnosisOptions } from './options.js';
import { DIAGNOSIS_TASKS, KNOWN_DIAGNOSIS_TASKS } from './request.js';
import { finalFor, globalFor } from './views.js';
import { diagnosisContext, type NodeState } from './phases/context.js';
import { loadPhase, readImages, type LoadPartial } from './phases/load.js';
import { featuresPhase, type FeaturesPartial } from './phases/features.js';
import { iteratePhase, type IteratePartial } from './phases/iterate.js';
import { thresholdsPhase, type ThresholdsPartial } from './phases/cl-thresholds.js';
import { jointPhase, type JointPartial } from './phases/cl-joint.js';
import { cutoffsPhase, type CutoffsPartial } from './phases/cl-cutoffs.js';
import { OUTLIER_STEPS, outliersPhase, type OutliersPartial } from './phases/outliers.js';
import { decidePhase, type DecidePartial } from './phases/decide.js';

export type { DiagnosisOptions, DiagnosisProgress } from './options.js';
export type { DiagnosisAggregate, DiagnosisSetup } from './global.js';

/** A node's reply in any round: one phase's partial (phases/*.ts), so only that phase's fields are set. */
export type DiagnosisLocal = Partial<LoadPartial & FeaturesPartial & IteratePartial & ThresholdsPartial & JointPartial & CutoffsPartial & OutliersPartial & DecidePartial>;

/** Builds the diagnosis analysis. The returned object keeps per-node state: use it for one run. */
export function createDiagnosis(options: DiagnosisOptions = {}): StarAnalysis<DiagnosisLocal, DiagnosisAggregate> {
  const tasks = [...(options.tasks ?? DIAGNOSIS_TASKS)];
  for (const t of tasks) if (!(KNOWN_DIAGNOSIS_TASKS as readonly string[]).includes(t)) throw new BadRequestError(`tasks: unknown task "${t}" (known: ${KNOWN_DIAGNOSIS_TASKS.join(', ')})`);
  const ctx = diagnosisContext(options, tasks);
  if (options.modelResult) {
    if (!ctx.need.cl) throw new BadRequestError('model export (modelResult, --export-model): a classifier is only trained for the mislabeled_images task, which is not requested');
    if (options.classifier) throw new BadRequestError('model export (modelResult, --export-model): with a user classifier nothing is trained (the classifier is already yours)');
    if (options.featureExtractor) throw new BadRequestError('model export (modelResult, --export-model): the model cannot be exported with a user feature extractor (its graph cannot be merged); use the built-in features');
  }
  return phased<NodeState, DiagnosisAggregate, DiagnosisLocal>({
    init: ({ sdk }) => readImages(sdk, ctx),
    // A hospital lost while the images are read or their features extracted is left out (its images
    // are not in the result); from the training on, every node's data is in the folds: no loss then.
    open: loadPhase(ctx),
    phases: [featuresPhase(ctx), iteratePhase(ctx), thresholdsPhase(ctx), jointPhase(ctx), cutoffsPhase(ctx), outliersPhase(ctx), decidePhase(ctx)],
    maxRounds: diagnosisRounds(options),
    globalFor,
    finalFor: (result, nodeId) => finalFor(result, nodeId, ctx.ownParts),
    // On the hub: the seed-000 response itself (what flame report, check and results download read).
    submit: (final) => (final.result ?? null) as unknown as FlameValue,
    noiseFields: DIAGNOSIS_NOISE_FIELDS,
    disclosureField: 'result.disclosure',
  });
}

/**
 * The numbers of the final aggregate that get Laplace noise when a node's policy asks for it: the
 * pooled dataset statistics (the setup's and every task's outliers/inliers mean and std_dev). Per-image
 * records (sizes, scores, probabilities, projections), uuids, counts and the cut-offs stay exact.
 */
export const DIAGNOSIS_NOISE_FIELDS: readonly string[] = [
  'setup.mean',
  'setup.std_dev',
  'result.tasks.*.datasets.*.mean',
  'result.tasks.*.datasets.*.std_dev',
];

/** Upper bound on the rounds a diagnosis with these options takes (for the runner's maxRounds). */
export function diagnosisRounds(options: DiagnosisOptions = {}): number {
  const { trainSteps, pcaSteps, tasks } = diagnosisContext(options);
  return 1 + 1 + Math.max(trainSteps, pcaSteps) + 3 + (tasks.includes('outliers') ? OUTLIER_STEPS : 0) + 1 + 1;
}
