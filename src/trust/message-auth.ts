/**
 * Proof of who sent a message. Every message carries an HMAC-SHA256 tag under a key that only its
 * sender and its recipient can derive: HKDF over the X25519 agreement of the sender's static key with
 * the recipient's static key (the authentication of HPKE's auth mode and Noise's KK pattern), bound to
 * the analysis, the direction and both key ids. The tag covers every field of the message — sender,
 * recipient, analysis, id, time, number, category, reply-to, session — and the body. No third node can
 * produce a tag the recipient accepts, and a tag made for one recipient is worthless for another.
 *
 * A MAC rather than an Ed25519 signature per message: both prove the sender to the recipient, and the
 * MAC costs microseconds where an Ed25519 verification costs a good part of a broker round trip
 * (bench/broker.ts). Statements a third party must check (rosters, final results) are signed with Ed25519.
 */
import { createHmac, createSecretKey, diffieHellman, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { WireMessage } from '../broker/port.js';
import type { NodeIdentity, PublicKeySet } from './identity.js';
import { importPublicKey } from './seal.js';

/** The header value's version tag. */
export const AUTH_VERSION = 'v1';
const INFO = 'flame-sdk message auth v1';

/** Where a node looks up other nodes' public keys (a roster, pinned keys, or first-use records). */
export interface PeerKeys {
  /** The key sets of `nodeId`, newest first; undefined when the node is not known. */
  keysOf(nodeId: string): PublicKeySet[] | undefined;
}

/** Why a message was refused. */
export type AuthFailure = 'no_tag' | 'malformed_tag' | 'unknown_sender' | 'unknown_sender_key' | 'unknown_recipient_key' | 'bad_tag';

/** The result of {@link MessageAuthenticator.verify}. */
export type AuthCheck = { ok: true; senderKeys: PublicKeySet; recipientKeys: NodeIdentity['keys'][number] } | { ok: false; reason: AuthFailure; detail: string };

function input(analysisId: string, m: WireMessage, senderKid: string, recipientKid: string): string {
  return `flame-msg-auth-v1\n${analysisId}\n${m.sender}\n${m.recipient}\n${m.id}\n${m.time}\n${m.message_number}\n${m.category}\n${m.reply_to ?? ''}\n${m.session ?? ''}\n${senderKid}\n${recipientKid}\n${m.body.byteLength}\n`;
}

/** Makes and checks the tags of one node's messages. */
export class MessageAuthenticator {
  private readonly keyCache = new Map<string, KeyObject>();
  private readonly peerKeyObjects = new Map<string, KeyObject>();

  /**
   * @param analysisId the analysis every tag is bound to
   * @param identity this node's key sets (the newest sends; all receive)
   * @param peers the other nodes' public keys
   */
  constructor(
    private readonly analysisId: string,
    private readonly identity: NodeIdentity,
    private readonly peers: PeerKeys,
  ) {}

  private peerKey(box: string): KeyObject {
    let k = this.peerKeyObjects.get(box);
    if (!k) {
      k = importPublicKey(box);
      this.peerKeyObjects.set(box, k);
    }
    return k;
  }

  /** The key for messages `from` → `to` under the given key sets (cached). */
  private pairKey(from: string, to: string, fromKid: string, toKid: string, own: KeyObject, peerBox: string): KeyObject {
    const id = `${from}\u0000${to}\u0000${fromKid}\u0000${toKid}`;
    let key = this.keyCache.get(id);
    if (!key) {
      const shared = diffieHellman({ privateKey: own, publicKey: this.peerKey(peerBox) });
      key = createSecretKey(Buffer.from(hkdfSync('sha256', shared, Buffer.from(this.analysisId, 'utf8'), Buffer.from(`${INFO}\u0000${id}`, 'utf8'), 32)));
      this.keyCache.set(id, key);
    }
    return key;
  }

  private mac(key: KeyObject, m: WireMessage, senderKid: string, recipientKid: string): Buffer {
    return createHmac('sha256', key).update(input(this.analysisId, m, senderKid, recipientKid), 'utf8').update(m.body).digest();
  }

  /**
   * The `auth` value for an outgoing message: `v1 <sender kid> <recipient kid> <tag>`. Throws when the
   * recipient's keys are unknown (the caller names the node).
   */
  tag(m: WireMessage): string {
    const own = this.identity.keys[0];
    const peer = this.peers.keysOf(m.recipient)?.[0];
    if (!peer) throw new Error(`no public key known for node "${m.recipient}"`);
    const key = this.pairKey(m.sender, m.recipient, own.kid, peer.kid, own.boxPrivate, peer.box);
    return `${AUTH_VERSION} ${own.kid} ${peer.kid} ${this.mac(key, m, own.kid, peer.kid).toString('base64url')}`;
  }

  /** Checks an incoming message's tag against its sender's known keys and this node's keys. */
  verify(m: WireMessage): AuthCheck {
    if (typeof m.auth !== 'string' || m.auth === '') return { ok: false, reason: 'no_tag', detail: 'the message carries no authentication tag' };
    const parts = m.auth.split(' ');
    if (parts.length !== 4 || parts[0] !== AUTH_VERSION || parts[3].length !== 43) {
      return { ok: false, reason: 'malformed_tag', detail: 'the authentication tag is malformed' };
    }
    const [, senderKid, recipientKid, tag] = parts;
    const senderKeys = this.peers.keysOf(m.sender);
    if (!senderKeys) return { ok: false, reason: 'unknown_sender', detail: `node "${m.sender}" is not in this node's roster` };
    const peer = senderKeys.find((k) => k.kid === senderKid);
    if (!peer) return { ok: false, reason: 'unknown_sender_key', detail: `key ${senderKid} is not a key of "${m.sender}" in the roster` };
    const own = this.identity.keys.find((k) => k.kid === recipientKid);
    if (!own) return { ok: false, reason: 'unknown_recipient_key', detail: `key ${recipientKid} is not one of this node's keys` };
    const expected = this.mac(this.pairKey(m.sender, m.recipient, senderKid, recipientKid, own.boxPrivate, peer.box), m, senderKid, recipientKid);
    const given = Buffer.from(tag, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, reason: 'bad_tag', detail: 'the authentication tag does not match (forged or altered message)' };
    }
    return { ok: true, senderKeys: peer, recipientKeys: own };
  }

  /** Forgets derived keys (after a roster change). */
  clearCache(): void {
    this.keyCache.clear();
  }
}
