/**
 * Sealing a payload for one node (an "ECIES"-style box): each node has an X25519 key pair; a sender
 * makes a fresh ephemeral key pair per message, derives an AES-256-GCM key from the X25519 shared
 * secret with HKDF-SHA256, and ships the ephemeral public key with the ciphertext. Only the holder of
 * the recipient's private key can open it, and any change to the ciphertext, the header or the
 * associated data makes opening fail.
 *
 * Version 2 also authenticates the sender, as HPKE's auth mode does: the key is derived from both
 * DH(ephemeral, recipient) and DH(sender's static key, recipient), so only the holder of the sender's
 * private key can produce a box that opens with the sender's public key. Version 1 (anonymous) is
 * written only when no sender key is given.
 *
 * Sealed layout: version (1) | ephemeral public key (32) | IV (12) | GCM tag (16) | ciphertext.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  KeyObject,
  randomBytes,
} from 'node:crypto';
import { BadRequestError, UnauthorizedError } from '../errors.js';

/** Format version of anonymous boxes (no sender key). */
export const SEAL_VERSION = 1;
/** Format version of sender-authenticated boxes. */
export const SEAL_AUTH_VERSION = 2;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes a sealed message has on top of its plaintext. */
export const SEAL_OVERHEAD = 1 + KEY_BYTES + IV_BYTES + TAG_BYTES;
const HKDF_INFO = Buffer.from('flame-sdk seal v1 x25519-hkdf-sha256-aes256gcm');
const HKDF_INFO_AUTH = Buffer.from('flame-sdk seal v2 auth x25519-hkdf-sha256-aes256gcm');

/** A node's key pair: the public half travels (base64 SPKI DER), the private half stays in memory. */
export interface NodeKeys {
  publicKey: string;
  privateKey: KeyObject;
}

/** Makes a fresh X25519 key pair for this node. */
export function generateNodeKeys(): NodeKeys {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), privateKey };
}

/** Serialises a private key (base64 PKCS#8 DER), e.g. to keep a node's identity across restarts. */
export function exportPrivateKey(privateKey: KeyObject): string {
  return privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
}

/** Reads a private key written by {@link exportPrivateKey}; BadRequestError if it is not an X25519 key. */
export function importPrivateKey(base64Pkcs8: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(base64Pkcs8, 'base64'), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new BadRequestError('private key: not a base64 PKCS#8 DER key', { cause: err });
  }
  if (key.asymmetricKeyType !== 'x25519') throw new BadRequestError(`private key: expected an x25519 key, got ${key.asymmetricKeyType}`);
  return key;
}

/** The public key (base64 SPKI DER) belonging to a private key. */
export function publicKeyOf(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64');
}

/** An X25519 public key from base64 SPKI DER; BadRequestError naming it when it is not one. */
export function importPublicKey(base64Spki: string): KeyObject {
  const shown = typeof base64Spki === 'string' && base64Spki.length > 24 ? `${base64Spki.slice(0, 24)}…` : base64Spki;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(base64Spki, 'base64'), format: 'der', type: 'spki' });
  } catch (err) {
    throw new BadRequestError(`recipient public key ${JSON.stringify(shown)}: not a base64 SPKI DER key`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'x25519') {
    throw new BadRequestError(`recipient public key ${JSON.stringify(shown)}: expected an x25519 key, got ${key.asymmetricKeyType}`);
  }
  return key;
}

/** The 32 raw bytes of an X25519 public key. */
function rawPublic(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

function keyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** HKDF over the shared secret, salted with both public keys so the key is bound to this pair. */
function deriveKey(shared: Buffer, ephemeralPublic: Buffer, recipientPublic: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeralPublic, recipientPublic]), HKDF_INFO, KEY_BYTES));
}

/** Auth mode: both shared secrets, salted with all three public keys. */
function deriveAuthKey(sharedEphemeral: Buffer, sharedStatic: Buffer, ephemeralPublic: Buffer, recipientPublic: Buffer, senderPublic: Buffer): Buffer {
  return Buffer.from(
    hkdfSync('sha256', Buffer.concat([sharedEphemeral, sharedStatic]), Buffer.concat([ephemeralPublic, recipientPublic, senderPublic]), HKDF_INFO_AUTH, KEY_BYTES),
  );
}

/** Associated data: the version byte and the caller's context, so neither can be swapped unnoticed. */
function associatedData(version: number, aad: string | undefined): Buffer {
  return Buffer.concat([Buffer.from([version]), Buffer.from(aad ?? '', 'utf8')]);
}

/** Options of {@link sealFor}. */
export interface SealOptions {
  /** The sender's X25519 private key: the box then proves who sealed it (version 2). */
  senderPrivateKey?: KeyObject;
}

/**
 * Encrypts `plaintext` so that only the owner of `recipientPublicKey` (base64 SPKI DER) can read it.
 * `aad` is authenticated but not encrypted (e.g. "analysis/recipient/result-id"): opening needs the same.
 * With `senderPrivateKey`, opening also needs the sender's public key, and only that sender could have sealed it.
 */
export function sealFor(recipientPublicKey: string, plaintext: Uint8Array, aad?: string, opts: SealOptions = {}): Uint8Array {
  const recipient = importPublicKey(recipientPublicKey);
  const ephemeral = generateKeyPairSync('x25519');
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  const ephemeralRaw = rawPublic(ephemeral.publicKey);
  const sender = opts.senderPrivateKey;
  if (sender !== undefined && !(sender instanceof KeyObject && sender.type === 'private' && sender.asymmetricKeyType === 'x25519')) {
    throw new BadRequestError('seal: the sender key must be an x25519 private KeyObject');
  }
  const version = sender ? SEAL_AUTH_VERSION : SEAL_VERSION;
  const key = sender
    ? deriveAuthKey(shared, diffieHellman({ privateKey: sender, publicKey: recipient }), ephemeralRaw, rawPublic(recipient), rawPublic(createPublicKey(sender)))
    : deriveKey(shared, ephemeralRaw, rawPublic(recipient));
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(associatedData(version, aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([version]), ephemeralRaw, iv, cipher.getAuthTag(), ciphertext]);
}

/** Options of {@link openSealed}. */
export interface OpenOptions {
  /**
   * The expected sender's X25519 public key (base64 SPKI DER): only a version-2 box sealed by that
   * sender opens. Without it only anonymous (version 1) boxes open.
   */
  senderPublicKey?: string;
}

/**
 * Decrypts what {@link sealFor} produced for this node. Throws UnauthorizedError naming `what` when
 * the message was sealed for another node or by another sender, was changed, is truncated, or `aad` differs.
 */
export function openSealed(privateKey: KeyObject, sealed: Uint8Array, aad?: string, what = 'sealed data', opts: OpenOptions = {}): Uint8Array {
  const refuse = (cause?: unknown): never => {
    throw new UnauthorizedError(
      `cannot decrypt ${what}: not sealed for this node${opts.senderPublicKey ? ' by its sender' : ''} or tampered`,
      cause === undefined ? undefined : { cause },
    );
  };
  if (!(privateKey instanceof KeyObject) || privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'x25519') {
    throw new BadRequestError(`cannot decrypt ${what}: the private key must be an x25519 private KeyObject`);
  }
  const senderKey = opts.senderPublicKey === undefined ? undefined : importPublicKey(opts.senderPublicKey);
  const version = senderKey ? SEAL_AUTH_VERSION : SEAL_VERSION;
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (buf.length < SEAL_OVERHEAD || buf[0] !== version) return refuse();
  let offset = 1;
  const ephemeralRaw = buf.subarray(offset, (offset += KEY_BYTES));
  const iv = buf.subarray(offset, (offset += IV_BYTES));
  const tag = buf.subarray(offset, (offset += TAG_BYTES));
  const ciphertext = buf.subarray(offset);
  try {
    const shared = diffieHellman({ privateKey, publicKey: keyFromRaw(ephemeralRaw) });
    const ownPublic = rawPublic(createPublicKey(privateKey));
    const key = senderKey
      ? deriveAuthKey(shared, diffieHellman({ privateKey, publicKey: senderKey }), Buffer.from(ephemeralRaw), ownPublic, rawPublic(senderKey))
      : deriveKey(shared, Buffer.from(ephemeralRaw), ownPublic);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(associatedData(version, aad));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (err) {
    return refuse(err);
  }
}
