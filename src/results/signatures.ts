/**
 * Proof that a final result came from the aggregator: when it submits one, the aggregator signs a
 * statement of the result's id, name, size and SHA-256 with its Ed25519 key and stores it beside the
 * result (`…/signatures/<id>.json`). Anyone with the roster checks it: the signature must verify with
 * a key the roster gives the aggregator, and the stored bytes must have the size and digest signed.
 * A node that writes into `final/` with its own storage credentials cannot make that hold.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BadRequestError, NotFoundError } from '../errors.js';
import { signStatement, verifyStatement, type Signed } from '../trust/statements.js';
import type { ObjectStore } from './port.js';

/** What the aggregator signs. */
export interface ResultStatement {
  format: 'flame-result-v1';
  project_id: string;
  analysis_id: string;
  result_id: string;
  result_name: string;
  /** The node that submitted it. */
  node_id: string;
  size: number;
  /** Hex SHA-256 of the stored bytes. */
  sha256: string;
  time: string;
}

/** How a final result fared when checked. */
export interface ResultVerification {
  /** True when signed by the aggregator and (where the bytes were read) matching them. */
  verified: boolean;
  /** The node whose key made the signature, when one of the roster's keys did. */
  signed_by?: string;
  /** Why it is not verified, or what was checked. */
  detail: string;
}

/** Who may sign final results, and with which keys (from the roster). */
export interface ResultTrust {
  /** The aggregator's node id. */
  aggregatorId: string;
  /** Base64 SPKI Ed25519 keys of a node, from the roster; undefined when unknown. */
  signKeysOf(nodeId: string): string[] | undefined;
}

/** Largest signature file read. */
const MAX_SIGNATURE_BYTES = 64 * 1024;

/** Where the signature of final result `id` is kept, given the analysis prefix. */
export function signatureKey(analysisPrefix: string, id: string): string {
  return `${analysisPrefix}/signatures/${id}.json`;
}

/** Signs and stores the statement of a final result. */
export async function storeSignature(hub: ObjectStore, key: string, statement: ResultStatement, signingKey: KeyObject): Promise<void> {
  await hub.put(key, Buffer.from(JSON.stringify(signStatement(statement, signingKey)), 'utf8'), { metadata: { 'signed-by': statement.node_id } });
}

/** Reads a stored signature within bounds; undefined when there is none. */
export async function readSignature(hub: ObjectStore, key: string): Promise<Signed<ResultStatement> | undefined> {
  const info = await hub.head(key);
  if (!info) return undefined;
  if (info.size > MAX_SIGNATURE_BYTES) throw new BadRequestError(`signature ${key}: larger than ${MAX_SIGNATURE_BYTES} bytes`);
  try {
    return JSON.parse(Buffer.from(await hub.getBytes(key)).toString('utf8')) as Signed<ResultStatement>;
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    return { statement: {} as ResultStatement, alg: 'ed25519', key: '', signature: '' };
  }
}

/**
 * Checks a final result's signature against the roster's aggregator keys and the facts known about
 * the stored object (`size`, and `sha256` when its bytes were read).
 */
export function checkSignature(
  signed: Signed<ResultStatement> | undefined,
  trust: ResultTrust | undefined,
  expect: { project_id: string; analysis_id: string; result_id: string; size: number; sha256?: string },
): ResultVerification {
  if (!trust) return { verified: false, detail: 'no roster configured to check signatures (FLAME_ROSTER)' };
  if (!signed) return { verified: false, detail: 'not signed' };
  const keys = trust.signKeysOf(trust.aggregatorId) ?? [];
  if (!keys.some((k) => verifyStatement(signed, k))) {
    return { verified: false, detail: `the signature is not the aggregator "${trust.aggregatorId}"'s` };
  }
  const s = signed.statement;
  if (s.format !== 'flame-result-v1' || s.project_id !== expect.project_id || s.analysis_id !== expect.analysis_id || s.result_id !== expect.result_id) {
    return { verified: false, signed_by: trust.aggregatorId, detail: 'the signature is for another result' };
  }
  if (s.size !== expect.size) return { verified: false, signed_by: trust.aggregatorId, detail: `the stored result is ${expect.size} bytes, ${s.size} were signed (replaced)` };
  if (expect.sha256 !== undefined && s.sha256 !== expect.sha256) return { verified: false, signed_by: trust.aggregatorId, detail: 'the stored bytes differ from the signed ones (replaced)' };
  return { verified: true, signed_by: trust.aggregatorId, detail: expect.sha256 !== undefined ? 'signature and content verified' : 'signature and size verified' };
}

/** Hex SHA-256 of bytes. */
export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A pass-through stream that hashes what flows through it and counts the bytes. */
export class Hashing extends Transform {
  private readonly hash = createHash('sha256');
  /** Bytes seen. */
  bytes = 0;
  /** Hex digest, set once the stream has ended. */
  digest: string | undefined;
  /** Called with the digest and size at the end; an error it throws fails the stream. */
  constructor(private readonly onEnd?: (sha256: string, size: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    try {
      this.onEnd?.(this.digest, this.bytes);
      done();
    } catch (e) {
      done(e as Error);
    }
  }
}
