/**
 * The opt-in CleanVision-style checks `grayscale`, `low_information` and `odd_aspect_ratio`: their
 * per-image values (from signals.ts), the histograms nodes share of them (only when one of these
 * tasks is requested, so other runs share exactly what they did before), the cut-offs the
 * aggregator takes from the merged histograms, and the verdicts every node applies to its own images.
 *
 * - grayscale: CleanVision flags an image whose colour channels are equal. Here "nearly" equal (the
 *   largest mean |channel difference| below {@link CHECK_RULES}.grayTolerance, which re-encoded grey
 *   images stay under), and only in a colour dataset: when grey images are at most
 *   `grayMaxShare` of the federation (from the merged histogram), as on an all-grey dataset such as
 *   Fashion-MNIST every image would be flagged and none is wrong.
 * - low_information: entropy of the grey-level histogram below `lowInfoRatio` × the federation's
 *   median entropy (CleanVision scores entropy against the dataset too; a fixed number of bits would
 *   flag whole datasets of mostly-background images).
 * - odd_aspect_ratio: CleanVision's rule as is, min(w/h, h/w) below `aspectScore`; per image, so the
 *   federated verdict is the pooled one without sharing anything.
 */
import { binOf, histogramQuantile, type BinSpec, type QualityVerdict } from './distribution.js';
import type { ImageSignals } from './signals.js';
import type { ImageMetadata } from 'flame-sdk/images';
import type { DiagnosisTaskName } from './request.js';
import { BadRequestError } from 'flame-sdk';

/** The tasks of this module. */
export const CHECK_TASKS = ['grayscale', 'low_information', 'odd_aspect_ratio'] as const satisfies readonly DiagnosisTaskName[];

/** Whether any task in `tasks` needs the check histograms of the load round. */
export function needsCheckHistograms(tasks: readonly string[]): boolean {
  return tasks.includes('grayscale') || tasks.includes('low_information');
}

/** A signal the checks' cut-offs come from: `chroma` (largest mean |channel difference|) or `entropy` (grey-level, bits). */
export type CheckSignal = 'chroma' | 'entropy';

/**
 * The check signals' bins: chroma 0–1 at 1/256 per bin (so `grayTolerance` is a bin edge), entropy
 * 0–8 bits at 1/32 bit per bin.
 */
export const CHECK_BINS: Readonly<Record<CheckSignal, BinSpec>> = {
  chroma: { min: 0, max: 1, bins: 256 },
  entropy: { min: 0, max: 8, bins: 256 },
};

/** Histograms of the check signals, one count array per signal. */
export type CheckHistograms = Record<CheckSignal, number[]>;

/** The rules' constants (see the module comment). */
export const CHECK_RULES = {
  /** Grey: every pair of channels differs by less than 2/256 on average (2 levels of 8 bits). */
  grayTolerance: 2 / 256,
  /** Grey images are flagged only when they are at most half of the federation's images. */
  grayMaxShare: 0.5,
  /**
   * Low information: entropy below 0.3 × the median image's (0.3 is CleanVision's threshold on its
   * normalised score; on Fashion-MNIST the median is about 4.2 bits, the sparsest clean images ~1.45).
   */
  lowInfoRatio: 0.3,
  /** Odd aspect ratio: min(w/h, h/w) below 0.5 (CleanVision's threshold). */
  aspectScore: 0.5,
} as const;

/** The checks' cut-offs every node applies to its own images. */
export interface CheckCutoffs {
  /** Share of the federation's images that are grey (from the merged chroma histogram). */
  grayShare: number;
  /** Whether grey images are flagged: the dataset is a colour one (grey share ≤ `grayMaxShare`). */
  flagGray: boolean;
  /** Low information below this entropy (bits). */
  lowInfoBelow: number;
}

/** The check signals of one image. */
export function checkValues(s: ImageSignals): Record<CheckSignal, number> {
  return { chroma: s.chroma, entropy: s.entropy };
}

/** Empty check histograms. */
export function emptyCheckHistograms(): CheckHistograms {
  return { chroma: new Array<number>(CHECK_BINS.chroma.bins).fill(0), entropy: new Array<number>(CHECK_BINS.entropy.bins).fill(0) };
}

/** Adds one image's check signals to `h`. */
export function countCheckImage(h: CheckHistograms, v: Record<CheckSignal, number>): void {
  for (const k of Object.keys(CHECK_BINS) as CheckSignal[]) h[k][binOf(CHECK_BINS[k], v[k])] += 1;
}

/**
 * Sum of the nodes' check histograms; each must have every signal with its number of bins of
 * finite non-negative counts (they come from peers).
 * @throws BadRequestError naming the node and signal at fault
 */
export function mergeCheckHistograms(parts: ReadonlyArray<{ node: string; histograms: unknown }>): CheckHistograms {
  const out = emptyCheckHistograms();
  for (const { node, histograms } of parts) {
    for (const k of Object.keys(CHECK_BINS) as CheckSignal[]) {
      const h = (histograms as Record<string, unknown> | null | undefined)?.[k];
      if (!Array.isArray(h) || h.length !== CHECK_BINS[k].bins || !h.every((c) => typeof c === 'number' && Number.isFinite(c) && c >= 0)) {
        throw new BadRequestError(`diagnosis: node "${node}" sent no valid ${k} histogram (${CHECK_BINS[k].bins} non-negative counts)`);
      }
      h.forEach((c: number, b) => (out[k][b] += c));
    }
  }
  return out;
}

/** Cut-offs from the merged check histograms. */
export function checkCutoffsFrom(h: CheckHistograms): CheckCutoffs {
  const total = h.chroma.reduce((a, c) => a + c, 0);
  const grayBins = binOf(CHECK_BINS.chroma, CHECK_RULES.grayTolerance);
  const gray = h.chroma.slice(0, grayBins).reduce((a, c) => a + c, 0);
  const grayShare = total > 0 ? gray / total : 0;
  const median = histogramQuantile(CHECK_BINS.entropy, h.entropy, 0.5);
  return { grayShare, flagGray: grayShare <= CHECK_RULES.grayMaxShare, lowInfoBelow: CHECK_RULES.lowInfoRatio * median };
}

/** grayscale: `grayscale` when the image is (nearly) grey in a colour dataset; the score is its chroma. */
export function grayscaleVerdict(v: Record<CheckSignal, number>, c: CheckCutoffs): QualityVerdict {
  return { issue: c.flagGray && v.chroma < CHECK_RULES.grayTolerance ? 'grayscale' : null, score: v.chroma };
}

/** low_information: `low_information` below the entropy cut-off; the score is the entropy in bits. */
export function lowInformationVerdict(v: Record<CheckSignal, number>, c: CheckCutoffs): QualityVerdict {
  return { issue: v.entropy < c.lowInfoBelow ? 'low_information' : null, score: v.entropy };
}

/** odd_aspect_ratio: `odd_aspect_ratio` when min(w/h, h/w) is below CleanVision's 0.5; that is the score. */
export function aspectRatioVerdict(meta: Pick<ImageMetadata, 'width' | 'height'>): QualityVerdict {
  const score = Math.min(meta.width / meta.height, meta.height / meta.width);
  return { issue: score < CHECK_RULES.aspectScore ? 'odd_aspect_ratio' : null, score };
}
