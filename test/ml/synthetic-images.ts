/**
 * Small labelled image sets made on the fly for the ML tests: 3 classes of 12×12 grey images
 * (horizontal stripe, vertical stripe, centred square) at random positions with pixel noise.
 */
import type { ImageBatch } from '../../src/ml/pixels.js';
import { SeededRandom } from '../../src/ml/random.js';

/** Side of the synthetic images. */
export const SIDE = 12;

/** `count` images and labels 0..2, reproducible from `seed`. */
export function shapesDataset(count: number, seed: number): { batch: ImageBatch; labels: Int32Array } {
  const rng = new SeededRandom(seed);
  const data = new Float32Array(count * SIDE * SIDE);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const y = rng.int(3);
    labels[i] = y;
    const img = data.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE);
    const at = 2 + rng.int(SIDE - 5);
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) {
        let on: boolean;
        if (y === 0) on = r === at || r === at + 1;
        else if (y === 1) on = c === at || c === at + 1;
        else on = Math.abs(r - at - 0.5) <= 2 && Math.abs(c - at - 0.5) <= 2;
        img[r * SIDE + c] = Math.min(1, Math.max(0, (on ? 0.8 : 0.2) + 0.15 * rng.normal()));
      }
    }
  }
  return { batch: { data, count, channels: 1, height: SIDE, width: SIDE }, labels };
}
