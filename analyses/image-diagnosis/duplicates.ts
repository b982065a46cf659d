/**
 * Exact and near duplicates across every node, found by the aggregator from per-image fingerprints
 * (perceptual.ts), never from images: a 64-bit pHash proposes candidate pairs, a 63-coefficient
 * low-frequency DCT signature verifies them by correlation, and a 64-bit content digest tells
 * identical content apart.
 *
 * Why a verification step: on 28×28 Fashion-MNIST, different plain trousers share their hash
 * (the former dHash at distance 0 grouped 8 distinct images of data/sample); the signature keeps
 * the coefficients' magnitudes, so near-identical hashes of different objects are refused.
 *
 * What sharing them reveals: the pHash is 64 sign bits; the signature is the image's 8×8 lowest
 * spatial frequencies (DC left out, normalised, one signed byte each) after framing — about what
 * an 8×8 blur of the object shows, its rough silhouette, not its detail (a 28×28 grey image has
 * 6,272 bits, the signature 504); the digest is a truncated SHA-256. That two nodes hold (nearly)
 * the same image is exactly what the task must find. They are sent only when the duplicates task
 * is requested.
 */
import { parseSignature, signatureCorrelation } from './perceptual.js';

/** One image as the aggregator sees it for this task. */
export interface HashedImage {
  /** The node that holds the image. */
  node: string;
  /** The image's uuid. */
  uuid: string;
  /** Its 64-bit pHash, 16 hex digits (candidate near duplicates). */
  phash: string;
  /** Its low-frequency DCT signature, 126 hex digits (verifies candidates). */
  signature: string;
  /** Its content digest, 16 hex digits (exact duplicates). */
  digest: string;
}

/** An image found to duplicate an earlier one. */
export interface DuplicateMark {
  /** `exact` (same decoded pixels) or `near` (pHash within the distance and signatures correlated). */
  issue: 'exact_duplicate' | 'near_duplicate';
  /** Hamming distance of the pHashes to the kept image. */
  distance: number;
  /** uuid and node of the image kept (the group's first by node order, then node-local order). */
  duplicate_of: string;
  /** The node that holds the kept image. */
  duplicate_of_node: string;
}

/**
 * Default largest pHash Hamming distance of a candidate pair: 10. With {@link DEFAULT_MIN_CORRELATION}
 * it found 93–94 % of planted copies with no false pair on two 600-image Fashion-MNIST slices
 * (EXPERIMENTS.md); the hash only proposes, the signature decides.
 */
export const DEFAULT_DUPLICATE_DISTANCE = 10;

/** Default lowest signature correlation that confirms a candidate pair: 0.98 (at 0.97, 3–6 distinct Fashion-MNIST pairs of 180,000 and one pair of pullovers in data/sample pass; copies stay above 0.98 but for some 2 px crops). */
export const DEFAULT_MIN_CORRELATION = 0.98;

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * Groups images (transitively) whose content digests are equal, or whose pHashes are within
 * `maxDistance` bits and whose signatures correlate at least `minCorrelation`, and marks every
 * member but the first (so only later copies are flagged). Candidate pairs are found by multi-index
 * hashing: the 64 bits are cut into maxDistance + 1 segments, and two hashes that close must agree
 * exactly on at least one of them (pigeonhole), so only hashes sharing a segment are compared.
 * @returns index in `images` → mark, for the images to flag.
 * @throws Error if a signature is not 126 hex digits (callers parse peers' input first)
 */
export function findDuplicates(images: readonly HashedImage[], maxDistance = DEFAULT_DUPLICATE_DISTANCE, minCorrelation = DEFAULT_MIN_CORRELATION): Map<number, DuplicateMark> {
  const n = images.length;
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  const sig = images.map((im) => parseSignature(im.signature));
  images.forEach((im, i) => {
    hi[i] = parseInt(im.phash.slice(0, 8), 16) >>> 0;
    lo[i] = parseInt(im.phash.slice(8, 16), 16) >>> 0;
  });
  const dist = (a: number, b: number): number => popcount32((hi[a] ^ hi[b]) >>> 0) + popcount32((lo[a] ^ lo[b]) >>> 0);
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb); // the root is the earliest image
  };
  const segments = Math.min(64, Math.max(1, maxDistance + 1));
  const bits = (i: number, from: number, to: number): string => {
    let s = '';
    for (let b = from; b < to; b++) s += b < 32 ? (hi[i] >>> (31 - b)) & 1 : (lo[i] >>> (63 - b)) & 1;
    return s;
  };
  for (let s = 0; s < segments; s++) {
    const from = Math.floor((s * 64) / segments);
    const to = Math.floor(((s + 1) * 64) / segments);
    const buckets = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const key = bits(i, from, to);
      const list = buckets.get(key);
      if (list) list.push(i);
      else buckets.set(key, [i]);
    }
    for (const list of buckets.values()) {
      for (let x = 0; x < list.length; x++) {
        for (let y = x + 1; y < list.length; y++) {
          const a = list[x];
          const b = list[y];
          if (find(a) !== find(b) && dist(a, b) <= maxDistance && signatureCorrelation(sig[a], sig[b]) >= minCorrelation) union(a, b);
        }
      }
    }
  }
  const byDigest = new Map<string, number>();
  images.forEach((im, i) => {
    const first = byDigest.get(im.digest);
    if (first === undefined) byDigest.set(im.digest, i);
    else union(first, i);
  });
  const marks = new Map<number, DuplicateMark>();
  for (let i = 0; i < n; i++) {
    const root = find(i);
    if (root === i) continue;
    const kept = images[root];
    const exact = images[i].digest === kept.digest;
    marks.set(i, { issue: exact ? 'exact_duplicate' : 'near_duplicate', distance: dist(i, root), duplicate_of: kept.uuid, duplicate_of_node: kept.node });
  }
  return marks;
}
