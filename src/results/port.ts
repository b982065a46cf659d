/**
 * The ObjectStore port: a flat key → bytes store with small string metadata. The S3 adapter and the
 * filesystem adapter implement it; the ResultService builds FLAME's result semantics on top.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  size: number;
  /** ISO-8601 time of the last write. */
  lastModified: string;
  /** User metadata given at put time (keys lower-case, values strings). */
  metadata: Record<string, string>;
}

export interface PutOptions {
  metadata?: Record<string, string>;
  /** Called with bytes written so far (for progress bars on large uploads). */
  onProgress?: (bytes: number) => void;
}

export interface ObjectStore {
  /** Write an object. A stream body is uploaded without buffering it whole (multipart on S3). */
  put(key: string, body: Uint8Array | Readable, options?: PutOptions): Promise<ObjectInfo>;
  /** Read a whole object. Throws NotFoundError naming the key when absent. */
  getBytes(key: string): Promise<Uint8Array>;
  /** Stream an object. Throws NotFoundError naming the key when absent. */
  getStream(key: string): Promise<Readable>;
  /** Metadata of one object, or undefined when absent. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, with metadata. */
  list(prefix: string): Promise<ObjectInfo[]>;
  delete(key: string): Promise<void>;
}
