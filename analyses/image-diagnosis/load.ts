/**
 * Node-local image loading for the diagnosis: wherever a node's images live (a seed-000 `dataset`
 * object with local paths, a folder of class sub-folders, an IDX pair, an S3 prefix or folder data
 * source, a FHIR server), each image is decoded once and reduced to its metadata, channel sums and
 * quality signals (signals.ts). Images that cannot be read are reported and skipped.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { FlameSDK } from '../../src/sdk.js';
import type { FhirDataClient, FileDataClient } from '../../src/data/port.js';
import { BadRequestError } from '../../src/errors.js';
import {
  decodeImage,
  defaultFhirLabel,
  fhirImageAttachment,
  fileUuid,
  IMAGE_EXTENSIONS,
  imageStatsFromPixels,
  mapConcurrent,
  metadataFromStats,
  readIdxImageSet,
  type Dataset,
  type DecodedImage,
  type ImageMetadata,
  type ImageStats,
} from '../../src/images/index.js';
import { imageSignals, type ImageSignals } from './signals.js';

/** Where one node's images are. Exactly one of the fields. */
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
  uuid: string;
  label: string;
  meta: ImageMetadata;
  stats: ImageStats;
  signals: ImageSignals;
}

/** A node's loaded images and the files it had to skip. */
export interface LocalData {
  images: LocalImage[];
  /** Classes the node's source names (in order), including empty ones. */
  classes: string[];
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

function fromFiles(client: FileDataClient, prefix: string | undefined, scope: string): Promise<{ classes: string[]; entries: Entry[] }> {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  const base = trimmed ? `${trimmed}/` : '';
  return client.list(base).then((listed) => {
    const entries: Entry[] = [];
    for (const { key } of listed) {
      const rest = key.slice(base.length);
      const slash = rest.indexOf('/');
      if (slash <= 0 || !isImageKey(rest)) continue;
      entries.push({ path: key, label: rest.slice(0, slash), uuid: fileUuid(key, scope), decode: async () => decodeImage(await client.getBytes(key), key) });
    }
    return { classes: [...new Set(entries.map((e) => e.label))].sort(), entries };
  });
}

async function fromFhir(client: FhirDataClient, resourceType: 'Media' | 'DocumentReference', scope: string): Promise<{ classes: string[]; entries: Entry[] }> {
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
      decode: problem ? () => Promise.reject(new BadRequestError(problem)) : async () => decodeImage(await client.attachmentBytes(attachment!), ref),
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
async function fromFolder(root: string): Promise<{ classes: string[]; entries: Entry[] }> {
  const abs = path.resolve(root);
  const top = await readdir(abs, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new BadRequestError(`dataset folder ${abs} cannot be read: ${e.code ?? e.message}`, { cause: e });
  });
  const classes = top.filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort();
  const entries: Entry[] = [];
  for (const label of classes) {
    for (const file of await listImages(path.join(abs, label))) entries.push({ path: file, label, uuid: fileUuid(file), decode: () => decodeImage(file) });
  }
  return { classes, entries };
}

async function fromIdx(spec: { images: string; labels: string; classNames?: string[] }): Promise<{ classes: string[]; entries: Entry[] }> {
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
      decode: label === undefined
        ? () => Promise.reject(new BadRequestError(`${p}: label ${set.labels[i]} has no class name`))
        : () => Promise.resolve({ pixels, width: set.cols, height: set.rows, channels: 1, maxValue: 255 }),
    });
  }
  return { classes, entries };
}

function fromDataset(dataset: Dataset): { classes: string[]; entries: Entry[] } {
  const entries: Entry[] = [];
  for (const label of dataset.classes) {
    for (const [file, info] of Object.entries(dataset.class_files[label] ?? {})) {
      entries.push({ path: file, label, uuid: info.uuid, decode: () => decodeImage(file) });
    }
  }
  return { classes: [...dataset.classes], entries };
}

/** The entries of a node's data. With no spec, the node's first configured data source. */
async function entriesOf(sdk: FlameSDK, spec: NodeDataSpec | undefined): Promise<{ classes: string[]; entries: Entry[] }> {
  const scope = sdk.nodeId;
  if (spec && 'dataset' in spec) return fromDataset(spec.dataset);
  if (spec && 'folder' in spec) return fromFolder(spec.folder);
  if (spec && 'idx' in spec) return fromIdx(spec.idx);
  const sources = sdk.getDataSources();
  const id = spec?.source ?? sources[0]?.id;
  if (id === undefined) throw new BadRequestError(`node "${sdk.nodeId}": no images to diagnose (no dataset given and no data source configured)`);
  const client = sdk.getDataClient(id);
  if (client.type === 'fhir') return fromFhir(client, (spec && 'resourceType' in spec && spec.resourceType) || 'Media', scope);
  return fromFiles(client, spec && 'prefix' in spec ? spec.prefix : undefined, scope);
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
