/**
 * The ML layer: ONNX model writing, image features, softmax heads solved in closed form with
 * cross-validation, federated confident learning and a federated 2-D projection.
 *
 * @module flame-sdk/ml
 */
export * from './onnx-writer.js';
export * from './pixels.js';
export * from './random.js';
export * from './features.js';
export * from './softmax.js';
export * from './ridge.js';
export * from './cross-validation.js';
export * from './classifier-export.js';
export * from './confident-learning.js';
export * from './projection.js';
