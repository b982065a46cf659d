/**
 * Per-image quality signals computed where the image lives, from its decoded pixels: brightness
 * (mean and 1st/99th/99.9th percentile of luma), sharpness (variance of the Laplacian), a 64-bit DCT
 * hash and a low-frequency signature for near duplicates (perceptual.ts), an exact-content
 * digest, colour (channel difference) and grey-level entropy for the opt-in checks
 * (checks.ts), and a small thumbnail kept in
 * node memory for the feature extractor. None of these leaves the node except as histogram
 * counts — the hashes only for the duplicates task (see duplicates.ts).
 */
import { createHash } from 'node:crypto';
import type { DecodedImage } from 'flame-sdk/images';
import { lowFrequencyDct, pHashOf, signatureOf } from './perceptual.js';

/** Largest side of the thumbnail a node keeps for feature extraction. */
export const THUMBNAIL_MAX_SIDE = 64;

/** What the analysis keeps of one image after decoding it. */
export interface ImageSignals {
  /** Mean luma, 0–1 (ITU-R 601 weights on RGB; alpha ignored). */
  brightness: number;
  /** 1st percentile of luma (the black level; high = washed out). */
  lumaLow: number;
  /** 99th percentile of luma (the highlights; low = under-exposed). */
  lumaHigh: number;
  /**
   * 99.9th percentile of luma (the brightest detail; low = even the brightest pixels are dim). It
   * tells a dim image from a dark object with bright edges; on images of fewer than 1,000 pixels
   * it is the brightest pixel, on larger ones a few hot pixels do not lift it.
   */
  lumaTop: number;
  /** Variance of the 4-neighbour Laplacian of luma (0–1 scale); low = blurry. */
  laplacianVariance: number;
  /** 64-bit pHash as 16 hex digits (perceptual.ts). */
  phash: string;
  /** Low-frequency DCT signature as 126 hex digits (perceptual.ts). */
  signature: string;
  /** First 16 hex digits of the SHA-256 of the decoded pixels: equal only for identical content. */
  digest: string;
  /** 8-bit thumbnail, channels-first (1 grey or 3 RGB), at most 64 pixels (`THUMBNAIL_MAX_SIDE`) per side. */
  thumbnail: Uint8Array;
  /** Channels of the thumbnail (1 or 3). */
  thumbChannels: number;
  /** Thumbnail height in pixels. */
  thumbHeight: number;
  /** Thumbnail width in pixels. */
  thumbWidth: number;
  /** Largest mean absolute difference between two colour channels, 0–1; 0 for grey images (grayscale task). */
  chroma: number;
  /** Shannon entropy in bits of the 256-bin luma histogram, 0–8 (low_information task). */
  entropy: number;
}

/** Luma of every pixel on a 0–255 scale (fractional for 16-bit input). */
function lumaPlane(img: DecodedImage): Float32Array {
  const { pixels, width, height, channels, maxValue } = img;
  const n = width * height;
  const out = new Float32Array(n);
  const scale = 255 / maxValue;
  if (channels <= 2) {
    for (let p = 0; p < n; p++) out[p] = pixels[p * channels] * scale;
  } else {
    for (let p = 0; p < n; p++) {
      const o = p * channels;
      out[p] = (0.299 * pixels[o] + 0.587 * pixels[o + 1] + 0.114 * pixels[o + 2]) * scale;
    }
  }
  return out;
}

/** Area-average downscale of one plane (`h0 × w0`) to `h × w` (h ≤ h0, w ≤ w0). */
export function boxResize(src: Float32Array, h0: number, w0: number, h: number, w: number): Float32Array {
  if (h === h0 && w === w0) return src;
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const ya = (y * h0) / h;
    const yb = ((y + 1) * h0) / h;
    for (let x = 0; x < w; x++) {
      const xa = (x * w0) / w;
      const xb = ((x + 1) * w0) / w;
      let s = 0;
      let area = 0;
      for (let sy = Math.floor(ya); sy < Math.ceil(yb); sy++) {
        const wy = Math.min(yb, sy + 1) - Math.max(ya, sy);
        for (let sx = Math.floor(xa); sx < Math.ceil(xb); sx++) {
          const wx = Math.min(xb, sx + 1) - Math.max(xa, sx);
          s += src[sy * w0 + sx] * wy * wx;
          area += wy * wx;
        }
      }
      out[y * w + x] = s / area;
    }
  }
  return out;
}

/** Number of differing bits between two 16-hex-digit hashes. */
export function hammingDistance(a: string, b: string): number {
  let d = 0;
  for (let i = 0; i < 16; i += 8) {
    let x = (parseInt(a.slice(i, i + 8), 16) ^ parseInt(b.slice(i, i + 8), 16)) >>> 0;
    while (x) {
      x &= x - 1;
      d++;
    }
  }
  return d;
}

/** Variance of the 4-neighbour Laplacian over interior pixels, luma on a 0–1 scale. */
function laplacianVariance(luma: Float32Array, height: number, width: number): number {
  if (height < 3 || width < 3) return 0;
  let s = 0;
  let s2 = 0;
  let n = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const i = y * width + x;
      const v = (luma[i - 1] + luma[i + 1] + luma[i - width] + luma[i + width] - 4 * luma[i]) / 255;
      s += v;
      s2 += v * v;
      n++;
    }
  }
  const m = s / n;
  return Math.max(0, s2 / n - m * m);
}

/** The p-th percentile (0–1) of a 256-bin histogram of `count` values. */
function histogramPercentile(hist: Uint32Array, count: number, p: number): number {
  const target = Math.max(1, Math.ceil(p * count));
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b];
    if (seen >= target) return b;
  }
  return hist.length - 1;
}

/** Shannon entropy (bits) of a histogram of `count` values. */
function histogramEntropy(hist: Uint32Array, count: number): number {
  let h = 0;
  for (const c of hist) if (c > 0) h -= (c / count) * Math.log2(c / count);
  return Math.max(0, h);
}

/** Largest mean |channel a − channel b| over the pairs of R, G, B, 0–1; 0 below 3 channels (alpha ignored). */
function chromaOf(img: DecodedImage): number {
  const { pixels, width, height, channels, maxValue } = img;
  if (channels < 3) return 0;
  const n = width * height;
  let rg = 0;
  let rb = 0;
  let gb = 0;
  for (let p = 0; p < n; p++) {
    const o = p * channels;
    rg += Math.abs(pixels[o] - pixels[o + 1]);
    rb += Math.abs(pixels[o] - pixels[o + 2]);
    gb += Math.abs(pixels[o + 1] - pixels[o + 2]);
  }
  return Math.max(rg, rb, gb) / n / maxValue;
}

/** The thumbnail size: the image's own if it fits, else scaled to {@link THUMBNAIL_MAX_SIDE} keeping the aspect ratio. */
export function thumbnailSize(height: number, width: number): { height: number; width: number } {
  const scale = Math.min(1, THUMBNAIL_MAX_SIDE / Math.max(height, width));
  return { height: Math.max(1, Math.round(height * scale)), width: Math.max(1, Math.round(width * scale)) };
}

/** Every signal of one decoded image (one pass per signal over its pixels). */
export function imageSignals(img: DecodedImage): ImageSignals {
  const { width, height, channels, pixels, maxValue } = img;
  const luma = lumaPlane(img);
  const hist = new Uint32Array(256);
  let total = 0;
  for (let p = 0; p < luma.length; p++) {
    total += luma[p];
    hist[Math.min(255, Math.round(luma[p]))]++;
  }
  const n = luma.length;
  const thumb = thumbnailSize(height, width);
  const thumbChannels = channels <= 2 ? 1 : 3;
  const plane = thumb.height * thumb.width;
  const thumbnail = new Uint8Array(thumbChannels * plane);
  if (thumbChannels === 1) {
    const small = boxResize(luma, height, width, thumb.height, thumb.width);
    for (let i = 0; i < plane; i++) thumbnail[i] = Math.round(small[i]);
  } else {
    const scale = 255 / maxValue;
    for (let c = 0; c < 3; c++) {
      const full = new Float32Array(n);
      for (let p = 0; p < n; p++) full[p] = pixels[p * channels + c] * scale;
      const small = boxResize(full, height, width, thumb.height, thumb.width);
      for (let i = 0; i < plane; i++) thumbnail[c * plane + i] = Math.round(small[i]);
    }
  }
  const dct = lowFrequencyDct(luma, height, width);
  const bytes = pixels instanceof Uint8Array ? pixels : new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  return {
    brightness: total / n / 255,
    lumaLow: histogramPercentile(hist, n, 0.01) / 255,
    lumaHigh: histogramPercentile(hist, n, 0.99) / 255,
    lumaTop: histogramPercentile(hist, n, 0.999) / 255,
    laplacianVariance: laplacianVariance(luma, height, width),
    phash: pHashOf(dct),
    signature: signatureOf(dct),
    digest: createHash('sha256').update(`${width}x${height}x${channels}:`).update(bytes).digest('hex').slice(0, 16),
    thumbnail,
    thumbChannels,
    thumbHeight: thumb.height,
    thumbWidth: thumb.width,
    chroma: chromaOf(img),
    entropy: histogramEntropy(hist, n),
  };
}
