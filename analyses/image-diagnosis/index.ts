/**
 * Federated image diagnosis (seed 000's `start_diagnosis_job`): mislabeled images by confident
 * learning, lighting conditions, blur, odd sizes and duplicates, and on request grayscale, low
 * information, odd aspect ratios and out-of-distribution images, over images that never leave
 * their node. See analysis.ts for the rounds, output.ts for the response.
 *
 * - `createDiagnosis(options)`: the StarAnalysis, for `runStar` on real nodes;
 * - `diagnose(request, {nodes})`: one machine, through `simulate` (one node for a plain request);
 *   with `exportModel: FILE` it also writes the trained classifier (model.ts) and its labels file;
 * - the default export, for `flame run analyses/image-diagnosis/index.ts --max-rounds 200`: options
 *   from the `DIAGNOSIS_OPTIONS` environment variable (JSON {@link DiagnosisOptions} without callbacks).
 *
 * @module flame-sdk/image-diagnosis
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { BadRequestError, limitsFromEnv, resolveLimits, simulate, type DataSourceConfig, type DisclosurePolicy, type FlameSDK, type Limits, type LogLevel } from 'flame-sdk';
import { createDiagnosis, diagnosisRounds, type DiagnosisAggregate, type DiagnosisOptions } from './analysis.js';
import type { NodeDataSpec } from './load.js';
import { labelsFileText, labelsPathFor } from './model.js';
import type { DiagnosisResult } from './output.js';
import { parseDiagnosisRequest } from './request.js';

export { createDiagnosis, diagnosisRounds, type DiagnosisOptions, type DiagnosisProgress, type DiagnosisAggregate, type DiagnosisLocal } from './analysis.js';
export { assembleResponse, flaggedPaths, summaryRows, type DiagnosisResult, type DiagnosisTaskResult, type DiagnosedDataset, type DiagnosedFile, type SummaryRow } from './output.js';
export { checkDataset, DIAGNOSIS_TASKS, KNOWN_DIAGNOSIS_TASKS, OPT_IN_DIAGNOSIS_TASKS, diagnosisRequestFromFolder, parseDiagnosisRequest, type DiagnosisJobRequest, type DiagnosisRequestOptions, type DiagnosisTaskName } from './request.js';
export { loadLocalData, type LocalData, type LocalImage, type NodeDataSpec } from './load.js';
export { findDuplicates, DEFAULT_DUPLICATE_DISTANCE, DEFAULT_MIN_CORRELATION, type DuplicateMark, type HashedImage } from './duplicates.js';
export { lowFrequencyDct, pHashOf, signatureOf, parseSignature, signatureCorrelation, SIGNATURE_LENGTH } from './perceptual.js';
export { QUALITY_RULES, cutoffsFrom, type QualityCutoffs, type QualityRules } from './distribution.js';
export { imageSignals, hammingDistance, type ImageSignals } from './signals.js';
export { CHECK_BINS, CHECK_RULES, checkCutoffsFrom, type CheckCutoffs, type CheckHistograms, type CheckSignal } from './checks.js';
export { OUTLIER_BINS, OUTLIER_RULES, OUTLIER_TRIM_RULES, PIXEL_SIDE, outlierScores, type OutlierBlock, type OutlierModel, type OutliersPartial } from './phases/outliers.js';
export { diagnosisConvSpec, labelsFileText, labelsPathFor, MODEL_RESULT_NAME, trainedModel, type FoldHead, type TrainedModel } from './model.js';
// What each round carries (parts of DiagnosisLocal and DiagnosisAggregate), so their docs are complete.
export type { DiagnosisSetup } from './global.js';
export type { NodeDuplicateMark } from './views.js';
export type { NodeTaskVerdicts, NodeFile, FlaggedFile } from './output.js';
export type { SignalHistograms, SignalName, BinSpec, SIGNAL_BINS } from './distribution.js';
export type { LoadPartial } from './phases/load.js';
export type { FeaturesPartial } from './phases/features.js';
export type { GramTensors, IteratePartial, WeightTensors } from './phases/iterate.js';
export type { ThresholdsPartial } from './phases/cl-thresholds.js';
export type { JointPartial } from './phases/cl-joint.js';
export type { CutoffsPartial } from './phases/cl-cutoffs.js';
export type { DecidePartial } from './phases/decide.js';

/** One simulated node of {@link diagnose}: its images as a data spec or as configured data sources. */
export interface DiagnoseNode {
  /** The node's id (also its name in the response's `node` fields). */
  id: string;
  /** Its images: a seed-000 dataset, a folder, an IDX pair or a data source. */
  data?: NodeDataSpec;
  /** Data sources the node's SDK is configured with (for `data` specs that name a `source`). */
  dataSources?: DataSourceConfig[];
}

/** Options of {@link diagnose}. */
export interface DiagnoseOptions extends Omit<DiagnosisOptions, 'tasks' | 'datasetUuid' | 'classes' | 'data'> {
  /** Simulated nodes; default one node holding the request's `dataset`. */
  nodes?: DiagnoseNode[];
  /** Per round timeout (default 10 min: a node may be decoding many images). */
  timeoutMs?: number;
  /** Storage folder of the simulation (default a temporary one, removed afterwards). */
  dir?: string;
  /** Log level of the simulated nodes (default `error`). */
  logLevel?: LogLevel;
  /** Disclosure policy of every simulated node (default: `FLAME_MIN_COUNT` / `FLAME_NOISE_SCALE`, else minimum count 3, no noise). */
  disclosure?: Partial<DisclosurePolicy>;
  /**
   * Write the trained `mislabeled_images` classifier here (ONNX; read back from the hub, where the
   * aggregator stored it) and its class order beside it (`x.onnx` → `x.labels.txt`, one per line):
   * together what `flame worker --model x.onnx --labels x.labels.txt` serves. Sets `modelResult`.
   */
  exportModel?: string;
  /**
   * Caps of the run (classes of the request, pixels of an image, ...) over `FLAME_MAX_*` over the
   * defaults; they become every simulated node's `config.limits`.
   */
  limits?: Partial<Limits>;
}

/**
 * Runs a seed-000 diagnosis request on this machine over simulated nodes and returns the response.
 * A request with more classes than `maxClasses` is refused before anything runs; images over
 * `maxImagePixels` are skipped (in the response's `skipped`).
 * @throws BadRequestError naming the request field at fault, or the cap.
 */
export async function diagnose(request: unknown, options: DiagnoseOptions = {}): Promise<DiagnosisResult> {
  const limits = resolveLimits({ ...limitsFromEnv(), ...options.limits });
  const req = parseDiagnosisRequest(request, { needDataset: !options.nodes, maxClasses: limits.maxClasses });
  const nodes = options.nodes ?? [{ id: 'node-1', data: { dataset: req.dataset! } }];
  if (nodes.length === 0) throw new BadRequestError('diagnose: nodes is empty');
  const { nodes: _nodes, timeoutMs, dir, logLevel, exportModel, disclosure, limits: _limits, ...rest } = options;
  void _nodes;
  void _limits;
  const diagnosisOptions: DiagnosisOptions = {
    ...rest,
    ...(exportModel ? { modelResult: true } : {}),
    tasks: req.tasks.map((t) => t.name),
    datasetUuid: req.dataset_uuid,
    ...(req.dataset ? { classes: req.dataset.classes } : {}),
    data: Object.fromEntries(nodes.filter((n) => n.data).map((n) => [n.id, n.data!])),
  };
  const analysis = createDiagnosis(diagnosisOptions);
  const aggregatorId = 'aggregator';
  const simDir = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'flame-diagnose-')));
  try {
    const { outcome } = await simulate(analysis, {
      nodes: nodes.map((n) => ({ id: n.id, dataSources: n.dataSources ?? [] })),
      maxRounds: diagnosisRounds(diagnosisOptions),
      timeoutMs: timeoutMs ?? 600_000,
      resultName: 'diagnosis',
      dir: simDir,
      analysisId: `diagnose-${randomUUID().slice(0, 8)}`,
      aggregatorId,
      logLevel: logLevel ?? 'error',
      ...(disclosure ? { disclosure } : {}),
      limits,
      afterRun: async (sdks, done) => {
        const result = (done.result as DiagnosisAggregate).result;
        if (exportModel && result) await writeModel(sdks[aggregatorId], result, exportModel);
      },
    });
    const result = outcome.result.result;
    if (!result) throw new BadRequestError('diagnose: the run ended before the decide round');
    return result;
  } finally {
    if (!dir) await rm(simDir, { recursive: true, force: true });
  }
}

/** Writes the classifier the aggregator stored (final result `model_result_id`, signature checked) and its labels file. */
async function writeModel(aggregator: FlameSDK, result: DiagnosisResult, file: string): Promise<void> {
  const id = result.model_result_id;
  if (!id || !result.model_labels) throw new BadRequestError('diagnose: the run stored no classifier');
  const target = path.resolve(file);
  await mkdir(path.dirname(target), { recursive: true });
  await pipeline(await aggregator.results.getResultStream(id), createWriteStream(target));
  await writeFile(labelsPathFor(target), labelsFileText(result.model_labels));
}

/** Reads {@link DiagnosisOptions} from `DIAGNOSIS_OPTIONS` (JSON); `{}` when unset. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): DiagnosisOptions {
  const raw = env.DIAGNOSIS_OPTIONS;
  if (!raw) return {};
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as DiagnosisOptions;
  } catch (e) {
    throw new BadRequestError(`DIAGNOSIS_OPTIONS is not a JSON object: ${(e as Error).message}`, { cause: e });
  }
}

/** The analysis for `flame run`, configured from `DIAGNOSIS_OPTIONS`. */
const analysis = createDiagnosis(optionsFromEnv());
export default analysis;
