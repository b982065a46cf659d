/** Small seed-000 requests over a slice of data/sample (real PNGs), for the job tests. */
import path from 'node:path';
import { datasetFromFolder, type Dataset } from '../../src/images/index.js';

/** data/sample's node-a. */
export const NODE_A = path.resolve('data/sample/node-a');

/** node-a as a seed-000 dataset with the first `perClass` files of each class (as datasetFromFolder lists them). */
export async function sampleDataset(perClass: number): Promise<Dataset> {
  const { dataset } = await datasetFromFolder(NODE_A);
  const class_files = Object.fromEntries(dataset.classes.map((c) => [c, Object.fromEntries(Object.entries(dataset.class_files[c]).slice(0, perClass))]));
  return { ...dataset, class_files };
}

/** Every path of a dataset with its class. */
export function filesOf(dataset: Dataset): Array<{ path: string; cls: string; uuid: string }> {
  return dataset.classes.flatMap((cls) => Object.entries(dataset.class_files[cls]).map(([p, f]) => ({ path: p, cls, uuid: f.uuid })));
}
