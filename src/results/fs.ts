/**
 * The embedded ObjectStore: a directory on the node. Layout below the root:
 *
 *   objects/<key>   the bytes, one file per key (key segments become folders)
 *   meta/<key>      a JSON sidecar with the user metadata
 *   tmp/            temporary files, renamed into place so readers never see half-written objects
 *
 * Every path is resolved segment by segment against the real (symlink-free) root, so a symlink
 * planted inside the store cannot lead a read or a write outside it.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type Dirent } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BadRequestError, ConflictError, InternalError, NotFoundError } from '../errors.js';
import { assertSafeKey, assertSafePrefix, compareKeys } from './keys.js';
import { normaliseMetadata } from './metadata.js';
import type { ObjectInfo, ObjectStore, PutOptions } from './port.js';
import { progressCounter } from './progress.js';

interface NodeError {
  code?: string;
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeError).code : undefined;
}

/** ObjectStore over a local directory; see the module comment for the layout. */
export class FsObjectStore implements ObjectStore {
  /** The directory given to the constructor (resolved to an absolute path). */
  readonly root: string;
  private realRoot?: Promise<string>;

  /** @param root the store's directory; created on first use if missing. */
  constructor(root: string) {
    if (typeof root !== 'string' || root === '') throw new BadRequestError(`FsObjectStore root: expected a directory path, got ${JSON.stringify(root)}`);
    this.root = path.resolve(root);
  }

  /** Creates the root and its three sub-folders once, and remembers the root's real path. */
  private base(): Promise<string> {
    this.realRoot ??= (async () => {
      await fsp.mkdir(this.root, { recursive: true });
      const real = await fsp.realpath(this.root);
      await Promise.all(['objects', 'meta', 'tmp'].map((d) => fsp.mkdir(path.join(real, d), { recursive: true })));
      return real;
    })();
    return this.realRoot;
  }

  /**
   * The real path of `key` below `tree` ('objects' or 'meta'): each parent segment is resolved with
   * realpath and must stay inside the tree. With `create`, missing parent folders are made;
   * without it, a missing parent yields undefined.
   */
  private async resolve(tree: 'objects' | 'meta', key: string, create: boolean): Promise<string | undefined> {
    const treeRoot = path.join(await this.base(), tree);
    const segments = key.split('/');
    let current = treeRoot;
    for (const segment of segments.slice(0, -1)) {
      const next = path.join(current, segment);
      if (create) {
        try {
          await fsp.mkdir(next);
        } catch (err) {
          if (errorCode(err) !== 'EEXIST') throw this.ioError('create a folder for', key, err);
        }
      }
      let real: string;
      try {
        real = await fsp.realpath(next);
      } catch (err) {
        if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return undefined;
        throw this.ioError('resolve', key, err);
      }
      this.assertInside(treeRoot, real, key);
      const stat = await fsp.stat(real);
      if (!stat.isDirectory()) {
        if (create) throw new ConflictError(`object key ${JSON.stringify(key)}: ${JSON.stringify(segment)} is an object, not a folder`);
        return undefined;
      }
      current = real;
    }
    return path.join(current, segments[segments.length - 1]);
  }

  private assertInside(treeRoot: string, real: string, key: string): void {
    if (real !== treeRoot && !real.startsWith(treeRoot + path.sep)) {
      throw new BadRequestError(`object key ${JSON.stringify(key)} resolves outside the store at ${this.root} (symlink)`);
    }
  }

  /** The real path of an existing object file, following a final symlink only if it stays inside. */
  private async existingObjectPath(key: string): Promise<string | undefined> {
    const file = await this.resolve('objects', key, false);
    if (file === undefined) return undefined;
    try {
      const real = await fsp.realpath(file);
      this.assertInside(path.join(await this.base(), 'objects'), real, key);
      return real;
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  private ioError(action: string, key: string, err: unknown): Error {
    if (err instanceof BadRequestError || err instanceof ConflictError) return err;
    const detail = err instanceof Error ? err.message : String(err);
    return new InternalError(`cannot ${action} object ${JSON.stringify(key)} in ${this.root}: ${detail}`, { cause: err });
  }

  private tmpPath(base: string): string {
    return path.join(base, 'tmp', `${Date.now()}-${randomBytes(8).toString('hex')}.tmp`);
  }

  /** Writes via a temp file and a rename: readers see the old object or the new one, never a mix. */
  async put(key: string, body: Uint8Array | Readable, options: PutOptions = {}): Promise<ObjectInfo> {
    assertSafeKey(key);
    const metadata = normaliseMetadata(options.metadata, key);
    const base = await this.base();
    const dataTmp = this.tmpPath(base);
    const metaTmp = this.tmpPath(base);
    let sink: ReturnType<typeof createWriteStream> | undefined;
    try {
      const counter = progressCounter(options.onProgress);
      const source = body instanceof Readable ? body : Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
      // flush: fsync before close, so a rename never publishes bytes still in the page cache only
      sink = createWriteStream(dataTmp, { flush: true });
      await pipeline(source, counter, sink);
      await fsp.writeFile(metaTmp, JSON.stringify({ metadata }), { flush: true });
      const dataPath = await this.place(key, dataTmp, metaTmp);
      const stat = await fsp.stat(dataPath);
      return { key, size: stat.size, lastModified: stat.mtime.toISOString(), metadata };
    } catch (err) {
      // A failed pipeline destroys the file stream, but its file may still be being opened: wait for
      // it to close, or the temp file appears after the rm below and stays behind.
      if (sink && !sink.closed) await new Promise<void>((r) => sink!.once('close', () => r()));
      await Promise.all([fsp.rm(dataTmp, { force: true }), fsp.rm(metaTmp, { force: true })]);
      throw this.ioError('write', key, err);
    }
  }

  /**
   * Moves the written temp files into place and returns the object's path. A delete of another object
   * may prune the (empty) folders between our mkdir and rename; that race only costs a retry.
   */
  private async place(key: string, dataTmp: string, metaTmp: string): Promise<string> {
    let dataPlaced: string | undefined;
    let metaPlaced = false;
    for (let attempt = 1; ; attempt++) {
      try {
        if (dataPlaced === undefined) {
          const dataPath = await this.resolve('objects', key, true);
          if (dataPath === undefined) throw Object.assign(new Error(`folder of ${key} vanished`), { code: 'ENOENT' });
          await this.assertNotFolder(dataPath, key);
          await fsp.rename(dataTmp, dataPath);
          dataPlaced = dataPath;
        }
        if (!metaPlaced) {
          const metaPath = await this.resolve('meta', key, true);
          if (metaPath === undefined) throw Object.assign(new Error(`folder of ${key} vanished`), { code: 'ENOENT' });
          await fsp.rename(metaTmp, metaPath);
          metaPlaced = true;
        }
        return dataPlaced;
      } catch (err) {
        if (attempt >= 5 || !isMissing(err)) throw err;
      }
    }
  }

  private async assertNotFolder(file: string, key: string): Promise<void> {
    const stat = await fsp.lstat(file).catch(() => undefined);
    if (stat?.isDirectory()) throw new ConflictError(`object key ${JSON.stringify(key)}: a folder of other objects has this name`);
  }

  /** Reads the whole file; NotFoundError naming the key when absent. */
  async getBytes(key: string): Promise<Uint8Array> {
    assertSafeKey(key);
    const file = await this.existingObjectPath(key);
    try {
      if (file === undefined) throw Object.assign(new Error('absent'), { code: 'ENOENT' });
      return await fsp.readFile(file);
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'EISDIR') throw this.notFound(key);
      throw this.ioError('read', key, err);
    }
  }

  /** Opens the file before returning, so a missing key fails here and a later overwrite cannot cut the stream. */
  async getStream(key: string): Promise<Readable> {
    assertSafeKey(key);
    const file = await this.existingObjectPath(key);
    if (file === undefined) throw this.notFound(key);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') throw this.notFound(key);
      throw this.ioError('read', key, err);
    }
    const stat = await handle.stat();
    if (stat.isDirectory()) {
      await handle.close();
      throw this.notFound(key);
    }
    return handle.createReadStream({ autoClose: true });
  }

  private notFound(key: string): NotFoundError {
    return new NotFoundError(`object ${JSON.stringify(key)} not found in ${this.root}`);
  }

  /** Size and time from the file, metadata from its sidecar; undefined when absent. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    assertSafeKey(key);
    const file = await this.existingObjectPath(key);
    if (file === undefined) return undefined;
    const stat = await fsp.stat(file).catch(() => undefined);
    if (stat === undefined || !stat.isFile()) return undefined;
    return { key, size: stat.size, lastModified: stat.mtime.toISOString(), metadata: await this.readMetadata(key) };
  }

  private async readMetadata(key: string): Promise<Record<string, string>> {
    const metaPath = await this.resolve('meta', key, false);
    if (metaPath === undefined) return {};
    try {
      const parsed = JSON.parse(await fsp.readFile(metaPath, 'utf8')) as { metadata?: Record<string, string> };
      return parsed.metadata ?? {};
    } catch (err) {
      // a missing sidecar means no metadata (e.g. a file copied in by hand)
      if (errorCode(err) === 'ENOENT') return {};
      throw this.ioError('read the metadata of', key, err);
    }
  }

  /** Walks the folder that holds `prefix` recursively; symlinks are not followed. Sorted by key. */
  async list(prefix: string): Promise<ObjectInfo[]> {
    assertSafePrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const folderKey = slash < 0 ? '' : prefix.slice(0, slash);
    let start: string | undefined;
    if (folderKey === '') {
      start = path.join(await this.base(), 'objects');
    } else {
      start = await this.resolve('objects', folderKey, false);
      if (start !== undefined) start = await fsp.realpath(start).catch(() => undefined);
    }
    if (start === undefined) return [];
    this.assertInside(path.join(await this.base(), 'objects'), start, prefix);
    const keys: string[] = [];
    const walk = async (dir: string, dirKey: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return;
        throw this.ioError('list', prefix, err);
      }
      for (const entry of entries) {
        const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
        if (entry.isDirectory()) {
          // only descend where keys below could still match the prefix
          if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(path.join(dir, entry.name), key);
        } else if (entry.isFile() && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await walk(start, folderKey);
    keys.sort(compareKeys);
    const infos = await Promise.all(keys.map((k) => this.head(k)));
    return infos.filter((i): i is ObjectInfo => i !== undefined);
  }

  /** Deleting an absent key is not an error (as on S3). Empty folders left behind are removed. */
  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    for (const tree of ['objects', 'meta'] as const) {
      const file = await this.resolve(tree, key, false);
      if (file === undefined) continue;
      const stat = await fsp.lstat(file).catch(() => undefined);
      if (stat === undefined || stat.isDirectory()) continue;
      await fsp.rm(file, { force: true });
      await this.pruneEmptyFolders(path.join(await this.base(), tree), path.dirname(file));
    }
  }

  private async pruneEmptyFolders(treeRoot: string, dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(treeRoot + path.sep)) {
      try {
        await fsp.rmdir(current);
      } catch {
        return; // not empty (or gone): stop
      }
      current = path.dirname(current);
    }
  }
}

/** ENOENT, directly or as the cause of one of our wrapped errors. */
function isMissing(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if (errorCode(e) === 'ENOENT') return true;
  }
  return false;
}
