/**
 * Validation of a seed-000 cleaning request (`{auto, dataset_uuid, tasks: [{name, datasets:
 * {outliers, inliers}}]}`) read from JSON. Every error names the field that is wrong, as a path
 * into the request (`tasks[1].datasets.outliers.class_files["Bag"]["/d/1.png"].current_class`).
 */
import { BadRequestError } from '../../src/errors.js';
import type { CleaningRequest, Dataset, DatasetFile } from '../../src/images/types.js';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(where: string, problem: string): never {
  throw new BadRequestError(`${where}: ${problem}`);
}

function numberArray(v: unknown, where: string): number[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) fail(where, 'expected an array of finite numbers');
  return v as number[];
}

function positiveInt(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(where, `expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function className(v: unknown, classes: readonly string[], where: string): string {
  if (typeof v !== 'string') fail(where, `expected a class name, got ${JSON.stringify(v)}`);
  if (!classes.includes(v)) fail(where, `unknown class ${JSON.stringify(v)} (classes: ${classes.map((c) => JSON.stringify(c)).join(', ')})`);
  return v;
}

function validateFile(f: unknown, classes: readonly string[], where: string): DatasetFile {
  if (!isObject(f)) fail(where, 'expected a file object');
  if (typeof f.uuid !== 'string' || f.uuid === '') fail(`${where}.uuid`, 'missing (a non-empty string)');
  const channels = positiveInt(f.channels, `${where}.channels`);
  if (channels > 4) fail(`${where}.channels`, `expected 1 to 4, got ${channels}`);
  positiveInt(f.width, `${where}.width`);
  positiveInt(f.height, `${where}.height`);
  const mean = numberArray(f.mean, `${where}.mean`);
  const std = numberArray(f.std_dev, `${where}.std_dev`);
  if (mean.length !== channels) fail(`${where}.mean`, `has ${mean.length} values for ${channels} channel(s)`);
  if (std.length !== channels) fail(`${where}.std_dev`, `has ${std.length} values for ${channels} channel(s)`);
  if (std.some((s) => s < 0)) fail(`${where}.std_dev`, 'has a negative value');
  if (f.current_class !== undefined) className(f.current_class, classes, `${where}.current_class`);
  if (f.original_class !== undefined) className(f.original_class, classes, `${where}.original_class`);
  if (f.confidence_vectors !== undefined) {
    if (!Array.isArray(f.confidence_vectors)) fail(`${where}.confidence_vectors`, 'expected an array of probability vectors');
    f.confidence_vectors.forEach((v, i) => {
      const w = `${where}.confidence_vectors[${i}]`;
      const vec = numberArray(v, w);
      if (vec.length !== classes.length) fail(w, `has ${vec.length} values for ${classes.length} classes`);
      if (vec.some((p) => p < 0)) fail(w, 'has a negative value (expected probabilities)');
    });
  }
  if (f.projections !== undefined) {
    if (!isObject(f.projections)) fail(`${where}.projections`, 'expected an object of named coordinate arrays');
    for (const [name, p] of Object.entries(f.projections)) numberArray(p, `${where}.projections[${JSON.stringify(name)}]`);
  }
  return f as unknown as DatasetFile;
}

/** Check a seed-000 dataset; `where` names it in errors. */
export function validateDataset(ds: unknown, where: string): Dataset {
  if (!isObject(ds)) fail(where, 'missing (a dataset {classes, mean, std_dev, class_files})');
  if (!Array.isArray(ds.classes) || ds.classes.some((c) => typeof c !== 'string')) fail(`${where}.classes`, 'missing (an array of class names)');
  const classes = ds.classes as string[];
  if (new Set(classes).size !== classes.length) fail(`${where}.classes`, 'lists a class twice');
  if (!isObject(ds.class_files)) fail(`${where}.class_files`, 'missing (class → path → file)');
  const uuids = new Map<string, string>();
  for (const [cls, files] of Object.entries(ds.class_files)) {
    const w = `${where}.class_files[${JSON.stringify(cls)}]`;
    className(cls, classes, w);
    if (!isObject(files)) fail(w, 'expected an object of files keyed by path');
    for (const [key, f] of Object.entries(files)) {
      const fw = `${w}[${JSON.stringify(key)}]`;
      const file = validateFile(f, classes, fw);
      const other = uuids.get(file.uuid);
      if (other !== undefined) fail(`${fw}.uuid`, `${JSON.stringify(file.uuid)} is also the uuid of ${other}`);
      uuids.set(file.uuid, fw);
    }
  }
  return ds as unknown as Dataset;
}

/** A task of a cleaning request; names other than the seed's two are allowed (see README). */
export interface CleaningTask {
  name: string;
  datasets: { outliers: Dataset; inliers?: Dataset };
}

/** A validated cleaning request: like {@link CleaningRequest} but with any task name. */
export interface ValidCleaningRequest extends Omit<CleaningRequest, 'tasks'> {
  tasks: CleaningTask[];
}

/**
 * Validate parsed JSON as a cleaning request. `inliers` may be left out of a task (cleaning reads
 * only the outliers), every other seed-000 field is required.
 * @param name what errors call the request (e.g. its file name)
 * @throws BadRequestError naming the first wrong field
 */
export function parseCleaningRequest(value: unknown, name = 'request'): ValidCleaningRequest {
  if (!isObject(value)) fail(name, 'expected a JSON object {auto, dataset_uuid, tasks}');
  if (typeof value.auto !== 'boolean') fail(`${name}.auto`, 'missing (true: clean automatically, false: apply the reviewed outliers)');
  if (typeof value.dataset_uuid !== 'string' || value.dataset_uuid === '') fail(`${name}.dataset_uuid`, 'missing (a non-empty string)');
  if (!Array.isArray(value.tasks)) fail(`${name}.tasks`, 'missing (an array of {name, datasets: {outliers, inliers}})');
  const seen = new Set<string>();
  value.tasks.forEach((t: unknown, i) => {
    const w = `${name}.tasks[${i}]`;
    if (!isObject(t)) fail(w, 'expected {name, datasets: {outliers, inliers}}');
    if (typeof t.name !== 'string' || t.name === '') fail(`${w}.name`, 'missing (e.g. "mislabeled_images")');
    if (seen.has(t.name)) fail(`${w}.name`, `task ${JSON.stringify(t.name)} appears twice`);
    seen.add(t.name);
    if (!isObject(t.datasets)) fail(`${w}.datasets`, 'missing ({outliers, inliers})');
    validateDataset(t.datasets.outliers, `${w}.datasets.outliers`);
    if (t.datasets.inliers !== undefined) validateDataset(t.datasets.inliers, `${w}.datasets.inliers`);
  });
  return value as unknown as ValidCleaningRequest;
}
