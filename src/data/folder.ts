/**
 * The folder data source: files below a local directory (image folders, IDX, CSV), addressed by
 * relative POSIX keys. Nothing outside the root can be read: `..` keys are refused, and symlinks
 * are followed only while their target stays inside the root.
 */
import { constants as fsConstants, type Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BadRequestError, NotFoundError } from '../errors.js';
import { checkDataKey, checkListPrefix } from './keys.js';
import type { DataEntry, FileDataClient } from './port.js';

/** Reads files below one local folder. */
export class FolderDataClient implements FileDataClient {
  readonly type = 'folder' as const;
  /** The folder, as an absolute path. */
  readonly root: string;
  private realRoot?: Promise<string>;

  constructor(folder: string) {
    if (typeof folder !== 'string' || folder === '') {
      throw new BadRequestError(`folder data source: path ${JSON.stringify(folder)} is empty`);
    }
    this.root = path.resolve(folder);
  }

  /** Every file below `prefix` (a key prefix, e.g. `"train/"` or `"train/cat"`), sorted by key. */
  async list(prefix?: string): Promise<DataEntry[]> {
    const p = checkListPrefix(prefix, this.describe());
    const realRoot = await this.resolvedRoot();
    // Walk only the deepest folder the prefix names, then filter by the full prefix.
    const startKey = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    const entries: DataEntry[] = [];
    if (startKey && !(await this.dirInside(realRoot, startKey))) return entries;
    await this.walk(realRoot, startKey, entries);
    return entries
      .filter((e) => e.key.startsWith(p))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The whole file. */
  async getBytes(key: string): Promise<Uint8Array> {
    const handle = await this.open(key);
    try {
      return new Uint8Array(await handle.readFile());
    } finally {
      await handle.close();
    }
  }

  /** The file as a stream (opened before returning, so a missing key fails here). */
  async getStream(key: string): Promise<Readable> {
    const handle = await this.open(key);
    return handle.createReadStream();
  }

  private describe(): string {
    return `folder data source ${this.root}`;
  }

  private resolvedRoot(): Promise<string> {
    this.realRoot ??= fs.realpath(this.root).catch((err: NodeJS.ErrnoException) => {
      this.realRoot = undefined;
      if (err.code === 'ENOENT') throw new NotFoundError(`${this.describe()}: the folder does not exist`);
      throw err;
    });
    return this.realRoot;
  }

  private inside(realRoot: string, real: string): boolean {
    return real === realRoot || real.startsWith(realRoot + path.sep);
  }

  /** Whether `dirKey` names a directory whose real path is inside the root (no symlink escape). */
  private async dirInside(realRoot: string, dirKey: string): Promise<boolean> {
    const real = await fs.realpath(path.join(realRoot, ...dirKey.split('/'))).catch(() => undefined);
    return real !== undefined && this.inside(realRoot, real);
  }

  /** Open a file by key after checking that its real path is inside the root. */
  private async open(key: string): Promise<fs.FileHandle> {
    checkDataKey(key, this.describe());
    const realRoot = await this.resolvedRoot();
    let real: string;
    try {
      real = await fs.realpath(path.join(realRoot, ...key.split('/')));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`${this.describe()}: no file "${key}"`);
      throw err;
    }
    if (!this.inside(realRoot, real)) {
      throw new BadRequestError(`${this.describe()}: key "${key}" leads outside the folder (through a symlink)`);
    }
    // O_NOFOLLOW: the resolved path's last component must not have become a symlink meanwhile.
    const handle = await fs.open(real, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      throw new NotFoundError(`${this.describe()}: "${key}" is not a file`);
    }
    return handle;
  }

  /**
   * Collect files below `dirKey`. Symlinks to files inside the root are listed under the link's
   * key; symlinks to directories are not descended (their files are listed at their real place,
   * and cycles are impossible); symlinks leading outside the root are skipped.
   */
  private async walk(realRoot: string, dirKey: string, out: DataEntry[]): Promise<void> {
    const dir = dirKey ? path.join(realRoot, ...dirKey.split('/')) : realRoot;
    let dirents: Dirent[];
    try {
      dirents = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    for (const d of dirents) {
      const key = dirKey ? `${dirKey}/${d.name}` : d.name;
      const full = path.join(dir, d.name);
      if (d.isDirectory()) {
        await this.walk(realRoot, key, out);
      } else if (d.isFile()) {
        const st = await fs.stat(full);
        out.push({ key, size: st.size, lastModified: st.mtime.toISOString() });
      } else if (d.isSymbolicLink()) {
        const real = await fs.realpath(full).catch(() => undefined);
        if (!real || !this.inside(realRoot, real)) continue;
        const st = await fs.stat(real);
        if (st.isFile()) out.push({ key, size: st.size, lastModified: st.mtime.toISOString() });
      }
    }
  }
}
