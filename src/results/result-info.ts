/**
 * What is stored with a result and listed about it: the metadata written beside each result (name,
 * owner, encoding, value kind, `other`) and seed 003's listing structures read back from it.
 */
import { valueKindOf, type JsonValue } from '../codec/index.js';
import { BadRequestError } from '../errors.js';
import type { ObjectInfo } from './port.js';

/** Options when storing a result. */
export interface ResultOptions {
  /** A human-readable name (any text up to 256 characters); defaults to the result id. */
  name?: string;
  /** Extra JSON facts listed with the result (seed 003's `other`); small, it travels as metadata. */
  other?: { [key: string]: JsonValue };
}

/** Options when saving a local result. */
export interface LocalResultOptions extends ResultOptions {
  /** Groups the result under this tag (1-32 lower-case letters, digits or inner `-`, as FLAME's storage service allows). */
  tag?: string;
}

/**
 * What a final result holds, checked when it is sent and listed with it: `json` a JSON value, `text`
 * a string, `bytes` a byte array; `value` (default) any value the codec carries (tables, tensors …).
 */
export type OutputType = 'value' | 'json' | 'text' | 'bytes';

/** The output types {@link OutputType} names. */
export const OUTPUT_TYPES: readonly OutputType[] = ['value', 'json', 'text', 'bytes'];

/** Options when sending a final result. */
export interface FinalResultOptions extends ResultOptions {
  /** What the value must be (default `value`: anything); refused with BadRequestError when it is not. */
  outputType?: OutputType;
}

/** A local tag as the storage service allows it. */
export const LOCAL_TAG_PATTERN = /^(?:[a-z0-9]{1,2}|[a-z0-9][a-z0-9-]{0,30}[a-z0-9])$/;

/** One hub result, with seed 003's "result structure hub" fields. */
export interface HubResultInfo {
  /** The result's id (a UUID). */
  result_id: string;
  /** Its name (the id when none was given). */
  result_name: string;
  /** The node that wrote it. */
  node_id: string;
  /** Stored bytes. */
  result_size: number;
  /** ISO-8601 time it was written. */
  result_time: string;
  /** The node that wrote it. */
  result_owner: string;
  /** The JSON facts given as `other` when it was stored; `{}` when none. */
  other: { [key: string]: JsonValue };
}

/** One local result, with seed 003's "result structure local" fields. */
export interface LocalResultInfo {
  /** The result's id (a UUID). */
  result_id: string;
  /** Its name (the id when none was given). */
  result_name: string;
  /** The analysis that stored it. */
  analysis_id: string;
  /** Stored bytes. */
  result_size: number;
  /** ISO-8601 time it was written. */
  result_time: string;
  /** The node that wrote it. */
  result_owner: string;
  /** The JSON facts given as `other` when it was stored; `{}` when none. */
  other: { [key: string]: JsonValue };
  /** The tag it was saved under, when one was given. */
  tag?: string;
}

/** A final result as `listResults` reports it: seed 003's fields plus how its signature checked out. */
export interface FinalResultInfo extends HubResultInfo {
  /** True when signed by the aggregator with a key from the roster, for the size stored. */
  verified: boolean;
  /** The node whose key signed it, when the signature verified. */
  signed_by?: string;
  /** What was checked, or why it is not verified. */
  verification: string;
  /** What it holds, as given when it was sent (`value` when none was). */
  output_type: OutputType;
}

/** How the bytes of a result are stored: a codec frame, or raw bytes from a stream. */
export type Encoding = 'flame-v1' | 'raw';

const MAX_NAME_CHARS = 256;

/** Metadata common to every result; `other` and the name are URI-encoded (S3 metadata is ASCII). */
export function resultMetadata(owner: { nodeId: string; analysisId: string }, id: string, opts: ResultOptions, encoding: Encoding, kind: string, contentType: string): Record<string, string> {
  const name = opts.name ?? id;
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_CHARS) {
    throw new BadRequestError(`result name ${JSON.stringify(name)}: expected 1-${MAX_NAME_CHARS} characters`);
  }
  const meta: Record<string, string> = {
    'result-name': encodeURIComponent(name),
    'node-id': owner.nodeId,
    'analysis-id': owner.analysisId,
    owner: owner.nodeId,
    encoding,
    'value-kind': kind,
    'content-type': encodeURIComponent(contentType),
  };
  if (opts.other !== undefined) {
    if (opts.other === null || typeof opts.other !== 'object' || Array.isArray(opts.other)) {
      throw new BadRequestError(`result ${JSON.stringify(name)} option other: expected a JSON object`);
    }
    if (valueKindOf(opts.other) !== 'json') throw new BadRequestError(`result ${JSON.stringify(name)} option other: JSON only (no bytes, tables or tensors)`);
    meta.other = encodeURIComponent(JSON.stringify(opts.other));
  }
  return meta;
}

/** A hub result as listed, from its stored object. */
export function hubInfo(o: ObjectInfo): HubResultInfo {
  const common = commonInfo(o);
  return {
    result_id: common.result_id,
    result_name: common.result_name,
    node_id: o.metadata['node-id'] ?? '',
    result_size: common.result_size,
    result_time: common.result_time,
    result_owner: common.result_owner,
    other: common.other,
  };
}

/** A local result as listed, from its stored object. */
export function localInfo(o: ObjectInfo): LocalResultInfo {
  const common = commonInfo(o);
  return {
    result_id: common.result_id,
    result_name: common.result_name,
    analysis_id: o.metadata['analysis-id'] ?? '',
    result_size: common.result_size,
    result_time: common.result_time,
    result_owner: common.result_owner,
    other: common.other,
    ...(o.metadata.tag !== undefined && LOCAL_TAG_PATTERN.test(o.metadata.tag) ? { tag: o.metadata.tag } : {}),
  };
}

/** The output type recorded with a final result (`value` when none, or one this version does not know). */
export function outputTypeOf(o: ObjectInfo): OutputType {
  const t = o.metadata['output-type'] as OutputType | undefined;
  return t !== undefined && OUTPUT_TYPES.includes(t) ? t : 'value';
}

function commonInfo(o: ObjectInfo): Omit<HubResultInfo, 'node_id'> {
  const id = o.key.slice(o.key.lastIndexOf('/') + 1);
  return {
    result_id: id,
    result_name: decodeMeta(o.metadata['result-name']) ?? id,
    result_size: o.size,
    result_time: o.lastModified,
    result_owner: o.metadata.owner ?? '',
    other: parseOther(o.metadata.other),
  };
}

function decodeMeta(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function parseOther(value: string | undefined): { [key: string]: JsonValue } {
  const text = decodeMeta(value);
  if (text === undefined) return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { [key: string]: JsonValue }) : {};
  } catch {
    return {}; // metadata written by another tool: list the result anyway
  }
}

/** Oldest first; results written in the same millisecond by id. */
export function sortByTime<T extends { result_time: string; result_id: string }>(items: T[]): T[] {
  return items.sort((a, b) => a.result_time.localeCompare(b.result_time) || a.result_id.localeCompare(b.result_id));
}
