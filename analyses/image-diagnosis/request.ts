/**
 * The diagnosis request (seed 000's `start_diagnosis_job`), checked field by field: every problem
 * is a BadRequestError naming the field at fault.
 */
import { BadRequestError } from '../../src/errors.js';
import type { Dataset, DatasetFile } from '../../src/images/index.js';

/** Every task the diagnosis runs, in output order. */
export const DIAGNOSIS_TASKS = ['mislabeled_images', 'lighting_conditions', 'blurry', 'odd_size', 'duplicates'] as const;

/** A task name: seed 000's two plus `blurry`, `odd_size` and `duplicates`. */
export type DiagnosisTaskName = (typeof DIAGNOSIS_TASKS)[number];

/** A seed-000 diagnosis request, with the extended task names. */
export interface DiagnosisJobRequest {
  auto: boolean;
  dataset_uuid: string;
  /** The images (paths local to the node that runs it); absent when nodes read their own data sources. */
  dataset?: Dataset;
  tasks: Array<{ name: DiagnosisTaskName }>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function numberArray(v: unknown, field: string): void {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) throw new BadRequestError(`${field} must be an array of numbers`);
}

/** Checks a seed-000 `dataset` object: classes, class_files keyed by known classes, a uuid per file. */
export function checkDataset(v: unknown, field = 'dataset'): Dataset {
  if (!isObject(v)) throw new BadRequestError(`${field} must be an object`);
  const { classes, class_files } = v;
  if (!Array.isArray(classes) || classes.length === 0 || classes.some((c) => typeof c !== 'string' || c === '')) {
    throw new BadRequestError(`${field}.classes must be a non-empty array of class names`);
  }
  if (new Set(classes).size !== classes.length) throw new BadRequestError(`${field}.classes lists a class twice`);
  if (!isObject(class_files)) throw new BadRequestError(`${field}.class_files must be an object of class → files`);
  for (const [cls, files] of Object.entries(class_files)) {
    if (!classes.includes(cls)) throw new BadRequestError(`${field}.class_files.${cls}: unknown class "${cls}" (not in ${field}.classes)`);
    if (!isObject(files)) throw new BadRequestError(`${field}.class_files.${cls} must be an object of path → file`);
    for (const [p, f] of Object.entries(files)) {
      const where = `${field}.class_files.${cls}[${JSON.stringify(p)}]`;
      if (!isObject(f)) throw new BadRequestError(`${where} must be an object`);
      if (typeof f.uuid !== 'string' || f.uuid === '') throw new BadRequestError(`${where}.uuid is missing`);
    }
  }
  for (const key of ['mean', 'std_dev'] as const) if (v[key] !== undefined) numberArray(v[key], `${field}.${key}`);
  const files = class_files as Record<string, Record<string, DatasetFile>>;
  return {
    classes: classes as string[],
    mean: (v.mean as number[] | undefined) ?? [],
    std_dev: (v.std_dev as number[] | undefined) ?? [],
    class_files: Object.fromEntries((classes as string[]).map((c) => [c, files[c] ?? {}])),
  };
}

/**
 * Checks a request (parsed JSON or text). `auto: true` with no or empty `tasks` means every task.
 * @param needDataset whether `dataset` is required (a one-node run of the request's own images)
 */
export function parseDiagnosisRequest(input: unknown, options: { needDataset?: boolean } = {}): DiagnosisJobRequest {
  let v = input;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch (e) {
      throw new BadRequestError(`request is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
  }
  if (!isObject(v)) throw new BadRequestError('request must be a JSON object');
  if (typeof v.dataset_uuid !== 'string' || v.dataset_uuid === '') throw new BadRequestError('request.dataset_uuid is missing (a non-empty string)');
  if (v.auto !== undefined && typeof v.auto !== 'boolean') throw new BadRequestError('request.auto must be true or false');
  const auto = v.auto === true;
  let tasks: DiagnosisJobRequest['tasks'];
  if (v.tasks === undefined || (Array.isArray(v.tasks) && v.tasks.length === 0)) {
    if (!auto) throw new BadRequestError('request.tasks is missing: list tasks, or set auto: true to run every task');
    tasks = DIAGNOSIS_TASKS.map((name) => ({ name }));
  } else {
    if (!Array.isArray(v.tasks)) throw new BadRequestError('request.tasks must be an array of {"name": ...}');
    tasks = v.tasks.map((t, i) => {
      const name = isObject(t) ? t.name : undefined;
      if (typeof name !== 'string') throw new BadRequestError(`request.tasks[${i}].name is missing`);
      if (!(DIAGNOSIS_TASKS as readonly string[]).includes(name)) {
        throw new BadRequestError(`request.tasks[${i}].name: unknown task "${name}" (known: ${DIAGNOSIS_TASKS.join(', ')})`);
      }
      return { name: name as DiagnosisTaskName };
    });
    const names = tasks.map((t) => t.name);
    if (new Set(names).size !== names.length) throw new BadRequestError('request.tasks lists a task twice');
  }
  if (v.dataset === undefined && options.needDataset) throw new BadRequestError('request.dataset is missing');
  const dataset = v.dataset === undefined ? undefined : checkDataset(v.dataset, 'request.dataset');
  return { auto, dataset_uuid: v.dataset_uuid, tasks, ...(dataset ? { dataset } : {}) };
}
