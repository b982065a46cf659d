/**
 * A node's identity for one analysis: one or more key sets, newest first, each with an X25519 key
 * (sealing and message authentication) and an Ed25519 key (signatures others can check, e.g. on final
 * results). The identity lives in the node's local storage, so a node that restarts keeps it; rotating
 * adds a key set in front and keeps the older ones, so what was sealed for them still opens.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { BadRequestError, NotFoundError } from '../errors.js';
import type { ObjectStore } from '../results/port.js';

/** The public half of a key set, as it appears in rosters and participant records. */
export interface PublicKeySet {
  /** Key id: 16 base64url characters of SHA-256 over both public keys. */
  kid: string;
  /** X25519 public key, base64 SPKI DER. */
  box: string;
  /** Ed25519 public key, base64 SPKI DER. */
  sign: string;
}

/** A key set with its private halves. */
export interface KeySet extends PublicKeySet {
  /** X25519 private key. */
  boxPrivate: KeyObject;
  /** Ed25519 private key. */
  signPrivate: KeyObject;
  /** ISO-8601 time the set was made. */
  created: string;
}

/** A node's key sets, newest (the one it sends with) first. */
export interface NodeIdentity {
  /** The node. */
  nodeId: string;
  /** Newest first; never empty. */
  keys: KeySet[];
}

const FORMAT = 'flame-node-identity-v1';
/** Largest identity file accepted (a few hundred key sets). */
const MAX_IDENTITY_BYTES = 256 * 1024;

function spki(key: KeyObject): string {
  return key.export({ format: 'der', type: 'spki' }).toString('base64');
}

/** The key id of a pair of public keys (base64 SPKI DER). */
export function keyId(box: string, sign: string): string {
  return createHash('sha256').update(`${box}\n${sign}`).digest('base64url').slice(0, 16);
}

/** A fresh key set. */
export function generateKeySet(): KeySet {
  const x = generateKeyPairSync('x25519');
  const e = generateKeyPairSync('ed25519');
  const box = spki(x.publicKey);
  const sign = spki(e.publicKey);
  return { kid: keyId(box, sign), box, sign, boxPrivate: x.privateKey, signPrivate: e.privateKey, created: new Date().toISOString() };
}

/** The public half of a key set. */
export function publicKeySet(k: PublicKeySet): PublicKeySet {
  return { kid: k.kid, box: k.box, sign: k.sign };
}

function importPrivate(b64: unknown, type: 'x25519' | 'ed25519', what: string): KeyObject {
  if (typeof b64 !== 'string') throw new BadRequestError(`${what}: expected a base64 PKCS#8 key`);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new BadRequestError(`${what}: not a base64 PKCS#8 DER key`, { cause: e });
  }
  if (key.asymmetricKeyType !== type) throw new BadRequestError(`${what}: expected an ${type} key, got ${key.asymmetricKeyType}`);
  return key;
}

function keySetFrom(box: KeyObject, signKey: KeyObject, created: string): KeySet {
  const boxPub = spki(createPublicKey(box));
  const signPub = spki(createPublicKey(signKey));
  return { kid: keyId(boxPub, signPub), box: boxPub, sign: signPub, boxPrivate: box, signPrivate: signKey, created };
}

/** Serialises an identity (private keys included: keep the file private to the node). */
export function serializeIdentity(id: NodeIdentity): string {
  return JSON.stringify({
    format: FORMAT,
    node_id: id.nodeId,
    keys: id.keys.map((k) => ({
      created: k.created,
      box: k.boxPrivate.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      sign: k.signPrivate.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    })),
  });
}

/** Reads what {@link serializeIdentity} wrote; BadRequestError naming `what` when it is malformed. */
export function parseIdentity(text: string, what: string): NodeIdentity {
  if (text.length > MAX_IDENTITY_BYTES) throw new BadRequestError(`${what}: larger than ${MAX_IDENTITY_BYTES} bytes`);
  let raw: { format?: unknown; node_id?: unknown; keys?: unknown };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch (e) {
    throw new BadRequestError(`${what}: not JSON`, { cause: e });
  }
  if (raw?.format !== FORMAT || typeof raw.node_id !== 'string' || !Array.isArray(raw.keys) || raw.keys.length === 0) {
    throw new BadRequestError(`${what}: not a node identity (expected format ${FORMAT} with at least one key set)`);
  }
  const keys = raw.keys.map((k: { box?: unknown; sign?: unknown; created?: unknown }, i: number) =>
    keySetFrom(importPrivate(k?.box, 'x25519', `${what} keys[${i}].box`), importPrivate(k?.sign, 'ed25519', `${what} keys[${i}].sign`), typeof k?.created === 'string' ? k.created : ''),
  );
  return { nodeId: raw.node_id, keys };
}

/** Where a node's identity for an analysis is kept in its local storage. */
export function identityKey(projectId: string, analysisId: string, nodeId: string): string {
  return `keys/${projectId}/${analysisId}/${nodeId}.identity.json`;
}

/** The key of the X25519-only key file written by earlier versions (read once, then upgraded). */
function legacyKey(projectId: string, analysisId: string, nodeId: string): string {
  return `keys/${projectId}/${analysisId}/${nodeId}.key`;
}

async function readText(store: ObjectStore, key: string): Promise<string | undefined> {
  try {
    return Buffer.from(await store.getBytes(key)).toString('utf8');
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

/** Where an identity is, and whose. */
export interface IdentityLocation {
  /** The node's local storage. */
  local: ObjectStore;
  /** The project. */
  projectId: string;
  /** The analysis (an identity is per analysis). */
  analysisId: string;
  /** The node. */
  nodeId: string;
}

/**
 * The node's identity from its local storage, created (and stored) on first use. An X25519 key kept by
 * an earlier version becomes the box key of the first key set, with a new signing key beside it.
 */
export async function loadOrCreateIdentity(at: IdentityLocation): Promise<NodeIdentity> {
  const key = identityKey(at.projectId, at.analysisId, at.nodeId);
  const text = await readText(at.local, key);
  if (text !== undefined) {
    const id = parseIdentity(text, `identity of node "${at.nodeId}" (${key})`);
    if (id.nodeId !== at.nodeId) throw new BadRequestError(`identity ${key} belongs to node "${id.nodeId}", not "${at.nodeId}"`);
    return id;
  }
  const legacy = await readText(at.local, legacyKey(at.projectId, at.analysisId, at.nodeId));
  const first = legacy !== undefined
    ? keySetFrom(importPrivate(legacy.trim(), 'x25519', `key of node "${at.nodeId}"`), generateKeyPairSync('ed25519').privateKey, new Date().toISOString())
    : generateKeySet();
  const id: NodeIdentity = { nodeId: at.nodeId, keys: [first] };
  await at.local.put(key, Buffer.from(serializeIdentity(id), 'utf8'));
  return id;
}

/** Adds a new key set in front of the node's identity (kept keys still open old boxes) and stores it. */
export async function rotateIdentity(at: IdentityLocation): Promise<NodeIdentity> {
  const current = await loadOrCreateIdentity(at);
  const id: NodeIdentity = { nodeId: at.nodeId, keys: [generateKeySet(), ...current.keys] };
  await at.local.put(identityKey(at.projectId, at.analysisId, at.nodeId), Buffer.from(serializeIdentity(id), 'utf8'));
  return id;
}

/** A throwaway identity kept in memory only (observers, which never receive sealed data). */
export function ephemeralIdentity(nodeId: string): NodeIdentity {
  return { nodeId, keys: [generateKeySet()] };
}

/**
 * One line that carries a node's public keys to the operator who signs the roster:
 * `flame-node-key:v1:<node>:<box>:<sign>`.
 */
export function nodeKeyToken(nodeId: string, k: PublicKeySet): string {
  return `flame-node-key:v1:${nodeId}:${k.box}:${k.sign}`;
}

/** What a {@link nodeKeyToken} says. */
export interface NodeKeyToken {
  /** The node. */
  nodeId: string;
  /** Its public keys. */
  keys: PublicKeySet;
}

/** Reads a {@link nodeKeyToken}; BadRequestError naming it when malformed. */
export function parseNodeKeyToken(token: string): NodeKeyToken {
  const parts = typeof token === 'string' ? token.trim().split(':') : [];
  if (parts.length !== 5 || parts[0] !== 'flame-node-key' || parts[1] !== 'v1') {
    throw new BadRequestError(`node key ${JSON.stringify(String(token).slice(0, 40))}: expected flame-node-key:v1:<node>:<box>:<sign> (see flame keys show)`);
  }
  const [, , nodeId, box, sign] = parts;
  for (const [name, b64, type] of [['box', box, 'x25519'], ['sign', sign, 'ed25519']] as const) {
    try {
      const k = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
      if (k.asymmetricKeyType !== type) throw new Error(`not ${type}`);
    } catch (e) {
      throw new BadRequestError(`node key of "${nodeId}": the ${name} key is not a base64 ${type} SPKI key`, { cause: e });
    }
  }
  return { nodeId, keys: { kid: keyId(box, sign), box, sign } };
}
