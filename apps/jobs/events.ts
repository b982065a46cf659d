/**
 * The progress events of a job (docs/jobs.md, "Progress events") and {@link JobReporter}, which
 * turns what a job observes into that sequence: numbered, time-stamped, completeness never
 * decreasing per task, ending with exactly one job-level `finished` or `failed` event.
 */

/** The three jobs of seed 000. */
export type JobKind = 'diagnosis' | 'cleaning' | 'metadata';

/** What an event says; see docs/jobs.md for when each is sent. */
export type JobEventType = 'started' | 'progress' | 'skipped' | 'task_result' | 'finished' | 'failed';

/** The task name of job-level events (`started`, `skipped`, `finished`, `failed`, overall progress). */
export const JOB_TASK = 'job';

/** One line on the progress socket. */
export interface JobProgressEvent {
  /** 1, 2, 3, … in sending order within the job. */
  seq: number;
  /** What the event says (see {@link JobEventType}). */
  type: JobEventType;
  /** The job id (a random UUID unless the caller gave one). */
  job: string;
  /** The uuid of the user who started the job. */
  user: string;
  /** Which job sends it. */
  kind: JobKind;
  /** Task name (`mislabeled_images`, …, `cleaning`, `metadata`) or `job` for the job as a whole. */
  task: string;
  /** 0..1, never decreasing per task; 1 exactly on the task's `task_result` and the job's `finished`. */
  completeness: number;
  /** ISO 8601 time of the event. */
  time: string;
  /** The request's `dataset_uuid` (diagnosis and cleaning, once the request is read). */
  dataset_uuid?: string;
  /** `started`: the tasks the job runs, in output order. */
  tasks?: string[];
  /** `progress`: what the job is doing (`load`, `features`, `train`, …). */
  phase?: string;
  /** `task_result`: the task's result; `finished`: the job's whole output object. */
  result?: unknown;
  /** `skipped`: the file left out and why. */
  file?: SkippedFile;
  /** `failed`: the error message (names the request field at fault for bad requests). */
  error?: string;
  /** `failed`: the error kind (`bad_request`, `not_found`, …, as in src/errors.ts). */
  error_kind?: string;
}

/** A file a job left out: a path that does not exist, is not a file, appears twice, or cannot be decoded. */
export interface SkippedFile {
  /** The path as the request lists it. */
  path: string;
  /** Why it was left out (names the path). */
  error: string;
  /** The file's uuid in the request, when it has one. */
  uuid?: string;
  /** Diagnosis: the (simulated) node that holds the file. */
  node?: string;
  /** Cleaning: the request task that listed the file. */
  task?: string;
}

/** Where events go (a {@link ProgressSocket}, or anything with the same shape). */
export interface JobEventSink {
  /** Delivers one event, called in `seq` order; the reporter does not wait for a returned promise. */
  send(event: JobProgressEvent): void | Promise<void>;
}

/** Identity of a job, stamped on every event. */
export interface JobIdentity {
  /** The job id (a random UUID unless the caller gave one). */
  job: string;
  /** The uuid of the user who started the job. */
  user: string;
  /** Which of the three jobs it is. */
  kind: JobKind;
}

/** Completeness changes smaller than this are not sent (except reaching 1). */
const STEP = 0.01;

/**
 * Builds and sends a job's events. Never throws: a sink that fails is the sink's business
 * (the {@link ProgressSocket} swallows its own errors).
 */
export class JobReporter {
  private seq = 0;
  private readonly done = new Map<string, number>();
  private readonly finishedTasks = new Set<string>();
  private readonly phases = new Map<string, string>();
  private datasetUuid?: string;
  private over = false;

  constructor(private readonly id: JobIdentity, private readonly sink: JobEventSink) {}

  private emit(type: JobEventType, task: string, completeness: number, extra: Partial<JobProgressEvent> = {}): void {
    const event: JobProgressEvent = {
      seq: ++this.seq,
      type,
      ...this.id,
      task,
      completeness,
      time: new Date().toISOString(),
      ...(this.datasetUuid !== undefined ? { dataset_uuid: this.datasetUuid } : {}),
      ...extra,
    };
    void this.sink.send(event);
  }

  /** The job starts running `tasks` (after its request was read). */
  started(tasks: readonly string[], datasetUuid?: string): void {
    if (datasetUuid !== undefined) this.datasetUuid = datasetUuid;
    for (const t of tasks) this.done.set(t, 0);
    this.done.set(JOB_TASK, 0);
    this.emit('started', JOB_TASK, 0, { tasks: [...tasks] });
  }

  /**
   * `task` (or the job) got to `completeness`: sent only when it moved forward by at least 1 %
   * (or the phase changed); clamped below 1, since 1 is for the task's result.
   */
  progress(task: string, completeness: number, phase?: string): void {
    if (this.over || this.finishedTasks.has(task)) return;
    const prev = this.done.get(task) ?? 0;
    const next = Math.min(0.99, Math.max(prev, Math.round(completeness * 1e4) / 1e4));
    const prevPhase = this.phases.get(task);
    if (next - prev < STEP && (phase === undefined || phase === prevPhase) && this.done.has(task)) return;
    this.done.set(task, next);
    if (phase !== undefined) this.phases.set(task, phase);
    this.emit('progress', task, next, phase !== undefined ? { phase } : {});
  }

  /** A file was left out (job-level event at the job's current completeness). */
  skipped(file: SkippedFile): void {
    if (this.over) return;
    this.emit('skipped', JOB_TASK, this.done.get(JOB_TASK) ?? 0, { file });
  }

  /** `task` is over: completeness 1 with its result. */
  taskResult(task: string, result: unknown): void {
    if (this.over || this.finishedTasks.has(task)) return;
    this.finishedTasks.add(task);
    this.done.set(task, 1);
    this.emit('task_result', task, 1, { result });
  }

  /** The job is over: the last event, with the job's whole output. */
  finished(result: unknown): void {
    if (this.over) return;
    this.over = true;
    this.emit('finished', JOB_TASK, 1, { result });
  }

  /** The job failed: the last event, with the error. */
  failed(error: unknown): void {
    if (this.over) return;
    this.over = true;
    const message = error instanceof Error ? error.message : String(error);
    const kind = typeof error === 'object' && error !== null && 'kind' in error && typeof error.kind === 'string' ? error.kind : 'internal';
    this.emit('failed', JOB_TASK, this.done.get(JOB_TASK) ?? 0, { error: message, error_kind: kind });
  }
}
