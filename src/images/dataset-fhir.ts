/** Dataset source (d): a FHIR server's Media or DocumentReference resources, labelled by their codes. */
import type { FhirDataClient, FhirResource } from '../data/port.js';
import { BadRequestError } from '../errors.js';
import { assembleDataset, byString, type DatasetBuild, type DatasetEntry, type DatasetOptions } from './dataset-assembly.js';
import { imageStatsFromBuffer } from './metadata.js';

/** Which FHIR resources hold the images and how their labels are found. */
export interface FhirSourceDataset {
  /** Default `Media`. */
  resourceType?: 'Media' | 'DocumentReference';
  /** Search parameters (e.g. `{ subject: 'Group/study-1' }`). */
  params?: Record<string, string | number>;
  /** The class of a resource; default {@link defaultFhirLabel}. Return undefined to skip it. */
  labelOf?: (resource: FhirResource) => string | undefined;
}

interface CodeableConcept {
  text?: string;
  coding?: Array<{ code?: string; display?: string }>;
}

function conceptLabel(value: unknown): string | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const cc = value as CodeableConcept;
  if (typeof cc.text === 'string' && cc.text.trim()) return cc.text.trim();
  for (const c of cc.coding ?? []) {
    const v = c.display ?? c.code;
    if (typeof v === 'string' && v.trim()) return v.trim();
  }
  return undefined;
}

/**
 * Default label of an image resource: the text of its `code`, else of its `type` (DocumentReference
 * type, or Media type when it is not the generic `image`), else the first coding's display or code.
 */
export function defaultFhirLabel(resource: FhirResource): string | undefined {
  const fromCode = conceptLabel(resource.code);
  if (fromCode) return fromCode;
  const fromType = conceptLabel(resource.type);
  if (fromType && !(resource.resourceType === 'Media' && fromType.toLowerCase() === 'image')) return fromType;
  return undefined;
}

/**
 * The image attachment of a Media (`content`) or DocumentReference (`content[0].attachment`): its
 * inline base64 `data` or its `url`, and its declared `contentType`; undefined when it has none.
 */
export function fhirImageAttachment(resource: FhirResource): { data?: string; url?: string; contentType?: string } | undefined {
  const content = resource.content;
  const att = Array.isArray(content)
    ? (content as Array<{ attachment?: unknown }>).map((c) => c.attachment).find((a) => a && typeof a === 'object')
    : content;
  if (!att || typeof att !== 'object') return undefined;
  const a = att as { data?: unknown; url?: unknown; contentType?: unknown };
  if (typeof a.data !== 'string' && typeof a.url !== 'string') return undefined;
  return {
    data: typeof a.data === 'string' ? a.data : undefined,
    url: typeof a.url === 'string' ? a.url : undefined,
    contentType: typeof a.contentType === 'string' ? a.contentType : undefined,
  };
}

/**
 * Dataset of the image resources of a FHIR server: each resource's attachment is the image and its
 * label the class. Paths are resource references (`Media/123`). Resources without an attachment or
 * a label are skipped and reported.
 */
export async function datasetFromFhir(
  client: FhirDataClient,
  where: FhirSourceDataset = {},
  options: DatasetOptions = {},
): Promise<DatasetBuild> {
  const type = where.resourceType ?? 'Media';
  const labelOf = where.labelOf ?? defaultFhirLabel;
  const entries: DatasetEntry[] = [];
  for await (const resource of client.searchAll(type, where.params)) {
    if (resource.resourceType !== type) continue; // included resources, OperationOutcomes
    const ref = `${type}/${resource.id ?? '?'}`;
    const label = labelOf(resource);
    const attachment = fhirImageAttachment(resource);
    let problem: string | undefined;
    if (!label) problem = `${ref} has no label (no code or type text)`;
    else if (!attachment) problem = `${ref} has no image attachment (data or url)`;
    entries.push({
      path: ref,
      label: label ?? '',
      read: problem
        ? () => Promise.reject(new BadRequestError(problem))
        : async () => imageStatsFromBuffer(await client.attachmentBytes(attachment!), ref, { maxPixels: options.maxImagePixels }),
    });
  }
  const classes = [...new Set(entries.map((e) => e.label))].filter((l) => l !== '').sort(byString);
  return assembleDataset(classes, entries, options);
}
