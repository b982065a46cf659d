/**
 * @jest-environment ./test/helpers/onnx-environment.cjs
 */
import * as ort from 'onnxruntime-node';
import { BadRequestError } from '../../src/errors.js';
import { GraphBuilder, attr, encodeModel } from '../../src/ml/onnx-writer.js';

/** Small deterministic pseudo-random numbers so the JS references see the same weights. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 2147483648 - 0.5;
  }
  return out;
}

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

describe('encodeModel', () => {
  it('stores uint8 and float64 constants and runs uint8 and float64 inputs', async () => {
    const g = new GraphBuilder('types');
    g.input('q', 'uint8', [3]);
    g.input('d', 'float64', [2]);
    g.op('Add', ['q', 'qc'], undefined, 'q_sum');
    g.op('Mul', ['d', 'dc'], undefined, 'd_prod');
    g.output('q_sum', 'uint8', [3]);
    g.output('d_prod', 'float64', [2]);
    const graph = g.build();
    const withConstants = {
      ...graph,
      initializers: [
        ...graph.initializers,
        { name: 'qc', type: 'uint8' as const, dims: [3], values: [1, 2, 250] },
        { name: 'dc', type: 'float64' as const, dims: [2], values: [0.1, 1e-300] },
      ],
    };
    const out = await run(encodeModel(withConstants), { q: new ort.Tensor('uint8', Uint8Array.of(4, 5, 5), [3]), d: new ort.Tensor('float64', Float64Array.of(3, 2), [2]) });
    expect(Array.from(out.q_sum.data as Uint8Array)).toEqual([5, 7, 255]);
    // Exactly the float64 products (a float32 store would round 0.1 and flush 1e-300 to 0).
    expect(Array.from(out.d_prod.data as Float64Array)).toEqual([3 * 0.1, 2e-300]);
  });

  it('writes a normalise → Gemm → Softmax model that onnxruntime runs like the JS reference', async () => {
    const [n, d, k] = [5, 7, 3];
    const x = values(n * d, 1);
    const w = values(d * k, 2);
    const b = values(k, 3);
    const mean = 0.1;
    const std = 0.7;
    const g = new GraphBuilder('head');
    g.input('x', 'float32', ['batch', d]);
    const centred = g.op('Sub', ['x', g.floats('mean', [], [mean])]);
    const scaled = g.op('Div', [centred, g.floats('std', [], [std])]);
    const logits = g.op('Gemm', [scaled, g.floats('w', [d, k], w), g.floats('b', [k], b)]);
    g.op('Softmax', [logits], { axis: attr.int(-1) }, 'probs');
    g.output('probs', 'float32', ['batch', k]);
    const out = await run(encodeModel(g.build()), { x: new ort.Tensor('float32', x, [n, d]) });
    const probs = out.probs.data as Float32Array;
    expect(out.probs.dims).toEqual([n, k]);
    for (let i = 0; i < n; i++) {
      const z = Array.from({ length: k }, (_, c) => {
        let s = b[c];
        for (let j = 0; j < d; j++) s += ((x[i * d + j] - mean) / std) * w[j * k + c];
        return s;
      });
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const total = e.reduce((a, v) => a + v, 0);
      for (let c = 0; c < k; c++) expect(probs[i * k + c]).toBeCloseTo(e[c] / total, 5);
    }
  });

  it('writes Conv → Relu → MaxPool → Flatten with int attributes that match a direct convolution', async () => {
    const [n, c, h, wd, f, ks] = [2, 2, 6, 6, 3, 3];
    const x = values(n * c * h * wd, 4);
    const kernel = values(f * c * ks * ks, 5);
    const bias = values(f, 6);
    const g = new GraphBuilder('conv');
    g.input('x', 'float32', ['batch', c, h, wd]);
    const conv = g.op('Conv', ['x', g.floats('k', [f, c, ks, ks], kernel), g.floats('b', [f], bias)], {
      kernel_shape: attr.ints([ks, ks]),
      pads: attr.ints([1, 1, 1, 1]),
    });
    const relu = g.op('Relu', [conv]);
    const pooled = g.op('MaxPool', [relu], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    g.op('Flatten', [pooled], { axis: attr.int(1) }, 'y');
    g.output('y', 'float32', ['batch', f * 9]);
    const out = await run(encodeModel(g.build()), { x: new ort.Tensor('float32', x, [n, c, h, wd]) });
    const y = out.y.data as Float32Array;
    expect(out.y.dims).toEqual([n, f * 9]);
    const convAt = (i: number, o: number, r: number, q: number): number => {
      let s = bias[o];
      for (let ch = 0; ch < c; ch++)
        for (let a = 0; a < ks; a++)
          for (let bb = 0; bb < ks; bb++) {
            const rr = r + a - 1;
            const qq = q + bb - 1;
            if (rr < 0 || qq < 0 || rr >= h || qq >= wd) continue;
            s += x[((i * c + ch) * h + rr) * wd + qq] * kernel[((o * c + ch) * ks + a) * ks + bb];
          }
      return Math.max(0, s);
    };
    for (let i = 0; i < n; i++)
      for (let o = 0; o < f; o++)
        for (let pr = 0; pr < 3; pr++)
          for (let pq = 0; pq < 3; pq++) {
            const m = Math.max(
              convAt(i, o, 2 * pr, 2 * pq),
              convAt(i, o, 2 * pr + 1, 2 * pq),
              convAt(i, o, 2 * pr, 2 * pq + 1),
              convAt(i, o, 2 * pr + 1, 2 * pq + 1),
            );
            expect(y[i * f * 9 + o * 9 + pr * 3 + pq]).toBeCloseTo(m, 5);
          }
  });

  it('stores int64 initializers with negative values (Reshape to -1) and float attributes', async () => {
    const g = new GraphBuilder('reshape');
    g.input('x', 'float32', [2, 3, 4]);
    const flat = g.op('Reshape', ['x', g.int64s('shape', [2], [-1, 4])]);
    g.op('LeakyRelu', [flat], { alpha: attr.float(0.25) }, 'y');
    g.output('y', 'float32', [6, 4]);
    const x = values(24, 7);
    const out = await run(encodeModel(g.build()), { x: new ort.Tensor('float32', x, [2, 3, 4]) });
    expect(out.y.dims).toEqual([6, 4]);
    const y = out.y.data as Float32Array;
    for (let i = 0; i < 24; i++) expect(y[i]).toBeCloseTo(x[i] >= 0 ? x[i] : 0.25 * x[i], 6);
  });

  it('names the value when a node reads something undefined', () => {
    const g = new GraphBuilder('broken');
    g.input('x', 'float32', [1]);
    g.op('Add', ['x', 'nowhere'], undefined, 'y');
    g.output('y', 'float32', [1]);
    expect(() => encodeModel(g.build())).toThrow(BadRequestError);
    expect(() => encodeModel(g.build())).toThrow(/nowhere/);
  });

  it('rejects initializers whose value count does not match their dims', () => {
    const g = new GraphBuilder('bad');
    g.input('x', 'float32', [2]);
    g.op('Add', ['x', g.floats('c', [3], [1, 2])], undefined, 'y');
    g.output('y', 'float32', [2]);
    expect(() => encodeModel(g.build())).toThrow(/initializer c_\d+: 2 values for dims \[3\]/);
  });
});
