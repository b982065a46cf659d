/**
 * Exact and near duplicates across every node, found by the aggregator from 64-bit perceptual
 * hashes (dHash) and 64-bit content digests, never from images.
 *
 * Why sharing the hashes is acceptable: a dHash holds 64 bits — whether each of 8×9 area-averaged
 * luma cells is brighter than its right neighbour — from which no image can be rebuilt (a 28×28
 * grey image alone has 6,272 bits); the digest is a truncated SHA-256 that only tells identical
 * content apart. What they do reveal — that two nodes hold (nearly) the same image — is exactly
 * what the task must find. They are sent only when the duplicates task is requested.
 */

/** One image as the aggregator sees it for this task. */
export interface HashedImage {
  /** The node that holds the image. */
  node: string;
  /** The image's uuid. */
  uuid: string;
  /** Its 64-bit dHash, 16 hex digits (near duplicates). */
  dhash: string;
  /** Its content digest, 16 hex digits (exact duplicates). */
  digest: string;
}

/** An image found to duplicate an earlier one. */
export interface DuplicateMark {
  /** `exact` (same decoded pixels) or `near` (dHash within the distance). */
  issue: 'exact_duplicate' | 'near_duplicate';
  /** Hamming distance of the dHashes to the kept image. */
  distance: number;
  /** uuid and node of the image kept (the group's first by node order, then node-local order). */
  duplicate_of: string;
  /** The node that holds the kept image. */
  duplicate_of_node: string;
}

/** Default largest dHash Hamming distance that counts as a near duplicate: 0 (identical dHash). On 28×28 Fashion-MNIST, distance 2 already groups 29 of 300 distinct images (plain trousers look alike at 9×8); raise it for larger photos. */
export const DEFAULT_DUPLICATE_DISTANCE = 0;

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * Groups images whose dHashes are within `maxDistance` bits (transitively) and marks every member
 * but the first. Pairs are found by multi-index hashing: the 64 bits are cut into maxDistance + 1
 * segments, and two hashes that close must agree exactly on at least one of them (pigeonhole), so
 * only hashes sharing a segment are compared.
 * @returns index in `images` → mark, for the images to flag.
 */
export function findDuplicates(images: readonly HashedImage[], maxDistance = DEFAULT_DUPLICATE_DISTANCE): Map<number, DuplicateMark> {
  const n = images.length;
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  images.forEach((im, i) => {
    hi[i] = parseInt(im.dhash.slice(0, 8), 16) >>> 0;
    lo[i] = parseInt(im.dhash.slice(8, 16), 16) >>> 0;
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
      for (let x = 0; x < list.length; x++) for (let y = x + 1; y < list.length; y++) if (dist(list[x], list[y]) <= maxDistance) union(list[x], list[y]);
    }
  }
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
