/**
 * Validation of a seed-000 cleaning request (`{auto, dataset_uuid, tasks: [{name, datasets:
 * {outliers, inliers}}]}`) read from JSON. Every error names the field that is wrong, as a path
 * into the request (`tasks[1].datasets.outliers.class_files["Bag"]["/d/1.png"].current_class`).
 */
import type { CleaningRequest, Dataset, DatasetFile } from 'flame-sdk/images';
import { DEFAULT_LIMITS, overLimit } from 'flame-sdk';
import { describeValue, fail, integerAt, isObject, numberArrayAt } from 'flame-sdk';

function className(v: unknown, classes: readonly string[], where: string): string {
  if (typeof v !== 'string') fail(where, `expected a class name, got ${JSON.stringify(v)}`);
  if (!classes.includes(v)) fail(where, `unknown class ${JSON.stringify(v)} (classes: ${classes.map((c) => JSON.stringify(c)).join(', ')})`);
  return v;
}

function validateFile(f: unknown, classes: readonly string[], where: string): DatasetFile {
  if (!isObject(f)) fail(where, 'expected a file object');
  if (typeof f.uuid !== 'string' || f.uuid === '') fail(`${where}.uuid`, 'missing (a non-empty string)');
  const channels = integerAt(f.channels, `${where}.channels`, { max: 4 });
  integerAt(f.width, `${where}.width`);
  integerAt(f.height, `${where}.height`);
  const mean = numberArrayAt(f.mean, `${where}.mean`);
  const std = numberArrayAt(f.std_dev, `${where}.std_dev`);
  if (mean.length !== channels) fail(`${where}.mean`, `has ${mean.length} values for ${channels} channel(s)`);
  if (std.length !== channels) fail(`${where}.std_dev`, `has ${std.length} values for ${channels} channel(s)`);
  if (std.some((s) => s < 0)) fail(`${where}.std_dev`, 'has a negative value');
  if (f.current_class !== undefined) className(f.current_class, classes, `${where}.current_class`);
  if (f.original_class !== undefined) className(f.original_class, classes, `${where}.original_class`);
  if (f.confidence_vectors !== undefined) {
    if (!Array.isArray(f.confidence_vectors)) fail(`${where}.confidence_vectors`, 'expected an array of probability vectors');
    f.confidence_vectors.forEach((v, i) => {
      const w = `${where}.confidence_vectors[${i}]`;
      const vec = numberArrayAt(v, w);
      if (vec.length !== classes.length) fail(w, `has ${vec.length} values for ${classes.length} classes`);
      if (vec.some((p) => p < 0)) fail(w, 'has a negative value (expected probabilities)');
    });
  }
  if (f.projections !== undefined) {
    if (!isObject(f.projections)) fail(`${where}.projections`, 'expected an object of named coordinate arrays');
    for (const [name, p] of Object.entries(f.projections)) numberArrayAt(p, `${where}.projections[${JSON.stringify(name)}]`);
  }
  return f as unknown as DatasetFile;
}

/**
 * Check a seed-000 dataset; `where` names it in errors. More than `maxClasses` classes are refused
 * before anything else is looked at (every file's confidence vector has one value per class).
 */
export function validateDataset(ds: unknown, where: string, maxClasses: number = DEFAULT_LIMITS.maxClasses): Dataset {
  if (!isObject(ds)) fail(where, 'missing (a dataset {classes, mean, std_dev, class_files})');
  if (Array.isArray(ds.classes) && ds.classes.length > maxClasses) throw overLimit(`${where}.classes has too many classes`, ds.classes.length, 'maxClasses', maxClasses);
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

/**
 * A task of a cleaning request; names other than the seed's two are allowed (see README).
 *
 * @property datasets.__type.outliers The files the task flagged: the ones cleaning acts on.
 * @property datasets.__type.inliers The files it kept; optional, since cleaning reads only the outliers.
 */
export interface CleaningTask {
  /** The diagnosis task the verdict is from, e.g. `mislabeled_images`. */
  name: string;
  /** The task's verdict, split like a diagnosis output's. */
  datasets: { outliers: Dataset; inliers?: Dataset };
}

/** A validated cleaning request: like {@link CleaningRequest} but with any task name. */
export interface ValidCleaningRequest extends Omit<CleaningRequest, 'tasks'> {
  /** The verdicts to clean by, in the request's order. */
  tasks: CleaningTask[];
  /**
   * Optional (an extension of seed 000): with `auto: true`, act on a mislabeled outlier only when
   * its given class's confidence is at most this, in [0, 1] (`CleaningOptions.maxGivenConfidence`,
   * which overrides it; default `DEFAULT_MAX_GIVEN_CONFIDENCE`).
   */
  max_given_confidence?: number;
}

/**
 * Validate parsed JSON as a cleaning request. `inliers` may be left out of a task (cleaning reads
 * only the outliers), every other seed-000 field is required; `max_given_confidence` is optional (a
 * number in [0, 1]). Each dataset, and all of them
 * together, may name at most `options.maxClasses` classes (default `DEFAULT_LIMITS.maxClasses`).
 * @param name what errors call the request (e.g. its file name)
 * @throws BadRequestError naming the first wrong field, or the cap
 */
export function parseCleaningRequest(value: unknown, name = 'request', options: { maxClasses?: number } = {}): ValidCleaningRequest {
  const maxClasses = options.maxClasses ?? DEFAULT_LIMITS.maxClasses;
  if (!isObject(value)) fail(name, 'expected a JSON object {auto, dataset_uuid, tasks}');
  if (typeof value.auto !== 'boolean') fail(`${name}.auto`, 'missing (true: clean automatically, false: apply the reviewed outliers)');
  if (typeof value.dataset_uuid !== 'string' || value.dataset_uuid === '') fail(`${name}.dataset_uuid`, 'missing (a non-empty string)');
  if (!Array.isArray(value.tasks)) fail(`${name}.tasks`, 'missing (an array of {name, datasets: {outliers, inliers}})');
  const bar = value.max_given_confidence;
  if (bar !== undefined && !(typeof bar === 'number' && bar >= 0 && bar <= 1)) {
    fail(`${name}.max_given_confidence`, `expected a number in [0, 1] (the most confidence a mislabeled outlier's given class may have to be acted on), got ${describeValue(bar)}`);
  }
  const seen = new Set<string>();
  // Cleaning works on the union of every dataset's classes: it is capped as well.
  const union = new Set<string>();
  const count = (ds: Dataset, where: string): void => {
    for (const c of ds.classes) union.add(c);
    if (union.size > maxClasses) throw overLimit(`${where}.classes brings the request's classes to too many`, union.size, 'maxClasses', maxClasses);
  };
  value.tasks.forEach((t: unknown, i) => {
    const w = `${name}.tasks[${i}]`;
    if (!isObject(t)) fail(w, 'expected {name, datasets: {outliers, inliers}}');
    if (typeof t.name !== 'string' || t.name === '') fail(`${w}.name`, 'missing (e.g. "mislabeled_images")');
    if (seen.has(t.name)) fail(`${w}.name`, `task ${JSON.stringify(t.name)} appears twice`);
    seen.add(t.name);
    if (!isObject(t.datasets)) fail(`${w}.datasets`, 'missing ({outliers, inliers})');
    count(validateDataset(t.datasets.outliers, `${w}.datasets.outliers`, maxClasses), `${w}.datasets.outliers`);
    if (t.datasets.inliers !== undefined) count(validateDataset(t.datasets.inliers, `${w}.datasets.inliers`, maxClasses), `${w}.datasets.inliers`);
  });
  return value as unknown as ValidCleaningRequest;
}
