/** @jest-environment ./test/helpers/onnx-environment.cjs */
import { federatedPca, projectFeatures } from '../../src/ml/projection.js';
import { SeededRandom } from '../../src/ml/random.js';

/** Points with variances 25, 9 and 1 along three random orthonormal directions in 12-D. */
function elongatedCloud(n: number, dim: number, seed: number) {
  const rng = new SeededRandom(seed);
  const dirs: number[][] = [];
  while (dirs.length < 3) {
    const v = Array.from({ length: dim }, () => rng.normal());
    for (const d of dirs) {
      const dot = v.reduce((s, x, j) => s + x * d[j], 0);
      for (let j = 0; j < dim; j++) v[j] -= dot * d[j];
    }
    const norm = Math.hypot(...v);
    dirs.push(v.map((x) => x / norm));
  }
  const scales = [5, 3, 1];
  const centre = Array.from({ length: dim }, () => 10 * rng.normal());
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const coef = scales.map((s) => s * rng.normal());
    for (let j = 0; j < dim; j++) x[i * dim + j] = centre[j] + dirs.reduce((s, d, c) => s + coef[c] * d[j], 0) + 0.1 * rng.normal();
  }
  return { x, dirs };
}

describe('federated PCA projection', () => {
  const dim = 12;
  const n = 900;
  const { x, dirs } = elongatedCloud(n, dim, 5);

  it('finds the two strongest directions and their variances', async () => {
    const pca = await federatedPca([x], dim);
    for (let c = 0; c < 2; c++) {
      const axis = pca.axes.subarray(c * dim, (c + 1) * dim);
      const cos = Math.abs(axis.reduce((s, v, j) => s + v * dirs[c][j], 0));
      expect(cos).toBeGreaterThan(0.99);
    }
    expect(pca.variances[0]).toBeGreaterThan(20);
    expect(pca.variances[0]).toBeLessThan(30);
    expect(pca.variances[1]).toBeGreaterThan(7);
    expect(pca.variances[1]).toBeLessThan(11);
  });

  it('gives the pooled projection when the rows are split over 3 nodes', async () => {
    const pooled = projectFeatures(x, await federatedPca([x], dim));
    const parts = [x.subarray(0, 200 * dim), x.subarray(200 * dim, 650 * dim), x.subarray(650 * dim)];
    const fed = await federatedPca(parts, dim);
    const projected = parts.map((p) => projectFeatures(p, fed));
    const joined = new Float32Array(n * 2);
    let off = 0;
    for (const p of projected) {
      joined.set(p, off);
      off += p.length;
    }
    for (let i = 0; i < joined.length; i++) expect(joined[i]).toBeCloseTo(pooled[i], 3);
    // Projected coordinates are centred and have the found variances.
    const mean0 = joined.filter((_, i) => i % 2 === 0).reduce((s, v) => s + v, 0) / n;
    expect(Math.abs(mean0)).toBeLessThan(1e-3);
  });
});
