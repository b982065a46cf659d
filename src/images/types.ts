/**
 * The seed-000 job contract (diagnosis, cleaning, image metadata) as TypeScript types, field for
 * field. The snake_case names are the wire format: do not rename them.
 */

/** What `get_image_metadata` returns: size, channel count and per-channel mean/std on a 0–1 scale. */
export interface ImageMetadata {
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (as decoded). */
  channels: number;
  height: number;
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
  projections?: Projections;
  /** Predicted class probabilities (one vector per model/fold). */
  confidence_vectors?: number[][];
}

/** Files of one class keyed by path (or by file uuid in results, as the seed's examples do). */
export type ClassFiles = Record<string, DatasetFile>;

/** A labelled image dataset: class names, pooled per-channel mean/std, and files per class. */
export interface Dataset {
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
  name: TaskName;
}

/** `start_diagnosis_job`'s request. */
export interface DiagnosisRequest {
  auto: boolean;
  dataset_uuid: string;
  dataset: Dataset;
  tasks: TaskRequest[];
}

/** A task's verdict: the files it flags and the ones it keeps. */
export interface TaskResult {
  name: TaskName;
  datasets: {
    outliers: Dataset;
    inliers: Dataset;
  };
}

/** `start_diagnosis_job`'s output. */
export interface DiagnosisResponse {
  dataset_uuid: string;
  tasks: TaskResult[];
}

/** `start_cleaning_job`'s request: the diagnosis results, applied automatically or as given. */
export interface CleaningRequest {
  auto: boolean;
  dataset_uuid: string;
  tasks: TaskResult[];
}

/** `start_cleaning_job`'s output. */
export interface CleaningResponse {
  dataset_uuid: string;
  /** Files relabelled (their `current_class` is the corrected class). */
  corrected: Dataset;
  /** Files dropped from the dataset. */
  removed: Dataset;
}

/** `get_image_metadata`'s request. */
export interface ImageMetadataRequest {
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
  width: number;
  height: number;
}
