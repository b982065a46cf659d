/**
 * Exports a trained classifier as one ONNX model that onnxruntime-node (or any ONNX runtime)
 * runs without this SDK: pixels → random-conv features → standardisation → softmax head.
 * This is also the form in which a trained model can be handed back as a "user classifier".
 */
import { BadRequestError } from '../errors.js';
import { type ConvFeatureSpec, appendConvFeatures, convFeatureDim } from './features.js';
import { GraphBuilder, attr, encodeModel } from './onnx-writer.js';
import type { SoftmaxWeights, Standardizer } from './softmax.js';

/** Appends standardisation, the linear layer and the softmax; returns the probabilities' name. */
function appendHead(g: GraphBuilder, features: string, standardizer: Standardizer, weights: SoftmaxWeights, outputName: string): string {
  const { dim, classes } = weights;
  if (standardizer.mean.length !== dim || standardizer.invStd.length !== dim) {
    throw new BadRequestError(`classifier export: standardizer has ${standardizer.mean.length} features, head expects ${dim}`);
  }
  const centred = g.op('Sub', [features, g.floats('feature_mean', [dim], standardizer.mean)]);
  const scaled = g.op('Mul', [centred, g.floats('feature_inv_std', [dim], standardizer.invStd)]);
  const logits = g.op('Gemm', [scaled, g.floats('head_w', [dim, classes], weights.w), g.floats('head_b', [classes], weights.b)]);
  return g.op('Softmax', [logits], { axis: attr.int(-1) }, outputName);
}

/**
 * One model `pixels` (N×C×H×W, 0–1 scale) → `probabilities` (N×classes) from the built-in
 * extractor's spec, the pooled standardisation and the trained head; with `mirror`, the features
 * are the mean of the image's and its left–right mirror's.
 */
export function exportClassifierOnnx(spec: ConvFeatureSpec, standardizer: Standardizer, weights: SoftmaxWeights, options: { mirror?: boolean } = {}): Uint8Array {
  const dim = convFeatureDim(spec);
  if (dim !== weights.dim) throw new BadRequestError(`classifier export: extractor makes ${dim} features, head expects ${weights.dim}`);
  const { channels, height, width } = spec.input;
  const g = new GraphBuilder('flame_classifier');
  g.input('pixels', 'float32', ['batch', channels, height, width]);
  let features = appendConvFeatures(g, 'pixels', spec);
  if (options.mirror) {
    // The mean of the image's and its left–right mirror's features (Slice backwards along the width).
    const mirrored = g.op('Slice', ['pixels', g.int64s('mirror_starts', [1], [-1]), g.int64s('mirror_ends', [1], [-(width + 1)]), g.int64s('mirror_axes', [1], [3]), g.int64s('mirror_steps', [1], [-1])]);
    const both = g.op('Add', [features, appendConvFeatures(g, mirrored, spec)]);
    features = g.op('Mul', [both, g.floats('half', [], [0.5])]);
  }
  appendHead(g, features, standardizer, weights, 'probabilities');
  g.output('probabilities', 'float32', ['batch', weights.classes]);
  return encodeModel(g.build(), { docString: 'flame-sdk classifier: random-conv features + federated softmax head' });
}

/**
 * The head alone, `features` (N×dim) → `probabilities`, for use after a user-supplied extractor
 * whose graph this SDK cannot merge.
 */
export function exportHeadOnnx(standardizer: Standardizer, weights: SoftmaxWeights): Uint8Array {
  const g = new GraphBuilder('flame_head');
  g.input('features', 'float32', ['batch', weights.dim]);
  appendHead(g, 'features', standardizer, weights, 'probabilities');
  g.output('probabilities', 'float32', ['batch', weights.classes]);
  return encodeModel(g.build(), { docString: 'flame-sdk softmax head' });
}
