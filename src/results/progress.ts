/**
 * Byte counting for streams, shared by the stores and the result service to drive progress bars.
 */
import { Transform } from 'node:stream';

/** A pass-through stream that counts the bytes flowing through it. */
export type ProgressCounter = Transform & { readonly bytes: number };

/** Returns a pass-through stream that calls `onProgress` with the running byte count on each chunk. */
export function progressCounter(onProgress?: (bytes: number) => void): ProgressCounter {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      onProgress?.(bytes);
      callback(null, chunk);
    },
  });
  Object.defineProperty(counter, 'bytes', { get: () => bytes });
  return counter as ProgressCounter;
}
