/**
 * Federated image diagnosis (seed 000's `start_diagnosis_job`): mislabeled images by confident
 * learning, lighting conditions, blur, odd sizes and duplicates, over images that never leave
 * their node. See analysis.ts for the rounds, output.ts for the response.
 *
 * - `createDiagnosis(options)`: the StarAnalysis, for `runStar` on real nodes;
 * - `diagnose(request, {nodes})`: one machine, through `simulate` (one node for a plain request);
 * - the default export, for `flame run analyses/image-diagnosis/index.ts --max-rounds 200`: options
 *   from the `DIAGNOSIS_OPTIONS` environment variable (JSON {@link DiagnosisOptions} without callbacks).
 */
import type { DataSourceConfig } from '../../src/data/port.js';
import { BadRequestError } from '../../src/errors.js';
import { simulate } from '../../src/star/simulator.js';
import type { LogLevel } from '../../src/config.js';
import { createDiagnosis, diagnosisRounds, type DiagnosisOptions } from './analysis.js';
import type { NodeDataSpec } from './load.js';
import type { DiagnosisResult } from './output.js';
import { parseDiagnosisRequest } from './request.js';

export { createDiagnosis, diagnosisRounds, type DiagnosisOptions, type DiagnosisProgress, type DiagnosisAggregate, type DiagnosisLocal } from './analysis.js';
export { assembleResponse, flaggedPaths, summaryRows, type DiagnosisResult, type DiagnosisTaskResult, type DiagnosedDataset, type DiagnosedFile, type SummaryRow } from './output.js';
export { checkDataset, DIAGNOSIS_TASKS, parseDiagnosisRequest, type DiagnosisJobRequest, type DiagnosisTaskName } from './request.js';
export { loadLocalData, type LocalData, type LocalImage, type NodeDataSpec } from './load.js';
export { findDuplicates, DEFAULT_DUPLICATE_DISTANCE, type DuplicateMark, type HashedImage } from './duplicates.js';
export { QUALITY_RULES, cutoffsFrom, type QualityCutoffs } from './distribution.js';
export { imageSignals, dHash, hammingDistance, type ImageSignals } from './signals.js';

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
  /** Storage folder of the simulation (default a temporary one). */
  dir?: string;
  logLevel?: LogLevel;
}

/**
 * Runs a seed-000 diagnosis request on this machine over simulated nodes and returns the response.
 * @throws BadRequestError naming the request field at fault.
 */
export async function diagnose(request: unknown, options: DiagnoseOptions = {}): Promise<DiagnosisResult> {
  const req = parseDiagnosisRequest(request, { needDataset: !options.nodes });
  const nodes = options.nodes ?? [{ id: 'node-1', data: { dataset: req.dataset! } }];
  if (nodes.length === 0) throw new BadRequestError('diagnose: nodes is empty');
  const { nodes: _nodes, timeoutMs, dir, logLevel, ...rest } = options;
  void _nodes;
  const diagnosisOptions: DiagnosisOptions = {
    ...rest,
    tasks: req.tasks.map((t) => t.name),
    datasetUuid: req.dataset_uuid,
    ...(req.dataset ? { classes: req.dataset.classes } : {}),
    data: Object.fromEntries(nodes.filter((n) => n.data).map((n) => [n.id, n.data!])),
  };
  const { outcome } = await simulate(createDiagnosis(diagnosisOptions), {
    nodes: nodes.map((n) => ({ id: n.id, dataSources: n.dataSources ?? [] })),
    maxRounds: diagnosisRounds(diagnosisOptions),
    timeoutMs: timeoutMs ?? 600_000,
    resultName: 'diagnosis',
    ...(dir ? { dir } : {}),
    logLevel: logLevel ?? 'error',
  });
  if (!outcome.result.result) throw new BadRequestError('diagnose: the run ended before the decide round');
  return outcome.result.result;
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
