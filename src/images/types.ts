/**
 * The seed-000 job contract (diagnosis, cleaning, image metadata) as TypeScript types, field for
 * field. The snake_case names are the wire format: do not rename them.
 */

/** What `get_image_metadata` returns: size, channel count and per-channel mean/std on a 0–1 scale. */
export interface ImageMetadata {
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (as decoded). */
  channels: number;
  /** Height in pixels. */
  height: number;
  /** Width in pixels. */
  width: number;
  /** Per-channel mean, 0–1 scale (8-bit values / 255, 16-bit values / 65535). */
  mean: number[];
  /** Per-channel population standard deviation, 0–1 scale. */
  std_dev: number[];
}

/** 2-D (or other) embeddings of an image for plotting, keyed by name (e.g. `"2d"`). */
export type Projections = Record<string, number[]>;

/** One image of a dataset: its stable id, its metadata and, in analysis results, the verdict fields. */
export interface DatasetFile extends ImageMetadata {
  /** Stable id of the file: reruns over the same source give the same uuid. */
  uuid: string;
  /** The class the image is (now) filed under. */
  current_class?: string;
  /** The class the image had before diagnosis/cleaning. */
  original_class?: string;
  /** Embeddings for plotting, in results (`"2d"`: the point on the diagnosis's 2-D map); empty in requests. */
  projections?: Projections;
  /** Predicted class probabilities (one vector per model/fold). */
  confidence_vectors?: number[][];
}

/** Files of one class keyed by path (or by file uuid in results, as the seed's examples do). */
export type ClassFiles = Record<string, DatasetFile>;

/** A labelled image dataset: class names, pooled per-channel mean/std, and files per class. */
export interface Dataset {
  /** The class names, in the dataset's order (the classifier's label indices follow it). */
  classes: string[];
  /** Pooled per-channel mean over every pixel of every file, 0–1 scale. */
  mean: number[];
  /** Pooled per-channel population standard deviation, 0–1 scale. */
  std_dev: number[];
  /** class → path → file. Every class of `classes` has an entry, possibly empty. */
  class_files: Record<string, ClassFiles>;
}

/** The analyses a diagnosis job can run: the seed's two, and the quality tasks added beside them. */
export type TaskName = 'mislabeled_images' | 'lighting_conditions' | 'blurry' | 'odd_size' | 'duplicates';

/** One requested task of a diagnosis job. */
export interface TaskRequest {
  /** Which analysis to run. */
  name: TaskName;
}

/** `start_diagnosis_job`'s request. */
export interface DiagnosisRequest {
  /** True: run every task when `tasks` is left out or empty; false: run exactly the listed tasks. */
  auto: boolean;
  /** The platform's id of the dataset, echoed in the output. */
  dataset_uuid: string;
  /** The images to diagnose, grouped by their current class. */
  dataset: Dataset;
  /** The tasks to run, each at most once. */
  tasks: TaskRequest[];
}

/** A task's verdict: the files it flags and the ones it keeps. */
export interface TaskResult {
  /** The task this verdict is for. */
  name: TaskName;
  /** The input split in two, each a full dataset with its own pooled mean/std. */
  datasets: {
    /** The files the task flags (e.g. likely mislabelled, too dark). */
    outliers: Dataset;
    /** The files the task found nothing wrong with. */
    inliers: Dataset;
  };
}

/** `start_diagnosis_job`'s output. */
export interface DiagnosisResponse {
  /** The request's `dataset_uuid`. */
  dataset_uuid: string;
  /** One verdict per task that ran. */
  tasks: TaskResult[];
}

/** `start_cleaning_job`'s request: the diagnosis results, applied automatically or as given. */
export interface CleaningRequest {
  /**
   * True: relabel the mislabelled outliers whose suggested class is confident enough, drop the other
   * outliers; false: `tasks` carries a reviewer's decisions, and every outlier left in it is acted on.
   */
  auto: boolean;
  /** The platform's id of the dataset, echoed in the output. */
  dataset_uuid: string;
  /** The diagnosis verdicts to clean by (a diagnosis output's `tasks`, possibly edited by a person). */
  tasks: TaskResult[];
}

/** `start_cleaning_job`'s output. */
export interface CleaningResponse {
  /** The request's `dataset_uuid`. */
  dataset_uuid: string;
  /** Files relabelled (their `current_class` is the corrected class). */
  corrected: Dataset;
  /** Files dropped from the dataset. */
  removed: Dataset;
}

/** `get_image_metadata`'s request. */
export interface ImageMetadataRequest {
  /** Path of the image file to read. */
  path: string;
}

/** `get_image_metadata`'s output. */
export type ImageMetadataResponse = ImageMetadata;

/**
 * Per-channel sums over the pixels of one image or of many (pooled), on a 0–1 scale.
 * Mean and std of a union of images follow exactly from the summed sums, so a node sends these
 * (a few numbers) and never pixels. See `pooling.ts` for how differing channel counts merge.
 */
export interface ChannelSums {
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: number;
  /** Pixels summed per channel (every channel has the same count). */
  pixel_count: number;
  /** Σ value per channel. */
  sum: number[];
  /** Σ value² per channel. */
  sum_sq: number[];
}

/** The sums of one image, with its size. */
export interface ImageStats extends ChannelSums {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}
