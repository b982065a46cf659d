/**
 * The classifier a diagnosis trains for `mislabeled_images`, as one ONNX model that runs without
 * this SDK — onnxruntime-node, or `flame worker --model classifier.onnx --labels classifier.labels.txt`.
 *
 * What it is: the built-in random-convolution extractor (the very spec every node used, rebuilt
 * from the pooled dataset mean/std, the common image shape and the run's filter count), the pooled
 * feature standardiser, and one softmax head: the average of the K cross-validation fold heads
 * (ridge heads scaled by the run's temperature), each weighted by the number of training images of
 * its fold (summed over the nodes). The heads are linear, so this averages the folds' logits — an
 * ensemble of the K models in one head, trained on every image (each image is in K−1 of the K
 * training sets) at no extra round. When the run mirrored images (`augment`), the model also
 * averages each image's features with its mirror's, as the diagnosis predicted. Its accuracy on the training
 * images is in-sample; the diagnosis' `confidence_vectors` stay the out-of-sample ones.
 *
 * Input: `pixels`, N×C×H×W float32 on a 0–1 scale, C×H×W fixed to the most common thumbnail shape
 * (C = 3 if any image has colour) — the worker's `--model` convention: it decodes each file, drops
 * alpha, converts channels (grey↔RGB by luma/repetition) and resizes bilinearly to that shape, as
 * the diagnosis fits thumbnails. Images of exactly that shape get identical pixels in both; images
 * larger than 64 px a side were area-averaged to a thumbnail by the diagnosis but are resized
 * directly by the worker, so their probabilities can differ a little.
 * Output: `probabilities`, N×classes in the order of {@link TrainedModel.labels}.
 */
import { BadRequestError } from 'flame-sdk';
import { exportClassifierOnnx } from 'flame-sdk/ml';
import { DEFAULT_CONV_FEATURES, randomConvSpec, type ConvFeatureSpec } from 'flame-sdk/ml';
import type { ImageShape } from 'flame-sdk/ml';
import { averageWeights, type SoftmaxWeights, type Standardizer } from 'flame-sdk/ml';

/** Name of the hub final result holding the model (raw ONNX bytes). */
export const MODEL_RESULT_NAME = 'classifier.onnx';

/** Per-channel value the extractor normalises with, from the dataset's mean or std (grey = luma of RGB). */
function channelNorm(values: readonly number[], channels: number): number[] {
  const grey = values.length >= 3 ? 0.299 * values[0] + 0.587 * values[1] + 0.114 * values[2] : values[0] ?? 0.5;
  if (channels === 1) return [grey];
  return values.length >= 3 ? values.slice(0, 3) : [grey, grey, grey];
}

/**
 * Random filters the built-in extractor uses for a dataset of `images` images: 16 per 2,500
 * images, from 16 to 64 (the default's 2,048 features from 7,500 images on). The fold sums grow
 * with the square of the features (64 filters: 2,049² per fold) and their solve with its cube, so
 * small runs stay small; on the 300 images of data/sample 16, 32 and 64 filters found the same
 * flips (19 of 24) and 8 filters 14 (EXPERIMENTS.md). Filters are a prefix of the same seeded draw.
 * A run that trains no heads (`trains` false) uses all 64.
 */
export function featureFilterCount(images: number, trains = true): number {
  // Without training (the outliers task, projections) nothing grows with the square: all 64.
  if (!trains) return DEFAULT_CONV_FEATURES.filterCount;
  return Math.min(DEFAULT_CONV_FEATURES.filterCount, 16 * Math.max(1, Math.ceil(images / 2500)));
}

/**
 * Whether the heads train on left–right mirrored copies too, and predict from the mean of an
 * image's and its mirror's features (`augment`, default `hflip`; EXPERIMENTS.md measures it).
 * Turn it off where a mirrored image is not of the same class.
 */
export function mirrors(options: { augment?: 'hflip' | 'none' }): boolean {
  return (options.augment ?? 'hflip') === 'hflip';
}

/** The built-in extractor's spec for a dataset: its input shape, pooled per-channel mean/std and filter count. */
export function diagnosisConvSpec(shape: ImageShape, mean: readonly number[], std: readonly number[], filterCount: number = DEFAULT_CONV_FEATURES.filterCount): ConvFeatureSpec {
  return randomConvSpec({
    input: shape,
    filterCount,
    mean: channelNorm(mean, shape.channels),
    std: channelNorm(std, shape.channels).map((v) => Math.max(v, 1e-3)),
  });
}

/** A trained classifier ready to be written or served. */
export interface TrainedModel {
  /** The ONNX model bytes. */
  bytes: Uint8Array;
  /** Class names in the order of the model's outputs (the `--labels` of `flame worker`). */
  labels: string[];
  /** The input shape (C, H, W) the model takes. */
  input: ImageShape;
}

/** One fold's final head and how many images (over every node) it was trained on. */
export interface FoldHead {
  /** The fold's softmax head after its last round. */
  weights: SoftmaxWeights;
  /** Training images of the fold over every node: its weight in the average. */
  count: number;
}

/**
 * The model of a diagnosis: extractor spec + pooled standardiser + the training-count-weighted
 * average of the fold heads (see the module comment).
 */
export function trainedModel(spec: ConvFeatureSpec, standardizer: Standardizer, folds: readonly FoldHead[], labels: readonly string[], options: { mirror?: boolean } = {}): TrainedModel {
  if (folds.length === 0) throw new BadRequestError('classifier export: no trained fold');
  const head = averageWeights(folds);
  if (head.classes !== labels.length) throw new BadRequestError(`classifier export: the head has ${head.classes} outputs for ${labels.length} classes`);
  return { bytes: exportClassifierOnnx(spec, standardizer, head, { mirror: options.mirror ?? false }), labels: [...labels], input: { ...spec.input } };
}

/** The labels file of a model: one class name per line, in output order (what `flame worker --labels FILE` reads). */
export function labelsFileText(labels: readonly string[]): string {
  return `${labels.join('\n')}\n`;
}

/** Where the labels file of a model at `modelPath` goes: `x.onnx` → `x.labels.txt` beside it. */
export function labelsPathFor(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, '') + '.labels.txt';
}
