/**
 * Checks a diagnosis result (seed 000: `tasks[].datasets.outliers/inliers`) or a cleaning result
 * (`corrected`/`removed`) against a {@link Reference}: per task, which flagged files are real
 * faults. Pure: no I/O, so benchmarks reuse it.
 */
import { BadRequestError } from '../errors.js';
import { isObject } from '../validation.js';
import { confusion, detectionMetrics, type ConfusionCounts, type DetectionMetrics } from './metrics.js';
import { PathMatcher, type Reference } from './reference.js';

/** One row of a check: a task's counts and metrics. */
export interface CheckRow extends DetectionMetrics {
  /** `mislabeled_images`, `lighting_conditions` (diagnosis), or `cleaning` / `corrected` (cleaning). */
  task: string;
  /** Files in the population (null when unknown, then `tn` and `accuracy` are null too). */
  files: number | null;
  /** Files the result flags. */
  flagged: number;
  /** Files the reference says are faulty for this task. */
  faults: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number | null;
  /** Of the true positives that carry a suggested class, the share whose suggestion is the true class. */
  relabel_accuracy: number | null;
  /** Faults of the reference that the result does not list at all (counted in fn). */
  missing: number;
}

/** What {@link checkResult} returns. */
export interface CheckReport {
  kind: 'diagnosis' | 'cleaning';
  rows: CheckRow[];
  /** Things the user should know: unmatched or ambiguous paths, tasks without a reference. */
  warnings: string[];
}

interface ResultFile {
  key: string;
  currentClass?: string;
  originalClass?: string;
}


/** The files of a seed-000 dataset (`class_files`: class → key → file), with their classes. */
function datasetFiles(ds: unknown, where: string): ResultFile[] {
  if (ds === undefined || ds === null) return [];
  if (!isObject(ds) || !isObject(ds.class_files)) throw new BadRequestError(`${where}: expected a dataset with "class_files"`);
  const out: ResultFile[] = [];
  for (const [cls, files] of Object.entries(ds.class_files)) {
    if (!isObject(files)) throw new BadRequestError(`${where}.class_files[${JSON.stringify(cls)}]: expected an object of files`);
    for (const [key, f] of Object.entries(files)) {
      const file = isObject(f) ? f : {};
      out.push({
        key,
        currentClass: typeof file.current_class === 'string' ? file.current_class : cls,
        originalClass: typeof file.original_class === 'string' ? file.original_class : undefined,
      });
    }
  }
  return out;
}

/** Resolves result keys to reference paths; unmatched keys stay distinct negatives. */
class Resolver {
  private readonly matcher: PathMatcher;
  readonly unmatched = new Set<string>();
  readonly ambiguous = new Map<string, string[]>();

  constructor(ref: Reference) {
    this.matcher = new PathMatcher([...ref.mislabeled.keys(), ...ref.lighting.keys(), ...(ref.files ?? [])]);
  }

  id(key: string): string {
    const m = this.matcher.match(key);
    if (m.path !== undefined) return m.path;
    if (m.ambiguous) this.ambiguous.set(key, m.ambiguous);
    else this.unmatched.add(key);
    return `\u0000result:${key}`;
  }
}

function relabelAccuracy(flagged: ResultFile[], resolver: Resolver, ref: Reference): number | null {
  let judged = 0;
  let right = 0;
  for (const f of flagged) {
    const truth = ref.mislabeled.get(resolver.id(f.key));
    if (!truth?.true_class) continue;
    // a suggestion exists when the file's class was changed from the one it was filed under
    const given = f.originalClass ?? truth.given_class;
    if (f.currentClass === undefined || f.currentClass === given) continue;
    judged++;
    if (f.currentClass === truth.true_class) right++;
  }
  return judged === 0 ? null : right / judged;
}

function row(
  task: string,
  flaggedFiles: ResultFile[],
  faults: ReadonlySet<string>,
  resolver: Resolver,
  population: ReadonlySet<string> | number | undefined,
  relabel: number | null,
  missing: number,
): CheckRow {
  const flagged = new Set(flaggedFiles.map((f) => resolver.id(f.key)));
  const c: ConfusionCounts = confusion(flagged, faults, population);
  const files = c.tn === undefined ? null : c.tp + c.fp + c.fn + c.tn;
  return { task, files, flagged: flagged.size, faults: faults.size, tp: c.tp, fp: c.fp, fn: c.fn, tn: c.tn ?? null, ...detectionMetrics(c), relabel_accuracy: relabel, missing };
}

/** Reference faults per diagnosis task name. */
function faultsOf(task: string, ref: Reference): Set<string> | undefined {
  if (task === 'mislabeled_images') return new Set(ref.mislabeled.keys());
  if (task === 'lighting_conditions') return new Set(ref.lighting.keys());
  return undefined;
}

function warnings(resolver: Resolver, ref: Reference, out: string[]): string[] {
  const refHasPopulation = ref.files !== undefined;
  if (resolver.ambiguous.size > 0) {
    const [key, c] = [...resolver.ambiguous][0];
    out.push(`${resolver.ambiguous.size} result file(s) match several reference paths, e.g. ${JSON.stringify(key)} → ${c.join(', ')}; counted as not faulty`);
  }
  // unmatched keys are normal (fine files are not in a reference) unless the reference lists every file
  if (refHasPopulation && resolver.unmatched.size > 0) {
    out.push(`${resolver.unmatched.size} result file(s) are not in the reference's "files", e.g. ${JSON.stringify([...resolver.unmatched][0])}`);
  }
  return out;
}

/** Checks a diagnosis or cleaning result (parsed JSON) against a reference. */
export function checkResult(result: unknown, ref: Reference, name = 'result'): CheckReport {
  if (!isObject(result)) throw new BadRequestError(`${name}: expected a JSON object`);
  const resolver = new Resolver(ref);
  const notes: string[] = [];

  if (Array.isArray(result.tasks)) {
    const rows: CheckRow[] = [];
    result.tasks.forEach((t: unknown, i) => {
      const where = `${name}: tasks[${i}]`;
      if (!isObject(t) || typeof t.name !== 'string') throw new BadRequestError(`${where}: expected {"name", "datasets": {"outliers", "inliers"}}`);
      if (!isObject(t.datasets)) throw new BadRequestError(`${where} (${t.name}): missing "datasets"`);
      const faults = faultsOf(t.name, ref);
      if (!faults) {
        notes.push(`task ${t.name}: no reference for it, skipped`);
        return;
      }
      const outliers = datasetFiles(t.datasets.outliers, `${where}.datasets.outliers`);
      const inliers = datasetFiles(t.datasets.inliers, `${where}.datasets.inliers`);
      const population = new Set([...outliers, ...inliers].map((f) => resolver.id(f.key)));
      const missing = [...faults].filter((p) => !population.has(p)).length;
      if (missing > 0) notes.push(`task ${t.name}: ${missing} fault(s) of the reference are not in the result at all (counted as missed)`);
      const relabel = t.name === 'mislabeled_images' ? relabelAccuracy(outliers, resolver, ref) : null;
      // an outliers-only result has no population of its own: fall back to the reference's count
      const pop = inliers.length > 0 || ref.fileCount === undefined ? population : ref.fileCount;
      rows.push(row(t.name, outliers, faults, resolver, pop, relabel, missing));
    });
    return { kind: 'diagnosis', rows, warnings: warnings(resolver, ref, notes) };
  }

  if ('corrected' in result || 'removed' in result) {
    const corrected = datasetFiles(result.corrected, `${name}: corrected`);
    const removed = datasetFiles(result.removed, `${name}: removed`);
    const mislabeled = new Set(ref.mislabeled.keys());
    const all = new Set([...mislabeled, ...ref.lighting.keys()]);
    const population = ref.files ? new Set(ref.files) : ref.fileCount;
    if (population === undefined) notes.push('the reference gives no "files" (count or list): accuracy and tn are unknown for a cleaning result');
    const rows = [
      row('cleaning', [...corrected, ...removed], all, resolver, population, null, 0),
      row('corrected', corrected, mislabeled, resolver, population, relabelAccuracy(corrected, resolver, ref), 0),
    ];
    return { kind: 'cleaning', rows, warnings: warnings(resolver, ref, notes) };
  }

  throw new BadRequestError(`${name}: neither a diagnosis result ("tasks") nor a cleaning result ("corrected"/"removed")`);
}
