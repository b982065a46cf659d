/**
 * A small image dataset made on disk (three classes, nine PNGs of differing sizes and channel
 * counts) and a hand-built diagnosis result over it, shared by the cleaning and report tests.
 *
 * Planted verdicts (file → tasks flagging it):
 *   cat/1  fine                      cat/2  mislabeled → dog, confident (0.8)
 *   cat/3  mislabeled → bird, 0.4    dog/1  too dark (lighting_conditions)
 *   dog/2  mislabeled, no suggestion (current_class = dog)
 *   dog/3  mislabeled → cat (0.9) and too bright
 *   bird/1 fine                      bird/2 blurry (a task other than the seed's two)
 *   bird/3 mislabeled → cat, no confidence_vectors
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CleaningOptions } from '../../analyses/image-cleaning/index.js';
import { buildDataset } from '../../analyses/image-cleaning/pooled.js';
import { datasetFromFolder } from '../../src/images/dataset.js';
import type { ClassFiles, Dataset, DatasetFile, DiagnosisResponse, TaskName } from '../../src/images/types.js';
import { pixels8, rawImage } from '../images/helpers.js';

export const CLASSES = ['cat', 'dog', 'bird'];

/**
 * Cleaning options that act on every outlier (seed 000's rules): the fixture's verdicts exercise
 * each rule, while the default `auto` leaves mislabeled outliers whose own class is not very
 * unlikely for review (none of the fixture's is below the default bar).
 */
export const SEED_RULES: CleaningOptions = { maxGivenConfidence: 1 };

/** name → [width, height, channels, base brightness 0–255] */
const IMAGES: Record<string, [number, number, 1 | 3 | 4, number]> = {
  'cat/1': [8, 8, 1, 120],
  'cat/2': [12, 10, 1, 90],
  'cat/3': [10, 10, 3, 130],
  'dog/1': [16, 8, 3, 6],
  'dog/2': [8, 8, 3, 110],
  'dog/3': [9, 7, 1, 250],
  'bird/1': [8, 8, 4, 140],
  'bird/2': [6, 6, 3, 100],
  'bird/3': [10, 6, 1, 125],
};

/** Mislabeled verdicts: name → [suggested class, confidence vector or none]. */
const MISLABELED: Record<string, [string, number[][] | undefined]> = {
  'cat/2': ['dog', [[0.1, 0.8, 0.1]]],
  'cat/3': ['bird', [[0.35, 0.25, 0.4]]],
  'dog/2': ['dog', [[0.3, 0.4, 0.3]]],
  'dog/3': ['cat', [[0.9, 0.05, 0.05], [0.9, 0.02, 0.08]]],
  'bird/3': ['cat', undefined],
};
const LIGHTING = ['dog/1', 'dog/3'];
const BLURRY = ['bird/2'];
/** Node of each file (the diagnosis helper adds `node`); bird files carry none. */
const NODE_OF = (name: string): string | undefined => (name.startsWith('cat') ? 'node-a' : name.startsWith('dog') ? 'node-b' : undefined);

export interface Fixture {
  /** The dataset folder (class sub-folders). */
  root: string;
  /** The source dataset as datasetFromFolder builds it. */
  dataset: Dataset;
  /** name (`cat/2`) → absolute path. */
  path: Record<string, string>;
  /** name → the source file entry. */
  file: Record<string, DatasetFile>;
  diagnosis: DiagnosisResponse;
}

/** Write the images under `dir/source` and build the diagnosis result over them. */
export async function makeFixture(dir: string): Promise<Fixture> {
  const root = join(dir, 'source');
  for (const [name, [w, h, ch, base]] of Object.entries(IMAGES)) {
    await mkdir(join(root, name.split('/')[0]), { recursive: true });
    const px = pixels8(w, h, ch, (x, y, c) => (c === 3 ? 200 + ((x + y) % 50) : Math.max(0, Math.min(255, base + ((x * 7 + y * 13 + c * 5) % 9) - 4))));
    await rawImage(px, w, h, ch).png().toFile(join(root, `${name}.png`));
  }
  const { dataset, skipped } = await datasetFromFolder(root, { logger: { warn: () => undefined } });
  if (skipped.length) throw new Error(`fixture: skipped ${JSON.stringify(skipped)}`);
  const path: Record<string, string> = {};
  const file: Record<string, DatasetFile> = {};
  for (const name of Object.keys(IMAGES)) {
    const [cls] = name.split('/');
    path[name] = join(root, `${name}.png`);
    file[name] = dataset.class_files[cls][path[name]];
  }
  const names = Object.keys(IMAGES);
  const entry = (name: string, i: number): DatasetFile & { node?: string } => {
    const [cls] = name.split('/');
    const m = MISLABELED[name];
    const node = NODE_OF(name);
    return {
      ...file[name],
      current_class: m ? m[0] : cls,
      original_class: cls,
      projections: { '2d': [Math.cos(i) * (i + 1), Math.sin(i) * (i + 1)] },
      confidence_vectors: m ? m[1] : [CLASSES.map((c) => (c === cls ? 0.9 : 0.05))],
      ...(node ? { node } : {}),
    };
  };
  const split = (flagged: (name: string) => boolean): { outliers: Dataset; inliers: Dataset } => {
    const out: Record<string, ClassFiles> = {};
    const inl: Record<string, ClassFiles> = {};
    names.forEach((name, i) => {
      const [cls] = name.split('/');
      const into = flagged(name) ? out : inl;
      (into[cls] ??= {})[path[name]] = entry(name, i);
    });
    return { outliers: buildDataset(CLASSES, out), inliers: buildDataset(CLASSES, inl) };
  };
  const diagnosis: DiagnosisResponse = {
    dataset_uuid: 'fixture-dataset',
    tasks: [
      { name: 'mislabeled_images', datasets: split((n) => n in MISLABELED) },
      { name: 'lighting_conditions', datasets: split((n) => LIGHTING.includes(n)) },
      // a task the seed does not name: cleaning treats its outliers generically
      { name: 'blurry' as TaskName, datasets: split((n) => BLURRY.includes(n)) },
    ],
  };
  return { root, dataset, path, file, diagnosis };
}

/**
 * The same result keyed as seed 000's examples key results (by file uuid), with the fields
 * analyses/image-diagnosis/output.ts adds: the path in a `path` field, files filed under their
 * `current_class`, flagged files with `issue` and `score`.
 */
export function uuidKeyed(diagnosis: DiagnosisResponse): DiagnosisResponse {
  const out = structuredClone(diagnosis);
  for (const task of out.tasks) {
    for (const [kind, ds] of Object.entries(task.datasets)) {
      const files = Object.values(ds.class_files).flatMap((fs) => Object.entries(fs));
      ds.class_files = Object.fromEntries(ds.classes.map((c) => [c, {} as ClassFiles]));
      for (const [key, f] of files) {
        const flagged = kind === 'outliers';
        const current = task.name === 'mislabeled_images' ? f.current_class! : f.original_class!;
        const extra = flagged ? { issue: task.name === 'lighting_conditions' ? (f.mean[0] < 0.5 ? 'too_dark' : 'too_bright') : task.name, score: 0.25 } : {};
        ds.class_files[current][f.uuid] = { ...f, current_class: current, path: key, ...extra } as unknown as DatasetFile;
      }
    }
  }
  return out;
}
