/**
 * Deterministic file ids: version-5 UUIDs (SHA-1 of a namespace and a name, from the `uuid` package), so the same
 * file of the same source gets the same `uuid` in every run and on every machine.
 */
import { v5, validate } from 'uuid';
import { BadRequestError } from '../errors.js';

/** Namespace of the ids of dataset files (a fixed, randomly chosen UUID). */
export const FILE_UUID_NAMESPACE = '8f0a3c52-6d1e-4b7a-9e25-c1d4f6a8b903';

/** The version-5 UUID of `name` in `namespace` (RFC 9562 §5.5, formerly RFC 4122 §4.3), by the `uuid` package. */
export function uuidV5(name: string, namespace: string): string {
  // checked here so a bad namespace is a BadRequestError naming it, not uuid's bare TypeError
  if (!validate(namespace)) throw new BadRequestError(`Namespace ${JSON.stringify(namespace)} is not a UUID`);
  return v5(name, namespace);
}

/**
 * The `uuid` of a dataset file: a v5 UUID of its path. `scope` (e.g. a node or source id) keeps
 * ids apart when two sources use the same paths, such as relative S3 keys on two nodes.
 */
export function fileUuid(path: string, scope?: string): string {
  return uuidV5(scope ? `${scope}\n${path}` : path, FILE_UUID_NAMESPACE);
}
