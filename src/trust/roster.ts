/**
 * The roster: which nodes take part in an analysis, in which role, with which public keys. It is the
 * trust anchor for every key a node uses to check another: signed by the analysis' operator (whose
 * public key each node has in its config), or pinned in a node's config as it is. A node can never
 * overwrite another node's entry, because it cannot sign as the operator.
 */
import { BadRequestError } from '../errors.js';
import { keyId, type PublicKeySet } from './identity.js';
import { signStatement, verifyStatement, type Signed } from './statements.js';
import type { KeyObject } from 'node:crypto';

/** One node of the roster. */
export interface RosterNode {
  /** The node's id. */
  node_id: string;
  /** Its role. */
  role: 'aggregator' | 'analyzer';
  /** Its key sets, newest first (older ones stay valid during a rotation). */
  keys: PublicKeySet[];
}

/** What the operator signs. */
export interface Roster {
  /** Format tag. */
  format: 'flame-roster-v1';
  /** The analysis the roster is for (a roster of another analysis is refused). */
  analysis_id: string;
  /** Increases with each new roster of the analysis (rotation); an older one never replaces a newer. */
  version: number;
  /** ISO-8601 time of issue. */
  issued_at: string;
  /** Every participant. */
  nodes: RosterNode[];
}

/** Largest roster accepted, in bytes of JSON. */
export const MAX_ROSTER_BYTES = 1024 * 1024;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Checks a roster's shape (ids, roles, keys, one aggregator); BadRequestError naming `what` and the field. */
export function checkRoster(raw: unknown, what: string): Roster {
  const bad = (why: string): never => {
    throw new BadRequestError(`${what}: ${why}`);
  };
  const r = raw as Partial<Roster> | null;
  if (!r || typeof r !== 'object') bad('expected a roster object');
  if (r!.format !== 'flame-roster-v1') bad(`format: expected "flame-roster-v1", got ${JSON.stringify(r!.format)}`);
  if (typeof r!.analysis_id !== 'string' || !ID.test(r!.analysis_id)) bad('analysis_id: expected an analysis id');
  if (!Number.isSafeInteger(r!.version) || (r!.version as number) < 1) bad('version: expected a whole number >= 1');
  if (typeof r!.issued_at !== 'string') bad('issued_at: expected an ISO-8601 time');
  if (!Array.isArray(r!.nodes) || r!.nodes.length === 0 || r!.nodes.length > 10_000) bad('nodes: expected 1-10000 nodes');
  const seen = new Set<string>();
  let aggregators = 0;
  r!.nodes!.forEach((n, i) => {
    if (!n || typeof n !== 'object' || typeof n.node_id !== 'string' || !ID.test(n.node_id)) bad(`nodes[${i}].node_id: expected a node id`);
    if (seen.has(n.node_id)) bad(`nodes[${i}]: node "${n.node_id}" is listed twice`);
    seen.add(n.node_id);
    if (n.role !== 'aggregator' && n.role !== 'analyzer') bad(`nodes[${i}].role: expected "aggregator" or "analyzer"`);
    if (n.role === 'aggregator') aggregators++;
    if (!Array.isArray(n.keys) || n.keys.length === 0 || n.keys.length > 64) bad(`nodes[${i}].keys: expected 1-64 key sets`);
    n.keys.forEach((k, j) => {
      if (!k || typeof k.box !== 'string' || typeof k.sign !== 'string') bad(`nodes[${i}].keys[${j}]: expected {box, sign}`);
      if (k.kid !== keyId(k.box, k.sign)) bad(`nodes[${i}].keys[${j}].kid: does not match its keys`);
    });
  });
  if (aggregators !== 1) bad(`expected exactly one aggregator, found ${aggregators}`);
  return r as Roster;
}

/** A roster document as stored: signed by the operator, or pinned (unsigned, trusted as configured). */
export type RosterDocument = Signed<Roster> | Roster;

/** Signs a roster with the operator's Ed25519 key. */
export function signRoster(roster: Roster, operatorKey: KeyObject): Signed<Roster> {
  return signStatement(checkRoster(roster, 'roster'), operatorKey);
}

/**
 * Reads a roster document. With `operatorKey` (base64 SPKI DER) it must be signed by that key; without,
 * an unsigned roster is taken as pinned and a signed one is refused (its signature could not be checked).
 */
export function openRoster(doc: unknown, what: string, operatorKey?: string): Roster {
  const signed = doc !== null && typeof doc === 'object' && 'signature' in (doc as object);
  if (operatorKey !== undefined) {
    if (!signed) throw new BadRequestError(`${what}: not signed, but an operator key is configured (FLAME_OPERATOR_KEY): sign it with flame roster sign`);
    if (!verifyStatement(doc as Signed<unknown>, operatorKey)) throw new BadRequestError(`${what}: the signature does not verify with the configured operator key`);
    return checkRoster((doc as Signed<unknown>).statement, what);
  }
  if (signed) throw new BadRequestError(`${what}: signed, but no operator key is configured to check it (set FLAME_OPERATOR_KEY)`);
  return checkRoster(doc, what);
}

/** Parses roster JSON text within {@link MAX_ROSTER_BYTES}. */
export function parseRosterText(text: string, what: string, operatorKey?: string): Roster {
  if (Buffer.byteLength(text, 'utf8') > MAX_ROSTER_BYTES) throw new BadRequestError(`${what}: larger than ${MAX_ROSTER_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new BadRequestError(`${what}: not JSON`, { cause: e });
  }
  return openRoster(doc, what, operatorKey);
}

/** A roster for `analysisId` from node entries (version 1 unless given). */
export function buildRoster(analysisId: string, nodes: RosterNode[], version = 1): Roster {
  return checkRoster({ format: 'flame-roster-v1', analysis_id: analysisId, version, issued_at: new Date().toISOString(), nodes }, 'roster');
}
