/** The settings of a diagnosis run and the progress it reports. */
import type { FilterBy, RankBy } from 'flame-sdk/ml';
import type { NodeDataSpec } from './load.js';
import type { DiagnosisResult } from './output.js';
import type { DiagnosisTaskName } from './request.js';

/** Progress of a diagnosis as the aggregator (or a node, while loading) sees it. */
export interface DiagnosisProgress {
  /** Phase running: load, features, train, pca, confident-learning, decide, done. */
  phase: string;
  /** Overall completeness, 0–1 (never decreases). */
  progress: number;
  /** The node reporting (node-local phases), or the aggregator. */
  node: string;
  /** Task the phase serves, where there is one. */
  task?: DiagnosisTaskName;
}

/** Settings of a diagnosis run (every node must get the same ones, `data` aside). */
export interface DiagnosisOptions {
  /** Tasks to run (default every task). */
  tasks?: readonly DiagnosisTaskName[];
  /** Echoed as the response's `dataset_uuid`. */
  datasetUuid?: string;
  /** The class list of the request: its order is the output's; a node label outside it is an error. Default: the sorted union of the nodes' classes. */
  classes?: readonly string[];
  /** Where each node's images are, by node id (`*` for any node); default the node's first data source. */
  data?: Record<string, NodeDataSpec>;
  /**
   * A user ONNX classifier (N×C×H×W pixels on a 0–1 scale → N×classes probabilities or logits, in
   * the order of the classes): its probabilities replace the federated cross-validated ones.
   */
  classifier?: string;
  /** A user ONNX feature extractor (N×C×H×W → N×D) instead of the built-in random convolutions. */
  featureExtractor?: string;
  /** Cross-validation folds (default 5); each fold's head is solved in closed form (src/ml/ridge.ts). */
  folds?: number;
  /**
   * `hflip` (default): the heads also train on left–right mirrored copies and predict from the mean
   * of an image's and its mirror's features; `none` where a mirrored image would be of another class.
   */
  augment?: 'hflip' | 'none';
  /** Confident learning's filter and ranking (default `both` / `self_confidence`). */
  filterBy?: FilterBy;
  /** Confident learning's ranking within class pruning (default `self_confidence`). */
  rankBy?: RankBy;
  /** Largest pHash Hamming distance of a candidate near-duplicate pair (default `DEFAULT_DUPLICATE_DISTANCE`, 10). */
  duplicateDistance?: number;
  /** Lowest signature correlation that confirms a candidate pair (default `DEFAULT_MIN_CORRELATION`, 0.98). */
  duplicateCorrelation?: number;
  /** Compute the 2-D projection of every image (default true). */
  projections?: boolean;
  /** Images decoded at once per node (default 4). */
  concurrency?: number;
  /** Called with progress (runs in-process only: on the aggregator and, while loading, on nodes). */
  onProgress?: (p: DiagnosisProgress) => void;
  /** Called on the aggregator with each task's merged result as soon as it is ready. */
  onTaskResult?: (task: DiagnosisResult['tasks'][number]) => void;
  /**
   * Store the trained `mislabeled_images` classifier on the hub (model.ts): the aggregator submits
   * it as a second final result named `classifier.onnx` (raw ONNX bytes, before the response) and
   * the response carries its id as `model_result_id` and its output order as `model_labels`.
   * Needs the `mislabeled_images` task with the built-in federated training (no `classifier`,
   * no `featureExtractor`: a user extractor's graph cannot be merged into the model).
   */
  modelResult?: boolean;
}
