/**
 * Signed statements: a JSON object and an Ed25519 signature over its canonical form (keys sorted, no
 * whitespace), so that anyone holding the signer's public key can check it, e.g. a roster signed by the
 * analysis' operator or a final result signed by the aggregator.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { BadRequestError } from '../errors.js';

/** JSON with keys sorted at every level and no whitespace; numbers must be finite. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new BadRequestError(`canonical JSON: ${value} is not a finite number`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new BadRequestError(`canonical JSON: a ${typeof value} cannot be signed`);
}

/** A statement and its signature. */
export interface Signed<T> {
  /** What is signed. */
  statement: T;
  /** Signature algorithm: always `ed25519`. */
  alg: 'ed25519';
  /** Base64 SPKI DER of the signing key (informative: verifiers use the key they trust, not this one). */
  key: string;
  /** Base64 signature over `canonicalJson(statement)`. */
  signature: string;
}

/** Base64 SPKI DER of an Ed25519 public or private key's public half. */
export function ed25519Public(key: KeyObject): string {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' }).toString('base64');
}

/** Signs `statement` with an Ed25519 private key. */
export function signStatement<T>(statement: T, privateKey: KeyObject): Signed<T> {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new BadRequestError('sign: expected an ed25519 private key');
  const signature = edSign(null, Buffer.from(canonicalJson(statement), 'utf8'), privateKey).toString('base64');
  return { statement, alg: 'ed25519', key: ed25519Public(privateKey), signature };
}

/** An Ed25519 public key from base64 SPKI DER; BadRequestError naming `what` otherwise. */
export function importEd25519Public(b64: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
  } catch (e) {
    throw new BadRequestError(`${what}: not a base64 SPKI DER key`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new BadRequestError(`${what}: expected an ed25519 key, got ${key.asymmetricKeyType}`);
  return key;
}

/** True when `signed` carries a valid signature of `publicKey` (base64 SPKI DER) over its statement. */
export function verifyStatement(signed: Signed<unknown>, publicKey: string): boolean {
  if (!signed || typeof signed !== 'object' || signed.alg !== 'ed25519' || typeof signed.signature !== 'string') return false;
  let text: string;
  try {
    text = canonicalJson(signed.statement);
  } catch {
    return false;
  }
  try {
    return edVerify(null, Buffer.from(text, 'utf8'), importEd25519Public(publicKey, 'signing key'), Buffer.from(signed.signature, 'base64'));
  } catch {
    return false;
  }
}

/** An Ed25519 key pair as text. */
export interface SigningKeyPair {
  /** Base64 PKCS#8 DER of the private key. */
  privateKey: string;
  /** Base64 SPKI DER of the public key. */
  publicKey: string;
}

/** A new Ed25519 key pair for an operator. */
export function generateSigningKey(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'), publicKey: ed25519Public(publicKey) };
}

/** An Ed25519 private key from base64 PKCS#8 DER (an operator key file's text). */
export function importSigningKey(b64: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(b64.trim(), 'base64'), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new BadRequestError(`${what}: not a base64 PKCS#8 DER key`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new BadRequestError(`${what}: expected an ed25519 key, got ${key.asymmetricKeyType}`);
  return key;
}
