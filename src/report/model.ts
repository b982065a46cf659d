/**
 * What a diagnosis report shows, computed from a seed-000 diagnosis result: one entry per image
 * (identified by `uuid` across tasks) with its class, node, 2-D position and the tasks that flag it,
 * plus counts per class and per node. Pure: no I/O.
 */
import { BadRequestError } from '../errors.js';
import { isObject, type Json } from '../validation.js';
import type { DatasetFile, DiagnosisResponse } from '../images/types.js';

/** Node name of files that carry no `node` field (a local, single-node run). */
export const LOCAL_NODE = 'local';

/** The task whose outliers carry suggested classes. */
const MISLABELED_TASK = 'mislabeled_images';

/** The task whose outliers name the image they duplicate (`duplicate_of`, `duplicate_of_node`). */
const DUPLICATES_TASK = 'duplicates';

/** One image of the report. */
export interface ReportImage {
  uuid: string;
  /** Its key in `class_files` (a path, or its uuid as the diagnosis writes them). */
  key: string;
  /** Where the file is: its `path` field (set by the diagnosis), else its key. */
  path: string;
  /** The node holding it (`node` field of the file, else {@link LOCAL_NODE}). */
  node: string;
  /** The class it is filed under (`original_class`, else its class key). */
  given_class: string;
  /** The class the mislabeled task suggests, when it differs from `given_class`. */
  suggested_class?: string;
  /** Mean probability of `suggested_class` over the file's confidence vectors (each normalised). */
  confidence?: number;
  /** `projections["2d"]` when present. */
  xy?: [number, number];
  /** Tasks that flag it (outliers), in task order. */
  flagged_by: string[];
  /** Per flagging task, the diagnosis's `issue` (e.g. `too_dark`) and `score` when it gives them. */
  verdicts: Record<string, { issue?: string; score?: number }>;
  /**
   * For an image the duplicates task flags: the image it duplicates (the one kept), by uuid when the
   * result names it, and its node. The kept image is in the result as an inlier of that task.
   */
  duplicate_of?: { uuid?: string; node?: string };
  /** Mean over channels of the per-channel means (0–1): how bright it is. */
  brightness: number;
  width: number;
  height: number;
  channels: number;
}

/** A row of the per-class or per-node table. */
export interface CountRow {
  /** The class or node. */
  name: string;
  images: number;
  /** Outliers per task name. */
  outliers: Record<string, number>;
  /** Images flagged by at least one task. */
  flagged: number;
}

/** What the result's `disclosure` field says (the nodes' minimum counts and the noise added). */
export interface ReportDisclosure {
  /** Minimum count of each node. */
  min_count: Record<string, number>;
  /** Values suppressed or merged, over every node. */
  suppressed_total: number;
  /** Per node: values suppressed or merged. */
  suppressed_by_node: Record<string, number>;
  /** The Laplace noise added to the result's statistics, or null. */
  noise: { scale: number; values: number } | null;
}

/** Everything the report renders. */
export interface ReportModel {
  dataset_uuid: string;
  classes: string[];
  tasks: string[];
  /** Images in the order they first appear in the result. */
  images: ReportImage[];
  per_class: CountRow[];
  per_node: CountRow[];
  /** The result's disclosure record; absent when the result carries none (disclosure control off). */
  disclosure?: ReportDisclosure;
}


function checkDataset(ds: unknown, where: string): void {
  if (!isObject(ds)) throw new BadRequestError(`${where}: missing (a dataset with "classes" and "class_files")`);
  if (!Array.isArray(ds.classes)) throw new BadRequestError(`${where}.classes: missing (an array of class names)`);
  if (!isObject(ds.class_files)) throw new BadRequestError(`${where}.class_files: missing (class → path → file)`);
  for (const [cls, files] of Object.entries(ds.class_files)) {
    if (!isObject(files)) throw new BadRequestError(`${where}.class_files[${JSON.stringify(cls)}]: expected an object of files`);
    for (const [key, f] of Object.entries(files)) {
      const w = `${where}.class_files[${JSON.stringify(cls)}][${JSON.stringify(key)}]`;
      if (!isObject(f) || typeof f.uuid !== 'string') throw new BadRequestError(`${w}.uuid: missing`);
      if (!Array.isArray(f.mean)) throw new BadRequestError(`${w}.mean: missing (per-channel means)`);
    }
  }
}

/**
 * Check that `value` is a diagnosis result ({dataset_uuid, tasks: [{name, datasets: {outliers,
 * inliers}}]}) far enough to be reported; errors name the field.
 */
export function parseDiagnosisResult(value: unknown, name = 'result'): DiagnosisResponse {
  if (!isObject(value)) throw new BadRequestError(`${name}: expected a JSON object {dataset_uuid, tasks}`);
  if (!Array.isArray(value.tasks)) throw new BadRequestError(`${name}.tasks: missing (a diagnosis result has {"tasks": [{name, datasets}]})`);
  value.tasks.forEach((t: unknown, i) => {
    const w = `${name}.tasks[${i}]`;
    if (!isObject(t) || typeof t.name !== 'string') throw new BadRequestError(`${w}.name: missing`);
    if (!isObject(t.datasets)) throw new BadRequestError(`${w}.datasets: missing ({outliers, inliers})`);
    checkDataset(t.datasets.outliers, `${w}.datasets.outliers`);
    if (t.datasets.inliers !== undefined) checkDataset(t.datasets.inliers, `${w}.datasets.inliers`);
  });
  return value as unknown as DiagnosisResponse;
}

function confidenceOf(file: DatasetFile, classes: readonly string[], cls: string): number | undefined {
  const i = classes.indexOf(cls);
  const vectors = file.confidence_vectors;
  if (i < 0 || !Array.isArray(vectors) || vectors.length === 0) return undefined;
  let total = 0;
  for (const v of vectors) {
    const sum = v.reduce((a, b) => a + b, 0);
    total += sum > 0 ? v[i] / sum : 0;
  }
  return total / vectors.length;
}

function countRows(names: string[], images: ReportImage[], tasks: string[], of: (img: ReportImage) => string): CountRow[] {
  const rows = new Map<string, CountRow>();
  for (const n of names) rows.set(n, { name: n, images: 0, outliers: Object.fromEntries(tasks.map((t) => [t, 0])), flagged: 0 });
  for (const img of images) {
    const r = rows.get(of(img))!;
    r.images++;
    for (const t of img.flagged_by) r.outliers[t]++;
    if (img.flagged_by.length > 0) r.flagged++;
  }
  return [...rows.values()];
}

const nonEmpty = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

const finite = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** The `disclosure` field of a result, read leniently (a malformed one is left out). */
function disclosureOf(value: unknown): ReportDisclosure | undefined {
  if (!isObject(value)) return undefined;
  const min = isObject(value.min_count) ? value.min_count : {};
  const suppressed = isObject(value.suppressed) ? value.suppressed : {};
  const byNode = Object.fromEntries(
    Object.entries(suppressed).map(([node, kinds]) => [node, isObject(kinds) ? Object.values(kinds).reduce((a: number, n) => a + finite(n), 0) : 0]),
  );
  const noise = isObject(value.noise) ? { scale: finite(value.noise.scale), values: finite(value.noise.values) } : null;
  return {
    min_count: Object.fromEntries(Object.entries(min).map(([n, m]) => [n, finite(m)])),
    suppressed_total: Object.values(byNode).reduce((a, n) => a + n, 0),
    suppressed_by_node: byNode,
    noise,
  };
}

/**
 * The report model of a diagnosis result.
 * @throws BadRequestError naming the field when `response` is not a diagnosis result
 */
export function buildReportModel(response: DiagnosisResponse | unknown): ReportModel {
  const res = parseDiagnosisResult(response);
  const classes: string[] = [];
  const tasks = res.tasks.map((t) => t.name as string);
  const byUuid = new Map<string, ReportImage>();
  for (const task of res.tasks) {
    for (const [outlier, ds] of [[true, task.datasets.outliers], [false, task.datasets.inliers]] as const) {
      if (!ds) continue;
      for (const c of ds.classes) if (!classes.includes(c)) classes.push(c);
      for (const [filedUnder, files] of Object.entries(ds.class_files)) {
        if (!classes.includes(filedUnder)) classes.push(filedUnder);
        for (const [key, raw] of Object.entries(files)) {
          const file = raw as DatasetFile & { node?: unknown; path?: unknown; issue?: unknown; score?: unknown; duplicate_of?: unknown; duplicate_of_node?: unknown };
          let img = byUuid.get(file.uuid);
          if (!img) {
            const given = file.original_class ?? filedUnder;
            img = {
              uuid: file.uuid,
              key,
              path: typeof file.path === 'string' && file.path !== '' ? file.path : key,
              node: typeof file.node === 'string' && file.node !== '' ? file.node : LOCAL_NODE,
              given_class: given,
              flagged_by: [],
              verdicts: {},
              brightness: file.mean.length ? file.mean.reduce((a, b) => a + b, 0) / file.mean.length : 0,
              width: file.width,
              height: file.height,
              channels: file.channels,
            };
            byUuid.set(file.uuid, img);
          }
          const p = file.projections?.['2d'];
          if (!img.xy && Array.isArray(p) && p.length >= 2 && Number.isFinite(p[0]) && Number.isFinite(p[1])) img.xy = [p[0], p[1]];
          if (outlier && !img.flagged_by.includes(task.name)) {
            img.flagged_by.push(task.name);
            img.verdicts[task.name] = {
              ...(typeof file.issue === 'string' ? { issue: file.issue } : {}),
              ...(typeof file.score === 'number' && Number.isFinite(file.score) ? { score: file.score } : {}),
            };
          }
          if (outlier && task.name === DUPLICATES_TASK && !img.duplicate_of) {
            const [uuid, node] = [nonEmpty(file.duplicate_of), nonEmpty(file.duplicate_of_node)];
            if (uuid !== undefined || node !== undefined) img.duplicate_of = { ...(uuid !== undefined ? { uuid } : {}), ...(node !== undefined ? { node } : {}) };
          }
          if (outlier && task.name === MISLABELED_TASK) {
            const suggested = file.current_class ?? filedUnder;
            if (suggested !== img.given_class) {
              img.suggested_class = suggested;
              img.confidence = confidenceOf(file, ds.classes, suggested);
            }
          }
        }
      }
    }
  }
  const images = [...byUuid.values()];
  for (const img of images) if (!classes.includes(img.given_class)) classes.push(img.given_class);
  const nodes = [...new Set(images.map((i) => i.node))].sort();
  return {
    dataset_uuid: typeof res.dataset_uuid === 'string' ? res.dataset_uuid : '',
    classes,
    tasks,
    images,
    per_class: countRows(classes, images, tasks, (i) => i.given_class),
    per_node: countRows(nodes, images, tasks, (i) => i.node),
    ...(isObject((res as unknown as Json).disclosure) ? { disclosure: disclosureOf((res as unknown as Json).disclosure) } : {}),
  };
}
