/** Dataset source (c): a file data source (S3 prefix or folder) with class sub-prefixes. */
import type { FileDataClient } from '../data/port.js';
import { assembleDataset, byString, isImageName, type DatasetBuild, type DatasetEntry, type DatasetOptions } from './dataset-assembly.js';
import { imageStatsFromBuffer } from './metadata.js';

/** Which part of a file data source holds the dataset. */
export interface FileSourceDataset {
  /** Key prefix of the dataset ("folder"), e.g. `"train/"`; classes are the next key segment. */
  prefix?: string;
  /** The key in `class_files` for an object key; default the key itself. */
  pathOf?: (key: string) => string;
}

/**
 * Dataset of a file data source laid out as `<prefix>/<class>/.../<image>` (S3 objects or folder
 * files). Keys directly below the prefix and keys without an image extension are ignored.
 * Classes are the class segments found, sorted (S3 has no empty folders).
 */
export async function datasetFromFiles(
  client: FileDataClient,
  where: FileSourceDataset = {},
  options: DatasetOptions = {},
): Promise<DatasetBuild> {
  // A dataset prefix is a folder: "train" and "train/" both mean the keys below "train/".
  const trimmed = (where.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const base = trimmed ? `${trimmed}/` : '';
  const listed = await client.list(base);
  const entries: DatasetEntry[] = [];
  for (const { key } of listed) {
    const rest = key.slice(base.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || !isImageName(rest)) continue;
    const label = rest.slice(0, slash);
    entries.push({
      path: where.pathOf ? where.pathOf(key) : key,
      label,
      read: async () => imageStatsFromBuffer(await client.getBytes(key), key, { maxPixels: options.maxImagePixels }),
    });
  }
  const classes = [...new Set(entries.map((e) => e.label))].sort(byString);
  return assembleDataset(classes, entries, options);
}
