/**
 * Seed 000's `start_cleaning_job(uuid, request, sock_addr)`: a diagnosis result plus `auto`, cleaned
 * by analyses/image-cleaning's `clean` into `{dataset_uuid, corrected, removed}`.
 *
 * Before cleaning, every file the request lists (its `path` field, else its key) is checked on this
 * machine: a file that does not exist or is not a file is taken out of every task, listed in the
 * result's `skipped` and sent as a `skipped` event, so it is neither corrected nor removed
 * (`checkFiles: false` turns this off, e.g. to clean a result away from the images).
 *
 * The request may carry `max_given_confidence` (analyses/image-cleaning's bar on a mislabeled
 * outlier's given class with `auto: true`), which the `maxGivenConfidence` option overrides.
 */
import { clean, parseCleaningRequest, sourcePath, type CleaningOptions, type CleaningTask, type ValidCleaningRequest } from '../../analyses/image-cleaning/index.js';
import type { ClassFiles, CleaningResponse, Dataset } from '../../src/images/index.js';
import { JOB_TASK, type JobReporter, type SkippedFile } from './events.js';
import { parseRequestJson } from '../../src/json-text.js';
import { checkFiles, type ListedFile } from './request.js';
import { jobLimits, runJob, type JobOptions } from './run.js';

/** The task name of the cleaning job's events. */
export const CLEANING_TASK = 'cleaning';

/** Options of {@link runCleaningJob} (the class cap comes from `limits`). */
export interface CleaningJobOptions extends JobOptions, Omit<CleaningOptions, 'maxClasses'> {
  /** Check that every listed file exists here, skipping those that do not (default true). */
  checkFiles?: boolean;
}

/** The cleaning job's result: seed 000's response plus `skipped`, the files left out. */
export interface CleaningJobResult extends CleaningResponse {
  /** Files of the request that were left out, each with why. */
  skipped: SkippedFile[];
}

/** Every dataset of the request: each task's outliers, and inliers when given. */
function datasetsOf(task: CleaningTask): Array<[string, Dataset]> {
  return [['outliers', task.datasets.outliers], ...(task.datasets.inliers ? [['inliers', task.datasets.inliers] as [string, Dataset]] : [])];
}

/** Each distinct source path of the request once, with the first uuid and place listing it. */
function listFiles(req: ValidCleaningRequest): ListedFile[] {
  const out = new Map<string, ListedFile>();
  req.tasks.forEach((task, i) => {
    for (const [part, ds] of datasetsOf(task)) {
      for (const [cls, files] of Object.entries(ds.class_files)) {
        for (const [key, file] of Object.entries(files)) {
          const path = sourcePath(key, file);
          if (!out.has(path)) out.set(path, { path, uuid: file.uuid, where: `request.tasks[${i}].datasets.${part}.class_files[${JSON.stringify(cls)}]` });
        }
      }
    }
  });
  return [...out.values()];
}

/** The request without the files whose source path is in `drop`. */
function withoutPaths(req: ValidCleaningRequest, drop: ReadonlySet<string>): ValidCleaningRequest {
  const filter = (ds: Dataset): Dataset => ({
    ...ds,
    class_files: Object.fromEntries(
      Object.entries(ds.class_files).map(([cls, files]): [string, ClassFiles] => [cls, Object.fromEntries(Object.entries(files).filter(([key, f]) => !drop.has(sourcePath(key, f))))]),
    ),
  });
  return {
    ...req,
    tasks: req.tasks.map((t) => ({ ...t, datasets: { outliers: filter(t.datasets.outliers), ...(t.datasets.inliers ? { inliers: filter(t.datasets.inliers) } : {}) } })),
  };
}

async function cleaningWork(reporter: JobReporter, request: unknown, options: CleaningJobOptions): Promise<CleaningJobResult> {
  const { maxClasses } = jobLimits(options);
  const req = parseCleaningRequest(parseRequestJson(request), 'request', { maxClasses });
  reporter.started([CLEANING_TASK], req.dataset_uuid);
  let skipped: SkippedFile[] = [];
  let checked = req;
  if (options.checkFiles !== false) {
    const listed = listFiles(req);
    const problems = await checkFiles(listed, {
      onChecked: (done, total) => {
        reporter.progress(CLEANING_TASK, (0.9 * done) / total, 'check-files');
        reporter.progress(JOB_TASK, (0.9 * done) / total, 'check-files');
      },
    });
    skipped = [...problems.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
    for (const s of skipped) reporter.skipped(s);
    if (skipped.length > 0) checked = withoutPaths(req, new Set(skipped.map((s) => s.path)));
  }
  const response = clean(checked, {
    maxClasses,
    ...(options.minConfidence !== undefined ? { minConfidence: options.minConfidence } : {}),
    ...(options.maxGivenConfidence !== undefined ? { maxGivenConfidence: options.maxGivenConfidence } : {}),
  });
  const result: CleaningJobResult = { ...response, skipped };
  reporter.taskResult(CLEANING_TASK, result);
  return result;
}

/**
 * The cleaning job, typed: `request` as JSON text or a parsed object; returns `{dataset_uuid,
 * corrected, removed, skipped}`.
 * @throws BadRequestError naming the request field at fault
 */
export function runCleaningJob(userUuid: string, request: unknown, sockAddr: string, options: CleaningJobOptions = {}): Promise<CleaningJobResult> {
  return runJob('cleaning', userUuid, sockAddr, options, (reporter) => cleaningWork(reporter, request, options));
}

/**
 * Seed 000's `start_cleaning_job`: `request` is the JSON text of the cleaning request, the result
 * the JSON text of `{dataset_uuid, corrected, removed, skipped}`.
 * @throws BadRequestError naming the request field at fault (bad JSON: the position)
 */
export async function startCleaningJob(userUuid: string, request: string, sockAddr: string, options: CleaningJobOptions = {}): Promise<string> {
  return JSON.stringify(await runCleaningJob(userUuid, request, sockAddr, options));
}
