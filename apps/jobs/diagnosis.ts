/**
 * Seed 000's `start_diagnosis_job(uuid, request, sock_addr)`: the request's dataset (paths on this
 * machine) diagnosed by analyses/image-diagnosis on one simulated node, with progress per task on
 * the socket and each task's result sent as soon as it is ready.
 *
 * More classes than the `maxClasses` cap fail the job before any work. Files that do not exist, are
 * not files, or are listed twice are left out before the run; files that cannot be decoded or have
 * more pixels than the `maxImagePixels` cap are left out by the run. Both are in the result's `skipped` list and sent
 * as `skipped` events. With no file left, the result has every task with empty datasets.
 */
import {
  diagnose,
  type DiagnoseOptions,
  type DiagnosedDataset,
  type DiagnosisJobRequest,
  type DiagnosisResult,
  type DiagnosisTaskResult,
} from '../../analyses/image-diagnosis/index.js';
import type { ClassFiles, Dataset } from '../../src/images/index.js';
import { JOB_TASK, type JobReporter, type SkippedFile } from './events.js';
import { checkDiagnosisRequest, checkFiles, type ListedFile } from './request.js';
import { jobLimits, runJob, type JobOptions } from './run.js';

/** The node id the job runs the request's dataset on (as `flame diagnose` does). */
export const LOCAL_NODE = 'node-1';

/** Share of the job's completeness spent checking that files exist. */
const CHECK_SHARE = 0.05;

/** Options of {@link runDiagnosisJob}: the job's, and the diagnosis settings (folds, classifier, …). */
export interface DiagnosisJobOptions extends JobOptions, Omit<DiagnoseOptions, 'nodes' | 'onProgress' | 'onTaskResult'> {}

/** A file the diagnosis job left out: path, why, and the node (always {@link LOCAL_NODE}). */
export type DiagnosisSkippedFile = SkippedFile & { node: string };

/** The diagnosis job's result: the diagnosis response, `skipped` listing every file left out. */
export interface DiagnosisJobResult extends DiagnosisResult {
  /** Every file left out: missing, not a file, listed twice or not decodable. */
  skipped: DiagnosisSkippedFile[];
}

/** The request's files, in class order. */
function listFiles(dataset: Dataset): ListedFile[] {
  return dataset.classes.flatMap((cls) => Object.entries(dataset.class_files[cls] ?? {}).map(([path, f]) => ({ path, uuid: f.uuid, where: `class ${JSON.stringify(cls)}` })));
}

/** The dataset without the files whose indexes (into {@link listFiles}' list) are in `skip`. */
function withoutFiles(dataset: Dataset, skip: ReadonlySet<number>): { dataset: Dataset; kept: number } {
  let i = 0;
  let kept = 0;
  const class_files: Record<string, ClassFiles> = {};
  for (const cls of dataset.classes) {
    class_files[cls] = {};
    for (const [path, f] of Object.entries(dataset.class_files[cls] ?? {})) {
      if (!skip.has(i++)) {
        class_files[cls][path] = f;
        kept++;
      }
    }
  }
  return { dataset: { ...dataset, class_files }, kept };
}

function emptyDataset(classes: readonly string[]): DiagnosedDataset {
  return { classes: [...classes], mean: [], std_dev: [], class_files: Object.fromEntries(classes.map((c) => [c, {}])) };
}

/** The result when no file could be diagnosed: each task with empty outliers and inliers. */
function emptyResult(req: DiagnosisJobRequest): DiagnosisResult {
  const classes = req.dataset!.classes;
  return {
    dataset_uuid: req.dataset_uuid,
    tasks: req.tasks.map((t): DiagnosisTaskResult => ({ name: t.name, datasets: { outliers: emptyDataset(classes), inliers: emptyDataset(classes) } })),
    skipped: [],
  };
}

async function diagnosisWork(reporter: JobReporter, request: unknown, options: DiagnosisJobOptions): Promise<DiagnosisJobResult> {
  const { jobId: _jobId, warn: _warn, closeTimeoutMs: _close, ...diagnosisOptions } = options;
  const limits = jobLimits(options);
  const req = checkDiagnosisRequest(request, { maxClasses: limits.maxClasses });
  const tasks = req.tasks.map((t) => t.name);
  reporter.started(tasks, req.dataset_uuid);

  const listed = listFiles(req.dataset!);
  const problems = await checkFiles(listed, { onChecked: (done, total) => reporter.progress(JOB_TASK, (CHECK_SHARE * done) / total, 'check-files') });
  const skipped: DiagnosisSkippedFile[] = [...problems.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => ({ node: LOCAL_NODE, ...s }));
  for (const s of skipped) reporter.skipped(s);
  const { dataset, kept } = withoutFiles(req.dataset!, new Set(problems.keys()));

  let result: DiagnosisResult;
  if (kept === 0) {
    result = emptyResult(req);
  } else {
    result = await diagnose(
      { ...req, dataset },
      {
        ...diagnosisOptions,
        limits,
        nodes: [{ id: LOCAL_NODE, data: { dataset } }],
        onProgress: (p) => {
          reporter.progress(JOB_TASK, CHECK_SHARE + (1 - CHECK_SHARE) * p.progress, p.phase);
          for (const t of p.task ? [p.task] : tasks) reporter.progress(t, p.progress, p.phase);
        },
        onTaskResult: (t) => reporter.taskResult(t.name, t),
      },
    );
  }
  const undecoded = result.skipped.map((s): DiagnosisSkippedFile => ({ ...s }));
  for (const s of undecoded) reporter.skipped(s);
  for (const t of result.tasks) reporter.taskResult(t.name, t); // no-op for tasks already sent
  return { ...result, skipped: [...skipped, ...undecoded] };
}

/**
 * The diagnosis job, typed: `request` as JSON text or a parsed object; returns the seed-000
 * response (plus `skipped`, and the per-file extensions documented in analyses/image-diagnosis).
 * @throws BadRequestError naming the request field at fault
 */
export function runDiagnosisJob(userUuid: string, request: unknown, sockAddr: string, options: DiagnosisJobOptions = {}): Promise<DiagnosisJobResult> {
  return runJob('diagnosis', userUuid, sockAddr, options, (reporter) => diagnosisWork(reporter, request, options));
}

/**
 * Seed 000's `start_diagnosis_job`: `request` is the JSON text of the diagnosis request, the
 * result the JSON text of the response `{dataset_uuid, tasks, skipped}`.
 * @throws BadRequestError naming the request field at fault (bad JSON: the position)
 */
export async function startDiagnosisJob(userUuid: string, request: string, sockAddr: string, options: DiagnosisJobOptions = {}): Promise<string> {
  return JSON.stringify(await runDiagnosisJob(userUuid, request, sockAddr, options));
}
