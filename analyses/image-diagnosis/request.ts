/**
 * The one check of a diagnosis request (seed 000's `start_diagnosis_job`), used by the job API
 * (apps/jobs), `diagnose()` and `flame diagnose`: every field the seed lists, each error a
 * BadRequestError naming the field as a path into the request and what was expected, e.g.
 * `request.dataset.class_files["Bag"]["/d/1.png"].uuid: missing (a non-empty string)`. Files are
 * checked for shape only; whether they exist is the runner's business.
 */
import path from 'node:path';
import { datasetFromFolder, type Dataset, type DatasetFile } from 'flame-sdk/images';
import { parseRequestJson } from 'flame-sdk';
import { DEFAULT_LIMITS, overLimit } from 'flame-sdk';
import { booleanAt, describeValue, fail, integerAt, isObject, nonEmptyString, numberArrayAt, objectAt, type Json } from 'flame-sdk';

/** The tasks the diagnosis runs by default (`auto: true` without `tasks`), in output order. */
export const DIAGNOSIS_TASKS = ['mislabeled_images', 'lighting_conditions', 'blurry', 'odd_size', 'duplicates'] as const;

/**
 * Tasks run only when a request lists them (CleanVision-style checks: checks.ts, and the
 * out-of-distribution score: phases/outliers.ts), so `auto` runs and their output stay as they were.
 */
export const OPT_IN_DIAGNOSIS_TASKS = ['grayscale', 'low_information', 'odd_aspect_ratio', 'outliers'] as const;

/** Every task a request may list: the default ones, then the opt-in ones. */
export const KNOWN_DIAGNOSIS_TASKS = [...DIAGNOSIS_TASKS, ...OPT_IN_DIAGNOSIS_TASKS] as const;

/** A task name: seed 000's two, `blurry`, `odd_size`, `duplicates` and the opt-in ones. */
export type DiagnosisTaskName = (typeof KNOWN_DIAGNOSIS_TASKS)[number];

/** A seed-000 diagnosis request, with the extended task names. */
export interface DiagnosisJobRequest {
  /** True: run every task when `tasks` is left out or empty; false: `tasks` must list them. */
  auto: boolean;
  /** The platform's id of the dataset, echoed in the response. */
  dataset_uuid: string;
  /** The images (paths local to the node that runs it); absent when nodes read their own data sources. */
  dataset?: Dataset;
  /** The tasks to run, each `{name}` at most once, in the request's order. */
  tasks: Array<{ name: DiagnosisTaskName }>;
}

function checkFile(f: unknown, where: string): void {
  const file = objectAt(f, where, 'a file object {uuid, width, height, channels, mean, std_dev}');
  nonEmptyString(file.uuid, `${where}.uuid`);
  if (file.width !== undefined) integerAt(file.width, `${where}.width`);
  if (file.height !== undefined) integerAt(file.height, `${where}.height`);
  const channels = file.channels === undefined ? undefined : integerAt(file.channels, `${where}.channels`, { max: 4 });
  if (file.mean !== undefined) numberArrayAt(file.mean, `${where}.mean`, channels);
  if (file.std_dev !== undefined) numberArrayAt(file.std_dev, `${where}.std_dev`, channels);
}

/**
 * Checks a seed-000 `dataset`: at most `maxClasses` classes (counted before anything else, as the
 * diagnosis' memory grows with them), class_files keyed by known classes, one unique uuid per file.
 * Returns it with `mean`/`std_dev` defaulted to `[]` and every class in `class_files`.
 */
export function checkDataset(v: unknown, where = 'dataset', maxClasses: number = DEFAULT_LIMITS.maxClasses): Dataset {
  const ds = objectAt(v, where, 'an object {classes, mean, std_dev, class_files}');
  const { classes } = ds;
  if (!Array.isArray(classes) || classes.length === 0) fail(`${where}.classes`, `expected a non-empty array of class names, got ${classes === undefined ? 'nothing' : describeValue(classes)}`);
  if (classes.length > maxClasses) throw overLimit(`${where}.classes has too many classes`, classes.length, 'maxClasses', maxClasses);
  const first = new Map<unknown, number>();
  classes.forEach((c, i) => {
    if (typeof c !== 'string' || c === '') fail(`${where}.classes[${i}]`, `expected a non-empty class name, got ${describeValue(c)}`);
    if (first.has(c)) fail(`${where}.classes[${i}]`, `class ${JSON.stringify(c)} is listed twice`);
    first.set(c, i);
  });
  const mean = ds.mean === undefined ? [] : numberArrayAt(ds.mean, `${where}.mean`);
  const std = ds.std_dev === undefined ? [] : numberArrayAt(ds.std_dev, `${where}.std_dev`);
  if (!isObject(ds.class_files)) fail(`${where}.class_files`, `expected an object class → {path → file}, got ${ds.class_files === undefined ? 'nothing' : describeValue(ds.class_files)}`);
  const uuids = new Map<string, string>();
  for (const [cls, files] of Object.entries(ds.class_files)) {
    const cw = `${where}.class_files[${JSON.stringify(cls)}]`;
    if (!first.has(cls)) fail(cw, `class ${JSON.stringify(cls)} is not in ${where}.classes (${classes.map((c) => JSON.stringify(c)).join(', ')})`);
    for (const [p, f] of Object.entries(objectAt(files, cw, 'an object path → file'))) {
      const fw = `${cw}[${JSON.stringify(p)}]`;
      checkFile(f, fw);
      const uuid = (f as Json).uuid as string;
      const other = uuids.get(uuid);
      if (other !== undefined) fail(`${fw}.uuid`, `${JSON.stringify(uuid)} is also the uuid of ${other}`);
      uuids.set(uuid, fw);
    }
  }
  const files = ds.class_files as Record<string, Record<string, DatasetFile>>;
  return { classes: classes as string[], mean, std_dev: std, class_files: Object.fromEntries((classes as string[]).map((c) => [c, files[c] ?? {}])) };
}

function checkTasks(v: unknown, auto: boolean): DiagnosisJobRequest['tasks'] {
  if (v !== undefined && !Array.isArray(v)) fail('request.tasks', `expected an array of {"name": ...}, got ${describeValue(v)}`);
  if (v === undefined || v.length === 0) {
    if (!auto) fail('request.tasks', 'missing or empty: list tasks, or set "auto": true to run every task');
    return DIAGNOSIS_TASKS.map((name) => ({ name }));
  }
  const seen = new Set<string>();
  return v.map((t: unknown, i) => {
    const w = `request.tasks[${i}]`;
    const name = nonEmptyString(objectAt(t, w, 'an object {"name": ...}').name, `${w}.name`, `one of ${KNOWN_DIAGNOSIS_TASKS.join(', ')}`);
    if (!(KNOWN_DIAGNOSIS_TASKS as readonly string[]).includes(name)) fail(`${w}.name`, `unknown task ${JSON.stringify(name)} (known: ${KNOWN_DIAGNOSIS_TASKS.join(', ')})`);
    if (seen.has(name)) fail(`${w}.name`, `task ${JSON.stringify(name)} is listed twice`);
    seen.add(name);
    return { name: name as DiagnosisTaskName };
  });
}

/** What {@link parseDiagnosisRequest} requires beyond the fields' shapes. */
export interface DiagnosisRequestOptions {
  /** `dataset` is required: the request's own images are diagnosed (no nodes with data sources). */
  needDataset?: boolean;
  /**
   * `auto` is required, as in a seed-000 request from the platform or a request file (the job API
   * and `flame diagnose`); a request built in code may leave it out (false).
   */
  requireAuto?: boolean;
  /** Most classes `dataset` may list (default `DEFAULT_LIMITS.maxClasses`). */
  maxClasses?: number;
}

/**
 * Checks a diagnosis request (JSON text, as the seed passes it, or parsed), in this order: the JSON,
 * `auto` (true or false), `dataset_uuid`, `dataset`, `tasks` (an array of `{name}` with known names,
 * each once; may be left out or empty only with `auto: true`, meaning every default task, {@link DIAGNOSIS_TASKS}).
 * @throws BadRequestError naming the first wrong field, or the cap
 */
export function parseDiagnosisRequest(input: unknown, options: DiagnosisRequestOptions = {}): DiagnosisJobRequest {
  const v = parseRequestJson(input);
  if (!isObject(v)) fail('request', `expected a JSON object {auto, dataset_uuid, dataset, tasks}, got ${describeValue(v)}`);
  const auto = v.auto === undefined && !options.requireAuto ? false : booleanAt(v.auto, 'request.auto');
  const datasetUuid = nonEmptyString(v.dataset_uuid, 'request.dataset_uuid');
  const dataset = v.dataset === undefined && !options.needDataset ? undefined : checkDataset(v.dataset, 'request.dataset', options.maxClasses);
  const tasks = checkTasks(v.tasks, auto);
  return { auto, dataset_uuid: datasetUuid, tasks, ...(dataset ? { dataset } : {}) };
}

/**
 * A seed-000 diagnosis request for a folder of class sub-folders (`root/cat/1.png`): its dataset
 * (uuids, sizes and per-channel statistics of every readable image) and the tasks (default every
 * task, `auto: true`). What `flame diagnose --folder DIR --write-request FILE` writes.
 */
export async function diagnosisRequestFromFolder(root: string, options: { tasks?: DiagnosisTaskName[]; datasetUuid?: string } = {}): Promise<DiagnosisJobRequest & { dataset: Dataset }> {
  const { dataset } = await datasetFromFolder(root);
  const tasks = options.tasks ?? [...DIAGNOSIS_TASKS];
  return { auto: options.tasks === undefined, dataset_uuid: options.datasetUuid ?? path.basename(path.resolve(root)), dataset, tasks: tasks.map((name) => ({ name })) };
}
