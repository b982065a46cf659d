/**
 * Run an async function over many items with at most `limit` in flight, keeping result order.
 * Decoding thousands of images at once would queue them all in sharp's thread pool and hold every
 * file in memory; a small window keeps the pool busy and memory flat.
 */

/**
 * Results of {@link mapConcurrent}: `{ok: true, value}` with what `fn` returned, or
 * `{ok: false, error}` with what the item failed with.
 */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Apply `fn` to every item, `limit` at a time. Never rejects: each item's failure is returned in its
 * slot, so one bad item cannot abort the others. `onSettled(done, total)` runs after each item.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  onSettled?: (done: number, total: number) => void,
): Promise<Settled<R>[]> {
  const total = items.length;
  const results = new Array<Settled<R>>(total);
  const width = Math.max(1, Math.min(Math.floor(limit) || 1, total));
  let next = 0;
  let done = 0;
  async function worker(): Promise<void> {
    while (next < total) {
      const i = next++;
      try {
        results[i] = { ok: true, value: await fn(items[i], i) };
      } catch (error) {
        results[i] = { ok: false, error };
      }
      done++;
      onSettled?.(done, total);
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}
