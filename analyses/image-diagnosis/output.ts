/**
 * The seed-000 diagnosis response, merged on the aggregator from the nodes' verdicts: per task an
 * `outliers` and an `inliers` dataset over the global classes, with mean/std pooled exactly from
 * the nodes' channel sums and one entry per file, keyed by its path as the request keys files (so
 * a response can be checked against a reference by path, and fed back as a cleaning request).
 *
 * Beyond seed 000's fields, each file carries (documented extensions):
 * - `node`: the node holding the image, `path`: its key there;
 * - flagged files: `issue` (`mislabeled`, `too_dark`, `too_bright`, `blurry`, `odd_area`,
 *   `odd_aspect`, `exact_duplicate`, `near_duplicate`) and `score` (self-confidence, luma
 *   percentile, log10 sharpness, log2 distance, Hamming distance); duplicates also
 *   `duplicate_of` / `duplicate_of_node`. The opt-in tasks: `grayscale` (score: channel
 *   difference, 0–1), `low_information` (grey-level entropy, bits), `odd_aspect_ratio`
 *   (min(w/h, h/w)), `out_of_distribution` (distance to the nearest class mean in within-class
 *   standard deviations).
 * Files are grouped under their `current_class` (the suggested class for mislabeled images, the
 * given class otherwise). The response also has `skipped`: images a node could not read, and,
 * when the run stored its trained classifier (`modelResult`, model.ts), `model_result_id` (hub id of
 * the final result `classifier.onnx`) and `model_labels` (the model's output order).
 */
import { meanStd, mergeSums, type ChannelSums, type Dataset, type DatasetFile } from 'flame-sdk/images';
import type { DiagnosisTaskName } from './request.js';

/** A file as a node reports it (before a task's verdict). */
export interface NodeFile extends Omit<DatasetFile, 'current_class'> {
  /** Its key in the node's data. */
  path: string;
  /** The class the node has it under. */
  original_class: string;
}

/** A flagged file of one task: index into the node's files and what was found. */
export interface FlaggedFile {
  /** Index into the node's `files`. */
  index: number;
  /** What was found (`mislabeled`, `too_dark`, …; see the module comment). */
  issue: string;
  /** How strongly (the unit depends on the issue; see the module comment). */
  score: number;
  /** Mislabeled: the suggested class. */
  current_class?: string;
  [extra: string]: unknown;
}

/** What a node sends in the decide round. */
export interface NodeTaskVerdicts {
  /** The node's id. */
  node: string;
  /** Every image the node read, in its order (flags index into it). */
  files: NodeFile[];
  /** Files it could not read: `path` and `error`. */
  skipped: Array<{ path: string; error: string }>;
  /**
   * Per task name, the node's verdict: the files it `flagged`, and the channel sums of the flagged
   * files (`outlierSums`) and of the others (`inlierSums`), for the pooled mean/std of each side.
   */
  tasks: Record<string, { flagged: FlaggedFile[]; outlierSums: ChannelSums; inlierSums: ChannelSums }>;
  [key: string]: unknown;
}

/** A file of the response: seed 000's fields and the extensions above. */
export interface DiagnosedFile extends DatasetFile {
  /** The node holding the image. */
  node: string;
  /** Its key on that node. */
  path: string;
  /** Flagged files: what was found. */
  issue?: string;
  /** Flagged files: how strongly. */
  score?: number;
  [extra: string]: unknown;
}

/** A dataset of the response. */
export interface DiagnosedDataset extends Dataset {
  class_files: Record<string, Record<string, DiagnosedFile>>;
}

/**
 * One task's result.
 *
 * @property datasets.__type.outliers The files the task flagged.
 * @property datasets.__type.inliers The other files.
 */
export interface DiagnosisTaskResult {
  /** The task. */
  name: DiagnosisTaskName;
  /** Every file of the run, split by the task's verdict. */
  datasets: { outliers: DiagnosedDataset; inliers: DiagnosedDataset };
}

/** The response: seed 000's `{dataset_uuid, tasks}` plus `skipped`. */
export interface DiagnosisResult {
  /** The request's `dataset_uuid`. */
  dataset_uuid: string;
  /** One result per requested task, in output order. */
  tasks: DiagnosisTaskResult[];
  /** Images a node could not read: the `node`, the `path` and the `error`. */
  skipped: Array<{ node: string; path: string; error: string }>;
  /** Hub id of the stored classifier (final result `classifier.onnx`), with `modelResult` only. */
  model_result_id?: string;
  /** Class names in the order of the stored classifier's outputs, with `modelResult` only. */
  model_labels?: string[];
  /**
   * Hospitals the run went on without (quorum), when any: their images are not in the result. Each
   * names the `node`, the `round` it was dropped in and the `reason`.
   */
  excluded_nodes?: Array<{ node: string; round: number; reason: string }>;
  [key: string]: unknown;
}

function emptyDataset(classes: readonly string[], sums: ChannelSums): DiagnosedDataset {
  const { mean, std_dev } = meanStd(sums);
  return { classes: [...classes], mean, std_dev, class_files: Object.fromEntries(classes.map((c) => [c, {}])) };
}

/** Merges the nodes' verdicts into the response (nodes in the given order; files in node order). */
export function assembleResponse(datasetUuid: string, tasks: readonly DiagnosisTaskName[], classes: readonly string[], nodes: readonly NodeTaskVerdicts[]): DiagnosisResult {
  // Paths normally differ across nodes; if two nodes use the same one, the later file is keyed node:path.
  const keys = nodes.map(() => [] as string[]);
  const used = new Set<string>();
  nodes.forEach((n, k) =>
    n.files.forEach((f) => {
      const key = used.has(f.path) ? `${n.node}:${f.path}` : f.path;
      used.add(key);
      keys[k].push(key);
    }),
  );
  const out: DiagnosisTaskResult[] = tasks.map((name) => {
    const parts = nodes.map((n) => n.tasks[name]);
    const outliers = emptyDataset(classes, mergeSums(parts.map((p) => p.outlierSums)));
    const inliers = emptyDataset(classes, mergeSums(parts.map((p) => p.inlierSums)));
    nodes.forEach((n, k) => {
      const flagged = new Map(n.tasks[name].flagged.map((f) => [f.index, f]));
      n.files.forEach((f, i) => {
        const flag = flagged.get(i);
        const { index: _index, ...verdict } = flag ?? { index: i };
        void _index;
        const current = (flag?.current_class as string | undefined) ?? f.original_class;
        const file: DiagnosedFile = { ...f, current_class: current, node: n.node, ...verdict };
        const target = flag ? outliers : inliers;
        (target.class_files[current] ??= {})[keys[k][i]] = file;
      });
    });
    return { name, datasets: { outliers, inliers } };
  });
  return { dataset_uuid: datasetUuid, tasks: out, skipped: nodes.flatMap((n) => n.skipped.map((s) => ({ node: n.node, ...s }))) };
}

/** One row of the summary table: outliers of a task on a node in a class. */
export interface SummaryRow {
  /** The task. */
  task: string;
  /** The node. */
  node: string;
  /** The class (the files' original class). */
  class: string;
  /** Files of that class on that node that the task flagged. */
  outliers: number;
  /** Files of that class on that node (outliers + inliers). */
  files: number;
}

/** Per task, node and class: how many files were flagged (rows with no file are left out). */
export function summaryRows(result: DiagnosisResult): SummaryRow[] {
  const rows = new Map<string, SummaryRow>();
  for (const t of result.tasks) {
    for (const [kind, ds] of Object.entries(t.datasets)) {
      for (const files of Object.values(ds.class_files)) {
        for (const f of Object.values(files)) {
          const cls = f.original_class ?? f.current_class ?? '';
          const key = `${t.name}\n${f.node}\n${cls}`;
          const row = rows.get(key) ?? { task: t.name, node: f.node, class: cls, outliers: 0, files: 0 };
          row.files++;
          if (kind === 'outliers') row.outliers++;
          rows.set(key, row);
        }
      }
    }
  }
  return [...rows.values()].sort((a, b) => cmp(a.task, b.task) || cmp(a.node, b.node) || cmp(a.class, b.class));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The paths of every file a task flagged (e.g. to compare runs or score against a truth file). */
export function flaggedPaths(result: DiagnosisResult, task: DiagnosisTaskName): Set<string> {
  const t = result.tasks.find((x) => x.name === task);
  const out = new Set<string>();
  if (!t) return out;
  for (const files of Object.values(t.datasets.outliers.class_files)) for (const f of Object.values(files)) out.add(f.path);
  return out;
}
