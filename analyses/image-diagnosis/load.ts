/**
 * Node-local image loading for the diagnosis: wherever a node's images live (a seed-000 `dataset`
 * object with local paths, a folder of class sub-folders, an IDX pair, an S3 prefix or folder data
 * source, a FHIR server), each image is decoded once and reduced to its metadata, channel sums and
 * quality signals (signals.ts). Images that cannot be read, or whose header gives more pixels than
 * the node's `maxImagePixels` cap, are reported and skipped; more classes than its `maxClasses` cap
 * fail the load.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { FlameSDK } from 'flame-sdk';
import type { FhirDataClient, FileDataClient } from 'flame-sdk';
import { BadRequestError } from 'flame-sdk';
import { overLimit } from 'flame-sdk';
import {
  decodeImage,
  defaultFhirLabel,
  fhirImageAttachment,
  fileUuid,
  IMAGE_EXTENSIONS,
  imageOverPixelLimit,
  imageStatsFromPixels,
  mapConcurrent,
  metadataFromStats,
  readIdxImageSet,
  type Dataset,
  type DecodedImage,
  type ImageMetadata,
  type ImageStats,
} from 'flame-sdk/images';
import { imageSignals, type ImageSignals } from './signals.js';

/**
 * Where one node's images are. Exactly one of the fields: `dataset`, a seed-000 dataset whose keys
 * are the image paths; `folder`, a folder with one sub-folder per class; `idx`, an MNIST-format
 * pair (`images` and `labels` files, optional `classNames` by label index); or `source`.
 */
export type NodeDataSpec =
  | { dataset: Dataset }
  | { folder: string }
  | { idx: { images: string; labels: string; classNames?: string[] } }
  /** A configured data source (folder, S3 or FHIR) by id; `prefix` for file sources, `resourceType` for FHIR. */
  | { source: string; prefix?: string; resourceType?: 'Media' | 'DocumentReference' };

/** One image as the node holds it between rounds. */
export interface LocalImage {
  /** Key in the node's data (path, object key, IDX virtual path or FHIR reference). */
  path: string;
  /** The image's stable uuid. */
  uuid: string;
  /** The class it is filed under. */
  label: string;
  /** Its seed-000 metadata (size, channels, mean, std). */
  meta: ImageMetadata;
  /** Its channel sums, for exact pooling. */
  stats: ImageStats;
  /** What the quality and duplicate tasks judge it by. */
  signals: ImageSignals;
}

/** A node's loaded images and the files it had to skip. */
export interface LocalData {
  /** The images that could be read, in the source's order. */
  images: LocalImage[];
  /** Classes the node's source names (in order), including empty ones. */
  classes: string[];
  /** Files that could not be read: their `path` and the `error`. */
  skipped: Array<{ path: string; error: string }>;
}

interface Entry {
  path: string;
  label: string;
  uuid: string;
  decode: () => Promise<DecodedImage>;
}

function isImageKey(key: string): boolean {
  const base = key.slice(key.lastIndexOf('/') + 1);
  return !base.startsWith('.') && IMAGE_EXTENSIONS.has(path.extname(base).toLowerCase());
}

function fromFiles(client: FileDataClient, prefix: string | undefined, scope: string, maxPixels: number): Promise<{ classes: string[]; entries: Entry[] }> {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  const base = trimmed ? `${trimmed}/` : '';
  return client.list(base).then((listed) => {
    const entries: Entry[] = [];
    for (const { key } of listed) {
      const rest = key.slice(base.length);
      const slash = rest.indexOf('/');
      if (slash <= 0 || !isImageKey(rest)) continue;
      entries.push({ path: key, label: rest.slice(0, slash), uuid: fileUuid(key, scope), decode: async () => decodeImage(await client.getBytes(key), key, { maxPixels }) });
    }
    return { classes: [...new Set(entries.map((e) => e.label))].sort(), entries };
  });
}

async function fromFhir(client: FhirDataClient, resourceType: 'Media' | 'DocumentReference', scope: string, maxPixels: number): Promise<{ classes: string[]; entries: Entry[] }> {
  const entries: Entry[] = [];
  for await (const resource of client.searchAll(resourceType)) {
    if (resource.resourceType !== resourceType) continue;
    const ref = `${resourceType}/${resource.id ?? '?'}`;
    const label = defaultFhirLabel(resource);
    const attachment = fhirImageAttachment(resource);
    const problem = !label ? `${ref} has no label (no code or type text)` : !attachment ? `${ref} has no image attachment` : undefined;
    entries.push({
      path: ref,
      label: label ?? '',
      uuid: fileUuid(ref, scope),
      decode: problem ? () => Promise.reject(new BadRequestError(problem)) : async () => decodeImage(await client.attachmentBytes(attachment!), ref, { maxPixels }),
    });
  }
  return { classes: [...new Set(entries.map((e) => e.label))].filter((l) => l).sort(), entries };
}

/** Image files below `dir`, recursively, sorted; hidden entries skipped. */
async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    if (d.name.startsWith('.')) continue;
    const p = path.join(dir, d.name);
    if (d.isDirectory()) out.push(...(await listImages(p)));
    else if (isImageKey(d.name)) out.push(p);
  }
  return out.sort();
}

/** A local folder of class sub-folders: absolute paths as keys, uuids of the path alone (as `datasetFromFolder` makes them). */
async function fromFolder(root: string, maxPixels: number): Promise<{ classes: string[]; entries: Entry[] }> {
  const abs = path.resolve(root);
  const top = await readdir(abs, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new BadRequestError(`dataset folder ${abs} cannot be read: ${e.code ?? e.message}`, { cause: e });
  });
  const classes = top.filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
  const entries: Entry[] = [];
  for (const label of classes) {
    for (const file of await listImages(path.join(abs, label))) entries.push({ path: file, label, uuid: fileUuid(file), decode: () => decodeImage(file, undefined, { maxPixels }) });
  }
  return { classes, entries };
}

async function fromIdx(spec: { images: string; labels: string; classNames?: string[] }, maxPixels: number): Promise<{ classes: string[]; entries: Entry[] }> {
  const imagesPath = path.resolve(spec.images);
  const set = await readIdxImageSet(imagesPath, path.resolve(spec.labels));
  const size = set.rows * set.cols;
  const names = spec.classNames;
  const classes = names ? [...names] : [...new Set(set.labels)].sort((a, b) => a - b).map(String);
  const entries: Entry[] = [];
  for (let i = 0; i < set.count; i++) {
    const label = names ? names[set.labels[i]] : String(set.labels[i]);
    const p = `${imagesPath}#${i}`;
    const pixels = set.images.subarray(i * size, (i + 1) * size);
    entries.push({
      path: p,
      label: label ?? '',
      uuid: fileUuid(p),
      decode:
        label === undefined
          ? () => Promise.reject(new BadRequestError(`${p}: label ${set.labels[i]} has no class name`))
          : size > maxPixels
            ? () => Promise.reject(imageOverPixelLimit(p, set.cols, set.rows, maxPixels))
            : () => Promise.resolve({ pixels, width: set.cols, height: set.rows, channels: 1, maxValue: 255 }),
    });
  }
  return { classes, entries };
}

function fromDataset(dataset: Dataset, maxPixels: number): { classes: string[]; entries: Entry[] } {
  const entries: Entry[] = [];
  for (const label of dataset.classes) {
    for (const [file, info] of Object.entries(dataset.class_files[label] ?? {})) {
      entries.push({ path: file, label, uuid: info.uuid, decode: () => decodeImage(file, undefined, { maxPixels }) });
    }
  }
  return { classes: [...dataset.classes], entries };
}

/** The entries of a node's data. With no spec, the node's first configured data source. */
async function entriesOf(sdk: FlameSDK, spec: NodeDataSpec | undefined): Promise<{ classes: string[]; entries: Entry[] }> {
  const scope = sdk.nodeId;
  const maxPixels = sdk.config.limits.maxImagePixels;
  if (spec && 'dataset' in spec) return fromDataset(spec.dataset, maxPixels);
  if (spec && 'folder' in spec) return fromFolder(spec.folder, maxPixels);
  if (spec && 'idx' in spec) return fromIdx(spec.idx, maxPixels);
  const sources = sdk.getDataSources();
  const id = spec?.source ?? sources[0]?.id;
  if (id === undefined) throw new BadRequestError(`node "${sdk.nodeId}": no images to diagnose (no dataset given and no data source configured)`);
  const client = sdk.getDataClient(id);
  if (client.type === 'fhir') return fromFhir(client, (spec && 'resourceType' in spec && spec.resourceType) || 'Media', scope, maxPixels);
  return fromFiles(client, spec && 'prefix' in spec ? spec.prefix : undefined, scope, maxPixels);
}

/**
 * Decode every image of this node `concurrency` at a time and keep its metadata, sums and signals.
 * `onProgress(done, total)` after each file.
 */
export async function loadLocalData(
  sdk: FlameSDK,
  spec: NodeDataSpec | undefined,
  options: { concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<LocalData> {
  const { classes, entries } = await entriesOf(sdk, spec);
  // Counted before any image is decoded: the later rounds' memory grows with the classes.
  const { maxClasses } = sdk.config.limits;
  if (classes.length > maxClasses) throw overLimit(`node "${sdk.nodeId}": its images have too many classes`, classes.length, 'maxClasses', maxClasses);
  const settled = await mapConcurrent(
    entries,
    options.concurrency ?? 4,
    async (e) => {
      const img = await e.decode();
      const stats = imageStatsFromPixels(img.pixels, img.width, img.height, img.channels, img.maxValue);
      return { stats, signals: imageSignals(img) };
    },
    options.onProgress,
  );
  const images: LocalImage[] = [];
  const skipped: LocalData['skipped'] = [];
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    const r = settled[i];
    if (!r.ok) {
      const error = r.error instanceof Error ? r.error.message : String(r.error);
      skipped.push({ path: e.path, error });
      sdk.log.warn('skipped an image that could not be read', { path: e.path, error });
      return;
    }
    if (seen.has(e.path)) {
      skipped.push({ path: e.path, error: `duplicate path ${e.path}: kept the first one` });
      return;
    }
    seen.add(e.path);
    images.push({ path: e.path, uuid: e.uuid, label: e.label, stats: r.value.stats, meta: metadataFromStats(r.value.stats), signals: r.value.signals });
  });
  return { images, classes, skipped };
}
