/** Dataset source (a): a local folder, `<root>/<class>/.../<image>`. */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BadRequestError, NotFoundError } from '../errors.js';
import { assembleDataset, byString, isImageName, type DatasetBuild, type DatasetEntry, type DatasetOptions } from './dataset-assembly.js';
import { imageStats } from './metadata.js';

/**
 * Dataset of a folder whose sub-folders are the classes (`root/cat/1.png`, `root/dog/a/2.jpg`).
 * Class names are the sub-folder names, sorted; empty class folders are kept as empty classes.
 * Paths (the keys of `class_files`) are absolute. Files directly in `root`, hidden files and files
 * without an image extension ({@link IMAGE_EXTENSIONS}) are ignored; image files that cannot be
 * decoded are skipped and reported.
 * @throws NotFoundError if `root` does not exist; BadRequestError if it is not a folder.
 */
export async function datasetFromFolder(root: string, options: DatasetOptions = {}): Promise<DatasetBuild> {
  const abs = resolve(root);
  const info = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new NotFoundError(`Dataset folder ${abs} does not exist`, { cause: err });
    throw err;
  });
  if (!info.isDirectory()) throw new BadRequestError(`Dataset folder ${abs} is not a folder`);
  const top = await readdir(abs, { withFileTypes: true });
  const classes = top
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort(byString);
  const entries: DatasetEntry[] = [];
  for (const label of classes) {
    const files = await listImageFiles(join(abs, label));
    for (const path of files) entries.push({ path, label, read: () => imageStats(path, { maxPixels: options.maxImagePixels }) });
  }
  return assembleDataset(classes, entries, options);
}

async function listImageFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const items: Dirent[] = await readdir(d, { withFileTypes: true });
    for (const it of items) {
      if (it.name.startsWith('.')) continue;
      const p = join(d, it.name);
      if (it.isDirectory()) await walk(p);
      else if ((it.isFile() || it.isSymbolicLink()) && isImageName(it.name)) out.push(p);
    }
  };
  await walk(dir);
  return out.sort(byString);
}
