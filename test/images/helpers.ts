/** Shared helpers of the image tests: temp folders and images with known pixels. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';

/** A fresh temp folder; `cleanup` removes it. */
export async function tempDir(prefix = 'flame-images-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Interleaved 8-bit pixels from a per-pixel function. */
export function pixels8(width: number, height: number, channels: number, f: (x: number, y: number, c: number) => number): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) out[(y * width + x) * channels + c] = f(x, y, c);
  return out;
}

/** Interleaved 16-bit pixels from a per-pixel function. */
export function pixels16(width: number, height: number, channels: number, f: (x: number, y: number, c: number) => number): Uint16Array {
  const out = new Uint16Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) out[(y * width + x) * channels + c] = f(x, y, c);
  return out;
}

const SPACE8 = { 1: 'b-w', 2: 'b-w', 3: 'srgb', 4: 'srgb' } as const;
const SPACE16 = { 1: 'grey16', 2: 'grey16', 3: 'rgb16', 4: 'rgb16' } as const;

/** A sharp pipeline over raw pixels that keeps their channel count and depth when encoded. */
export function rawImage(px: Uint8Array | Uint16Array, width: number, height: number, channels: 1 | 2 | 3 | 4): Sharp {
  const space = px instanceof Uint16Array ? SPACE16[channels] : SPACE8[channels];
  return sharp(px, { raw: { width, height, channels } }).toColourspace(space);
}

/** Independent two-pass mean and population std per channel, on a 0–1 scale. */
export function naiveMeanStd(px: ArrayLike<number>, channels: number, max: number): { mean: number[]; std: number[] } {
  const n = px.length / channels;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let s = 0;
    for (let i = c; i < px.length; i += channels) s += px[i] / max;
    const m = s / n;
    let d = 0;
    for (let i = c; i < px.length; i += channels) d += (px[i] / max - m) ** 2;
    mean.push(m);
    std.push(Math.sqrt(d / n));
  }
  return { mean, std };
}

/** Expect two number arrays to match to `digits` decimals. */
export function expectClose(actual: number[], expected: number[], digits = 9): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i], digits));
}
