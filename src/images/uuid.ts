/**
 * Deterministic file ids: RFC 4122 version-5 UUIDs (SHA-1 of a namespace and a name), so the same
 * file of the same source gets the same `uuid` in every run and on every machine.
 */
import { createHash } from 'node:crypto';
import { BadRequestError } from '../errors.js';

/** Namespace of the ids of dataset files (a fixed, randomly chosen UUID). */
export const FILE_UUID_NAMESPACE = '8f0a3c52-6d1e-4b7a-9e25-c1d4f6a8b903';

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new BadRequestError(`Namespace ${JSON.stringify(uuid)} is not a UUID`);
  return Buffer.from(hex, 'hex');
}

/** The version-5 UUID of `name` in `namespace` (RFC 4122 §4.3). */
export function uuidV5(name: string, namespace: string): string {
  const hash = createHash('sha1').update(uuidBytes(namespace)).update(name, 'utf8').digest();
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC 4122 variant
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The `uuid` of a dataset file: a v5 UUID of its path. `scope` (e.g. a node or source id) keeps
 * ids apart when two sources use the same paths, such as relative S3 keys on two nodes.
 */
export function fileUuid(path: string, scope?: string): string {
  return uuidV5(scope ? `${scope}\n${path}` : path, FILE_UUID_NAMESPACE);
}
