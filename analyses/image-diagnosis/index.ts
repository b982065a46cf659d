/**
 * Federated image diagnosis (seed 000's `start_diagnosis_job`): mislabeled images by confident
 * learning, lighting conditions, blur, odd sizes and duplicates, over images that never leave
 * their node. See analysis.ts for the rounds, output.ts for the response.
 *
 * - `createDiagnosis(options)`: the StarAnalysis, for `runStar` on real nodes;
 * - `diagnose(request, {nodes})`: one machine, through `simulate` (one node for a plain request);
 *   with `exportModel: FILE` it also writes the trained classifier (model.ts) and its labels file;
 * - the default export, for `flame run analyses/image-diagnosis/index.ts --max-rounds 200`: options
 *   from the `DIAGNOSIS_OPTIONS` environment variable (JSON {@link DiagnosisOptions} without callbacks).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { DataSourceConfig } from '../../src/data/port.js';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { FsObjectStore } from '../../src/results/fs.js';
import { simulate } from '../../src/star/simulator.js';
import type { LogLevel } from '../../src/config.js';
import { createDiagnosis, diagnosisRounds, type DiagnosisOptions } from './analysis.js';
import type { NodeDataSpec } from './load.js';
import { labelsFileText, labelsPathFor } from './model.js';
import type { DiagnosisResult } from './output.js';
import { parseDiagnosisRequest } from './request.js';

export { createDiagnosis, diagnosisRounds, type DiagnosisOptions, type DiagnosisProgress, type DiagnosisAggregate, type DiagnosisLocal } from './analysis.js';
export { assembleResponse, flaggedPaths, summaryRows, type DiagnosisResult, type DiagnosisTaskResult, type DiagnosedDataset, type DiagnosedFile, type SummaryRow } from './output.js';
export { checkDataset, DIAGNOSIS_TASKS, parseDiagnosisRequest, type DiagnosisJobRequest, type DiagnosisTaskName } from './request.js';
export { loadLocalData, type LocalData, type LocalImage, type NodeDataSpec } from './load.js';
export { findDuplicates, DEFAULT_DUPLICATE_DISTANCE, type DuplicateMark, type HashedImage } from './duplicates.js';
export { QUALITY_RULES, cutoffsFrom, type QualityCutoffs } from './distribution.js';
export { imageSignals, dHash, hammingDistance, type ImageSignals } from './signals.js';
export { diagnosisConvSpec, labelsFileText, labelsPathFor, MODEL_RESULT_NAME, trainedModel, type FoldHead, type TrainedModel } from './model.js';

/** One simulated node of {@link diagnose}: its images as a data spec or as configured data sources. */
export interface DiagnoseNode {
  id: string;
  data?: NodeDataSpec;
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
  logLevel?: LogLevel;
  /**
   * Write the trained `mislabeled_images` classifier here (ONNX; read back from the hub, where the
   * aggregator stored it) and its class order beside it (`x.onnx` → `x.labels.txt`, one per line):
   * together what `flame worker --model x.onnx --labels x.labels.txt` serves. Sets `modelResult`.
   */
  exportModel?: string;
}

/**
 * Runs a seed-000 diagnosis request on this machine over simulated nodes and returns the response.
 * @throws BadRequestError naming the request field at fault.
 */
export async function diagnose(request: unknown, options: DiagnoseOptions = {}): Promise<DiagnosisResult> {
  const req = parseDiagnosisRequest(request, { needDataset: !options.nodes });
  const nodes = options.nodes ?? [{ id: 'node-1', data: { dataset: req.dataset! } }];
  if (nodes.length === 0) throw new BadRequestError('diagnose: nodes is empty');
  const { nodes: _nodes, timeoutMs, dir, logLevel, exportModel, ...rest } = options;
  void _nodes;
  const diagnosisOptions: DiagnosisOptions = {
    ...rest,
    ...(exportModel ? { modelResult: true } : {}),
    tasks: req.tasks.map((t) => t.name),
    datasetUuid: req.dataset_uuid,
    ...(req.dataset ? { classes: req.dataset.classes } : {}),
    data: Object.fromEntries(nodes.filter((n) => n.data).map((n) => [n.id, n.data!])),
  };
  const analysis = createDiagnosis(diagnosisOptions);
  const simDir = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'flame-diagnose-')));
  try {
    const { outcome } = await simulate(analysis, {
      nodes: nodes.map((n) => ({ id: n.id, dataSources: n.dataSources ?? [] })),
      maxRounds: diagnosisRounds(diagnosisOptions),
      timeoutMs: timeoutMs ?? 600_000,
      resultName: 'diagnosis',
      dir: simDir,
      analysisId: `diagnose-${randomUUID().slice(0, 8)}`,
      logLevel: logLevel ?? 'error',
    });
    const result = outcome.result.result;
    if (!result) throw new BadRequestError('diagnose: the run ended before the decide round');
    if (exportModel) await writeModelFromHub(path.join(simDir, 'hub'), result, exportModel);
    return result;
  } finally {
    if (!dir) await rm(simDir, { recursive: true, force: true });
  }
}

/** Copies the classifier the aggregator stored (final result `model_result_id`) out of the simulation's hub. */
async function writeModelFromHub(hubDir: string, result: DiagnosisResult, file: string): Promise<void> {
  const id = result.model_result_id;
  if (!id || !result.model_labels) throw new BadRequestError('diagnose: the run stored no classifier');
  const hub = new FsObjectStore(hubDir);
  // Final results live under …/final/<id> (src/results/service.ts); the id is a fresh uuid.
  const key = (await hub.list('projects/')).find((o) => o.key.endsWith(`/final/${id}`))?.key;
  if (!key) throw new NotFoundError(`diagnose: classifier result ${id} not found on the hub`);
  const target = path.resolve(file);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, await hub.getBytes(key));
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
