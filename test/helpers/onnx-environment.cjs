/**
 * Jest environment for tests that run onnxruntime-node: the native addon builds its output arrays
 * in Node's main realm, while jest's sandbox has its own typed-array constructors, so
 * onnxruntime-common's `instanceof Float32Array` checks fail. Sharing the main realm's
 * typed-array constructors with the sandbox fixes that. Use with a
 * `@jest-environment ./test/helpers/onnx-environment.cjs` docblock.
 */
const { TestEnvironment } = require('jest-environment-node');

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of [
      'Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array',
      'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer',
    ]) {
      this.global[name] = globalThis[name];
    }
  }
}

module.exports = OnnxEnvironment;
