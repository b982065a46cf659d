/**
 * The ObjectStore port: a flat key → bytes store with small string metadata. The S3 adapter and the
 * filesystem adapter implement it; the ResultService builds FLAME's result semantics on top.
 */
import type { Readable } from 'node:stream';

/** One stored object: key, size, time and metadata. */
export interface ObjectInfo {
  /** The object's key. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** ISO-8601 time of the last write. */
  lastModified: string;
  /** User metadata given at put time (keys lower-case, values strings). */
  metadata: Record<string, string>;
}

/** Options of {@link ObjectStore.put}. */
export interface PutOptions {
  /** Small string metadata stored with the object (keys are lower-cased). */
  metadata?: Record<string, string>;
  /** Called with bytes written so far (for progress bars on large uploads). */
  onProgress?: (bytes: number) => void;
}

/** A flat key → bytes store with small string metadata (FsObjectStore, S3ObjectStore). */
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
  /** Remove an object; removing an absent key is not an error. */
  delete(key: string): Promise<void>;
}
