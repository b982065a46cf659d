/**
 * The cleaning job (seed 000's `start_cleaning_job`): from a diagnosis result, which files to
 * relabel (`corrected`) and which to drop (`removed`). Pure: it reads no image and writes nothing;
 * see apply.ts for writing a cleaned copy. The rules are in analyses/image-cleaning/README.md.
 */
import { BadRequestError } from 'flame-sdk';
import type { CleaningRequest, CleaningResponse, ClassFiles, Dataset, DatasetFile } from 'flame-sdk/images';
import { buildDataset } from './pooled.js';
import { parseCleaningRequest, type ValidCleaningRequest } from './request.js';

/** The task whose outliers carry suggested classes. */
export const MISLABELED_TASK = 'mislabeled_images';

/**
 * With `auto: true`, a suggested class is applied only when the mean probability the file's
 * `confidence_vectors` give it reaches this bar. Chosen on data/sample (README.md): a wrong relabel
 * is worse than a removal, and below 0.7 most relabels there hit images that were right.
 */
export const DEFAULT_MIN_CONFIDENCE = 0.7;

/**
 * With `auto: true`, a `mislabeled_images` outlier is acted on (relabelled or removed) only when the
 * mean probability its `confidence_vectors` give its own (given) class is at most this bar; the
 * others are left as they are, for a reviewer (`CleaningPlan.deferred`). The diagnosis flags an
 * image when its class looks unlikely relative to the class's typical confidence, which on 28×28
 * Fashion-MNIST also catches many hard but correct images (3 of 4 flags on data/sample); those whose
 * given class gets at most 1 % are nearly all real mislabels (analyses/image-diagnosis/EXPERIMENTS.md:
 * cleaning precision 0.93–0.98 on five planted samples, against 0.48–0.58 when acting on every
 * outlier). 1 acts on every outlier, as seed 000's rules do.
 */
export const DEFAULT_MAX_GIVEN_CONFIDENCE = 0.01;

/** Options of {@link clean}. */
export interface CleaningOptions {
  /** Bar for relabelling with `auto: true`, in [0, 1]; default {@link DEFAULT_MIN_CONFIDENCE}. */
  minConfidence?: number;
  /**
   * With `auto: true`, act on a mislabeled outlier only when its given class's confidence is at
   * most this, in [0, 1]; default the request's `max_given_confidence`, else {@link DEFAULT_MAX_GIVEN_CONFIDENCE}. Below 1, an outlier without
   * confidence vectors is left too (its confidence is unknown); 1 acts on every outlier.
   */
  maxGivenConfidence?: number;
  /** Most classes the request may name (default `DEFAULT_LIMITS.maxClasses`; see {@link parseCleaningRequest}). */
  maxClasses?: number;
}

/** What cleaning does with one file, and why. Files that are kept as they are have no decision. */
export interface CleaningDecision {
  /** The file's uuid. */
  uuid: string;
  /** The file's key in `class_files` (its path). */
  key: string;
  /** `corrected`: relabelled into `current_class`; `removed`: dropped. */
  action: 'corrected' | 'removed';
  /** The class the file was filed under (its `original_class`). */
  given_class: string;
  /** The class it is filed under after cleaning (`given_class` when removed). */
  current_class: string;
  /** Mean probability of the suggested class, when there was a suggestion with confidence vectors. */
  confidence: number | null;
  /** One line per task that acted on the file, e.g. `lighting_conditions: outlier`. */
  reasons: string[];
  /** The file as it appears in the response. */
  file: DatasetFile;
}

/** {@link planCleaning}'s result: the classes of the response and the files it acts on. */
export interface CleaningPlan {
  /** The request's `dataset_uuid`. */
  dataset_uuid: string;
  /** Every class of the request, in order: the classes of both outputs. */
  classes: string[];
  /** One decision per file that is corrected or removed. */
  decisions: CleaningDecision[];
  /** Outliers that `auto` leaves as they are (their verdict is not confident enough), with why. */
  deferred: DeferredFile[];
}

/** An outlier `auto` leaves as it is, for a reviewer. */
export interface DeferredFile {
  /** The file's uuid. */
  uuid: string;
  /** Its key in `class_files` (its path). */
  key: string;
  /** One line per task verdict that was not acted on, e.g. `mislabeled_images: given class Coat has confidence 0.120 > 0.010, left for review`. */
  reasons: string[];
}

interface Occurrence {
  task: string;
  outlier: boolean;
  /** The class the file is filed under in this task's dataset. */
  filedUnder: string;
  /** That dataset's `classes` (indexes of `confidence_vectors`). */
  classes: string[];
  key: string;
  file: DatasetFile;
}

/**
 * Every file of a request by uuid, each with its occurrences (the mislabeled task's first, outliers
 * before inliers), in the order files first appear in the request; and the union of the classes.
 */
function collectFiles(req: ValidCleaningRequest): { classes: string[]; files: Map<string, Occurrence[]> } {
  const classes: string[] = [];
  const order: string[] = [];
  const byUuid = new Map<string, Occurrence[]>();
  for (const task of req.tasks) {
    for (const [outlier, ds] of [[true, task.datasets.outliers], [false, task.datasets.inliers]] as const) {
      if (!ds) continue;
      for (const c of ds.classes) if (!classes.includes(c)) classes.push(c);
      for (const [filedUnder, files] of Object.entries(ds.class_files)) {
        for (const [key, file] of Object.entries(files)) {
          let list = byUuid.get(file.uuid);
          if (!list) byUuid.set(file.uuid, (list = []));
          if (list.length === 0) order.push(file.uuid);
          list.push({ task: task.name, outlier, filedUnder, classes: ds.classes, key, file });
        }
      }
    }
  }
  const rank = (o: Occurrence) => (o.task === MISLABELED_TASK ? 0 : 2) + (o.outlier ? 0 : 1);
  const files = new Map<string, Occurrence[]>();
  // a stable sort keeps the request's task order among equal ranks
  for (const uuid of order) files.set(uuid, byUuid.get(uuid)!.sort((a, b) => rank(a) - rank(b)));
  return { classes, files };
}

/** The class a file was filed under before cleaning: its `original_class`, else its class key. */
function givenClass(occ: Occurrence[]): string {
  return occ.find((o) => o.file.original_class !== undefined)?.file.original_class ?? occ[0].filedUnder;
}

/** One file from its occurrences: the first one's fields win, later ones fill what it lacks. */
function mergedFile(occ: Occurrence[]): DatasetFile {
  return Object.assign({}, ...occ.map((o) => o.file).reverse()) as DatasetFile;
}

/**
 * The dataset a request describes: every file of any task (outliers and inliers), filed under the
 * class it had before diagnosis (`original_class`, else its class key), keyed by its `path` field
 * when it has one (results keyed by uuid carry the path there), else by its key in the request.
 * `applyCleaning` uses it as the source when no other is given: every task of a diagnosis splits
 * the whole dataset into outliers and inliers.
 */
export function requestSource(request: CleaningRequest | ValidCleaningRequest | unknown, options: Pick<CleaningOptions, 'maxClasses'> = {}): Dataset {
  const { classes, files } = collectFiles(parseCleaningRequest(request, 'request', options));
  const out: Record<string, ClassFiles> = {};
  for (const occ of files.values()) {
    const given = givenClass(occ);
    const { current_class: _c, ...file } = mergedFile(occ);
    (out[given] ??= {})[sourcePath(occ[0].key, file)] = { ...file, original_class: given };
  }
  return buildDataset(classes, out);
}

/**
 * Where a file of a result lives: its `path` field when it has one (the diagnosis keys files by
 * uuid and puts the path there), else its key.
 */
export function sourcePath(key: string, file: DatasetFile): string {
  const p = (file as DatasetFile & { path?: unknown }).path;
  return typeof p === 'string' && p !== '' ? p : key;
}

/** Mean probability of `cls` over the file's confidence vectors (each normalised to sum 1). */
function confidenceOf(o: Occurrence, cls: string): number | null {
  const vectors = o.file.confidence_vectors;
  const i = o.classes.indexOf(cls);
  if (!vectors || vectors.length === 0 || i < 0) return null;
  let total = 0;
  for (const v of vectors) {
    const sum = v.reduce((a, b) => a + b, 0);
    total += sum > 0 ? v[i] / sum : 0;
  }
  return total / vectors.length;
}

function fmt(p: number): string {
  return p.toFixed(3);
}

/**
 * Decide, file by file, what cleaning does (see the README for the rules). Files are identified by
 * `uuid` across tasks; decisions come in the order files first appear in the request.
 * @throws BadRequestError naming the field when the request is malformed
 */
export function planCleaning(request: CleaningRequest | ValidCleaningRequest | unknown, options: CleaningOptions = {}): CleaningPlan {
  const req = parseCleaningRequest(request, 'request', { maxClasses: options.maxClasses });
  const minConfidence = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;
  if (!(minConfidence >= 0 && minConfidence <= 1)) {
    throw new BadRequestError(`minConfidence: expected a number in [0, 1], got ${minConfidence}`);
  }
  const maxGiven = options.maxGivenConfidence ?? req.max_given_confidence ?? DEFAULT_MAX_GIVEN_CONFIDENCE;
  if (!(maxGiven >= 0 && maxGiven <= 1)) {
    throw new BadRequestError(`maxGivenConfidence: expected a number in [0, 1], got ${maxGiven}`);
  }
  const { classes, files } = collectFiles(req);
  const decisions: CleaningDecision[] = [];
  const deferred: CleaningPlan['deferred'] = [];
  for (const [uuid, occ] of files) {
    const outliers = occ.filter((o) => o.outlier);
    if (outliers.length === 0) continue;
    const given = givenClass(occ);
    const removeReasons: string[] = [];
    const deferReasons: string[] = [];
    let relabel: { to: string; confidence: number | null; reason: string } | undefined;
    let confidence: number | null = null;
    for (const o of outliers) {
      if (o.task !== MISLABELED_TASK) {
        removeReasons.push(`${o.task}: outlier`);
        continue;
      }
      if (req.auto && maxGiven < 1) {
        const own = confidenceOf(o, given);
        if (own === null || own > maxGiven) {
          deferReasons.push(own === null ? `${o.task}: no confidence_vectors, left for review` : `${o.task}: given class ${given} has confidence ${fmt(own)} > ${fmt(maxGiven)}, left for review`);
          continue;
        }
      }
      const suggested = o.file.current_class ?? o.filedUnder;
      confidence = suggested === given ? null : confidenceOf(o, suggested);
      if (suggested === given) {
        removeReasons.push(`${o.task}: outlier without a suggested class`);
      } else if (!req.auto) {
        relabel = { to: suggested, confidence, reason: `${o.task}: relabelled ${given} → ${suggested} by the reviewer` };
      } else if (confidence === null) {
        removeReasons.push(`${o.task}: suggested ${suggested} without confidence_vectors`);
      } else if (confidence < minConfidence) {
        removeReasons.push(`${o.task}: suggested ${suggested} with confidence ${fmt(confidence)} < ${fmt(minConfidence)}`);
      } else {
        relabel = { to: suggested, confidence, reason: `${o.task}: relabelled ${given} → ${suggested} (confidence ${fmt(confidence)})` };
      }
    }
    if (removeReasons.length === 0 && !relabel) {
      deferred.push({ uuid, key: occ[0].key, reasons: deferReasons });
      continue;
    }
    const merged = mergedFile(occ);
    const removed = removeReasons.length > 0;
    const current = removed || !relabel ? given : relabel.to;
    decisions.push({
      uuid,
      key: occ[0].key,
      action: removed ? 'removed' : 'corrected',
      given_class: given,
      current_class: current,
      confidence,
      reasons: removed ? (relabel ? [relabel.reason + ', but removed', ...removeReasons] : removeReasons) : [relabel!.reason],
      file: { ...merged, current_class: current, original_class: given },
    });
  }
  return { dataset_uuid: req.dataset_uuid, classes, decisions, deferred };
}

/**
 * Run the cleaning job: `corrected` holds the relabelled files (filed under their new class,
 * `current_class` = new class, `original_class` = the class they had), `removed` the dropped files
 * (filed under their class). Each is a seed-000 dataset whose mean/std are pooled from the files it
 * holds (see pooled.ts). Files neither relabelled nor dropped are in neither.
 * @throws BadRequestError naming the field when the request is malformed
 */
export function clean(request: CleaningRequest | ValidCleaningRequest | unknown, options: CleaningOptions = {}): CleaningResponse {
  return responseOf(planCleaning(request, options));
}

/** The seed-000 response of a plan. */
export function responseOf(plan: CleaningPlan): CleaningResponse {
  const corrected: Record<string, ClassFiles> = {};
  const removed: Record<string, ClassFiles> = {};
  for (const d of plan.decisions) {
    const into = d.action === 'corrected' ? corrected : removed;
    (into[d.current_class] ??= {})[d.key] = d.file;
  }
  return {
    dataset_uuid: plan.dataset_uuid,
    corrected: buildDataset(plan.classes, corrected),
    removed: buildDataset(plan.classes, removed),
  };
}
