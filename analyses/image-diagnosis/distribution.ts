/**
 * Global distributions of per-image signals as fixed-bin histograms: every node counts its own
 * images into the same bins, the aggregator adds the counts, and the cut-offs come from the summed
 * histogram. Counts are integers, so the federated cut-offs equal the pooled ones exactly, and no
 * per-image value leaves a node.
 */
import type { ImageSignals } from './signals.js';
import type { ImageMetadata } from 'flame-sdk/images';

/** A histogram's bins: `bins` equal bins over [min, max]; values outside go to the end bins. */
export interface BinSpec {
  /** Lower end of the first bin. */
  min: number;
  /** Upper end of the last bin. */
  max: number;
  /** Number of bins. */
  bins: number;
}

/** The signals the quality tasks judge, each with its bins (a {@link BinSpec}: `min`, `max`, `bins`). */
export const SIGNAL_BINS = {
  /** 99th percentile of luma (8-bit values land exactly on a bin). */
  lumaHigh: { min: 0, max: 1, bins: 256 },
  /** 1st percentile of luma. */
  lumaLow: { min: 0, max: 1, bins: 256 },
  /** 99.9th percentile of luma (the brightest detail). */
  lumaTop: { min: 0, max: 1, bins: 256 },
  /** log10 of Laplacian variance over luma variance. */
  sharpness: { min: -6, max: 2, bins: 400 },
  /** log2 of width × height. */
  area: { min: 0, max: 40, bins: 800 },
  /** log2 of width / height. */
  aspect: { min: -10, max: 10, bins: 400 },
} as const satisfies Record<string, BinSpec>;

/** The name of a signal (a key of {@link SIGNAL_BINS}). */
export type SignalName = keyof typeof SIGNAL_BINS;

/** Histograms of every signal, one count array per signal. */
export type SignalHistograms = Record<SignalName, number[]>;

/**
 * Contrast-normalised sharpness: log10(var(Laplacian) / var(luma)). Dividing by the luma variance
 * keeps dark or low-contrast images from looking blurry; flat images get the floor of the bins.
 */
export function sharpnessOf(s: ImageSignals, meta: ImageMetadata): number {
  const lumaStd = meta.std_dev.length >= 3 ? 0.299 * meta.std_dev[0] + 0.587 * meta.std_dev[1] + 0.114 * meta.std_dev[2] : meta.std_dev[0];
  const v = lumaStd * lumaStd;
  if (!(v > 1e-12) || !(s.laplacianVariance > 0)) return SIGNAL_BINS.sharpness.min;
  return Math.log10(s.laplacianVariance / v);
}

/** The value of every signal for one image. */
export function signalValues(s: ImageSignals, meta: ImageMetadata): Record<SignalName, number> {
  return {
    lumaHigh: s.lumaHigh,
    lumaLow: s.lumaLow,
    lumaTop: s.lumaTop,
    sharpness: sharpnessOf(s, meta),
    area: Math.log2(Math.max(1, meta.width * meta.height)),
    aspect: Math.log2(meta.width / meta.height),
  };
}

/** The bin of `value`. */
export function binOf(spec: BinSpec, value: number): number {
  const b = Math.floor(((value - spec.min) / (spec.max - spec.min)) * spec.bins);
  return Math.min(spec.bins - 1, Math.max(0, b));
}

/** Centre of bin `b`. */
function binCentre(spec: BinSpec, b: number): number {
  return spec.min + ((b + 0.5) * (spec.max - spec.min)) / spec.bins;
}

/** Empty histograms of every signal. */
export function emptyHistograms(): SignalHistograms {
  return Object.fromEntries(Object.entries(SIGNAL_BINS).map(([k, s]) => [k, new Array<number>(s.bins).fill(0)])) as SignalHistograms;
}

/** Adds one image's signals to `h`. */
export function countImage(h: SignalHistograms, values: Record<SignalName, number>): void {
  for (const k of Object.keys(SIGNAL_BINS) as SignalName[]) h[k][binOf(SIGNAL_BINS[k], values[k])] += 1;
}

/** Sum of the nodes' histograms. */
export function mergeHistograms(parts: readonly SignalHistograms[]): SignalHistograms {
  const out = emptyHistograms();
  for (const p of parts) for (const k of Object.keys(SIGNAL_BINS) as SignalName[]) p[k].forEach((c, b) => (out[k][b] += c));
  return out;
}

/** The q-quantile (0–1) of a histogram, as the centre of the bin holding it; NaN when empty. */
export function histogramQuantile(spec: BinSpec, counts: readonly number[], q: number): number {
  const total = counts.reduce((a, c) => a + c, 0);
  if (total === 0) return Number.NaN;
  const target = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let b = 0; b < counts.length; b++) {
    seen += counts[b];
    if (seen >= target) return binCentre(spec, b);
  }
  return binCentre(spec, counts.length - 1);
}

/**
 * Rules of the quality tasks, in terms of the global distribution (measured on data/sample, where
 * the planted faults sit far beyond them, and on Fashion-MNIST in bench/diagnosis.ts):
 * - too dark: the image's highlights (99th percentile of luma) are below `darkRatio` × the median
 *   image's highlights, and so is its brightest detail (99.9th percentile) against the median
 *   image's — even its brightest parts are dim. The second percentile spares dark objects with a
 *   few bright edges (a black shirt on black): on Fashion-MNIST those were every false positive
 *   of the 99th percentile alone (16 of 20k training images, 12 of the 10k test images), while a
 *   dimmed image dims its brightest pixels too (EXPERIMENTS.md, "Lighting");
 * - too bright: its black level (1st percentile) is above the median black level plus
 *   `brightFraction` of the way to white — even its darkest parts are washed out;
 * - blurry: sharpness below the first quartile by more than `blurIqr` inter-quartile ranges
 *   (and at least `blurMinDrop` decades below the median);
 * - odd size: area more than `areaFactor`× off the median area, or aspect ratio more than
 *   `aspectFactor`× off the median aspect ratio.
 */
export const QUALITY_RULES: QualityRules = {
  /** Too dark: highlights and brightest detail below 0.45 × the median image's. */
  darkRatio: 0.45,
  /**
   * Too bright: black level more than 0.4 of the way from the median black level to white (0.5
   * before: it sat near the edge of the flat range, a grey floor of 150 is 0.59 of the way).
   */
  brightFraction: 0.4,
  /** Blurry: sharpness more than 3 inter-quartile ranges below the first quartile… */
  blurIqr: 3,
  /** …and at least half a decade below the median sharpness. */
  blurMinDrop: 0.5,
  /** Odd size: area more than 4× above or below the median area. */
  areaFactor: 4,
  /** Odd size: aspect ratio more than 2× off the median aspect ratio. */
  aspectFactor: 2,
};

/** The constants of the quality rules ({@link QUALITY_RULES} are the defaults). */
export interface QualityRules {
  /** Too dark: highlights and brightest detail below this fraction of the median image's. */
  readonly darkRatio: number;
  /** Too bright: black level more than this fraction of the way from the median black level to white. */
  readonly brightFraction: number;
  /** Blurry: sharpness more than this many inter-quartile ranges below the first quartile… */
  readonly blurIqr: number;
  /** …and at least this many decades below the median. */
  readonly blurMinDrop: number;
  /** Odd size: area more than this factor above or below the median area. */
  readonly areaFactor: number;
  /** Odd size: aspect ratio more than this factor off the median aspect ratio. */
  readonly aspectFactor: number;
}

/** The global cut-offs every node applies to its own images. */
export interface QualityCutoffs {
  /** Too dark below this 99th-percentile luma… */
  darkBelow: number;
  /** …and below this 99.9th-percentile luma. */
  darkTopBelow: number;
  /** Too bright above this 1st-percentile luma. */
  brightAbove: number;
  /** Blurry below this log10 sharpness. */
  blurBelow: number;
  /** Median log2 area (width × height) of every image of the federation, from the merged histogram. */
  medianArea: number;
  /** Median log2 aspect ratio (width / height). */
  medianAspect: number;
}

/** Cut-offs from the merged histograms, under `rules` (the defaults unless a benchmark varies them). */
export function cutoffsFrom(h: SignalHistograms, rules: QualityRules = QUALITY_RULES): QualityCutoffs {
  const q = (k: SignalName, p: number): number => histogramQuantile(SIGNAL_BINS[k], h[k], p);
  const lowMedian = q('lumaLow', 0.5);
  const [s25, s50, s75] = [q('sharpness', 0.25), q('sharpness', 0.5), q('sharpness', 0.75)];
  return {
    darkBelow: rules.darkRatio * q('lumaHigh', 0.5),
    darkTopBelow: rules.darkRatio * q('lumaTop', 0.5),
    brightAbove: lowMedian + rules.brightFraction * (1 - lowMedian),
    blurBelow: Math.min(s25 - rules.blurIqr * (s75 - s25), s50 - rules.blurMinDrop),
    medianArea: q('area', 0.5),
    medianAspect: q('aspect', 0.5),
  };
}

/** A quality verdict on one image: the issue found (or none) and the score behind it. */
export interface QualityVerdict {
  issue: string | null;
  score: number;
}

/** lighting_conditions: `too_dark`, `too_bright` or none; the score is the luma percentile judged. */
export function lightingVerdict(v: Record<SignalName, number>, c: QualityCutoffs): QualityVerdict {
  if (v.lumaHigh < c.darkBelow && v.lumaTop < c.darkTopBelow) return { issue: 'too_dark', score: v.lumaHigh };
  if (v.lumaLow > c.brightAbove) return { issue: 'too_bright', score: v.lumaLow };
  return { issue: null, score: v.lumaHigh };
}

/** blurry: the log10 sharpness against the cut-off. */
export function blurVerdict(v: Record<SignalName, number>, c: QualityCutoffs): QualityVerdict {
  return { issue: v.sharpness < c.blurBelow ? 'blurry' : null, score: v.sharpness };
}

/** odd_size: `odd_area` or `odd_aspect`; the score is the log2 distance from the median. */
export function sizeVerdict(v: Record<SignalName, number>, c: QualityCutoffs): QualityVerdict {
  const dArea = Math.abs(v.area - c.medianArea);
  const dAspect = Math.abs(v.aspect - c.medianAspect);
  // Half a bin of slack: the medians are bin centres.
  const slackArea = (SIGNAL_BINS.area.max - SIGNAL_BINS.area.min) / SIGNAL_BINS.area.bins / 2;
  const slackAspect = (SIGNAL_BINS.aspect.max - SIGNAL_BINS.aspect.min) / SIGNAL_BINS.aspect.bins / 2;
  if (dArea > Math.log2(QUALITY_RULES.areaFactor) + slackArea) return { issue: 'odd_area', score: dArea };
  if (dAspect > Math.log2(QUALITY_RULES.aspectFactor) + slackAspect) return { issue: 'odd_aspect', score: dAspect };
  return { issue: null, score: Math.max(dArea, dAspect) };
}
