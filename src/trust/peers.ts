/**
 * Which public keys a node trusts for the other nodes of an analysis, and where they come from:
 *
 * - a **roster** signed by the analysis' operator (checked with the operator's public key from the
 *   config), read from a file, from the config, or from the broker where the operator published it;
 * - a roster **pinned** in the config as it is (no operator key: the config itself is trusted);
 * - **trust on first use** (explicit, warned): the first key each node announces is pinned in this
 *   node's state folder, and a later different key is refused.
 *
 * A node checks that the roster names every participant, the configured aggregator, and one of its own keys.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BadRequestError } from '../errors.js';
import type { Logger } from '../logger.js';
import { keyId, publicKeySet, type NodeIdentity, type PublicKeySet } from './identity.js';
import type { PeerKeys } from './message-auth.js';
import { buildRoster, openRoster, type Roster, type RosterDocument } from './roster.js';

/** How a node decides whose keys to trust (the config's `trust`). */
export interface TrustConfig {
  /** `roster` (default): keys from a roster; `tofu`: trust on first use (warned; for trials only). */
  mode: 'roster' | 'tofu';
  /** The roster document, or the path of a file holding it (`FLAME_ROSTER`). */
  roster?: RosterDocument | string;
  /** The operator's Ed25519 public key, base64 SPKI DER, or the path of a file holding it (`FLAME_OPERATOR_KEY`). */
  operatorKey?: string;
}

/** A participant's announced keys, as first-use trust sees them. */
export interface AnnouncedKeys {
  /** The node. */
  nodeId: string;
  /** Its announced key set, if any. */
  keys?: PublicKeySet;
}

/** What {@link PeerTrust.create} needs. */
export interface PeerTrustOptions {
  analysisId: string;
  nodeId: string;
  participants: string[];
  aggregatorId: string;
  identity: NodeIdentity;
  config: TrustConfig;
  /** Reads the roster the operator published on the broker (undefined when none). */
  brokerRoster?: () => Promise<string | undefined>;
  /** Reads the participants' announced keys (first-use trust). */
  announced?: () => Promise<AnnouncedKeys[]>;
  /** Folder for first-use pins. */
  stateDir: string;
  log: Logger;
  /** True for read-only observers: their own key need not be in the roster. */
  observer?: boolean;
}

/** Reads a value that may be given inline or as a file path. */
function inlineOrFile(value: string, what: string, inline: (v: string) => boolean): string {
  if (inline(value)) return value;
  try {
    return fs.readFileSync(value, 'utf8');
  } catch (e) {
    throw new BadRequestError(`config ${what}: cannot read ${value} (${(e as Error).message})`, { cause: e });
  }
}

/** The operator key from config: base64 SPKI DER inline, or a file holding it. */
export function resolveOperatorKey(value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const text = inlineOrFile(value.trim(), 'trust.operatorKey (FLAME_OPERATOR_KEY)', (v) => /^[A-Za-z0-9+/=]{40,}$/.test(v)).trim();
  if (!/^[A-Za-z0-9+/=]{40,}$/.test(text)) throw new BadRequestError('config trust.operatorKey (FLAME_OPERATOR_KEY): expected a base64 Ed25519 public key (flame keys operator prints one)');
  return text;
}

/** The trusted keys of the other nodes; see the module comment. */
export class PeerTrust implements PeerKeys {
  private roster: Roster | undefined;
  private pinned = new Map<string, PublicKeySet>();
  private lastRefresh = 0;

  private constructor(private readonly o: PeerTrustOptions, private readonly operatorKey: string | undefined) {}

  /** Resolves the trust anchor and checks it against the config; BadRequestError names what is wrong. */
  static async create(o: PeerTrustOptions): Promise<PeerTrust> {
    const operatorKey = resolveOperatorKey(o.config.operatorKey);
    const t = new PeerTrust(o, operatorKey);
    if (o.config.mode === 'tofu') {
      o.log.warn('trust on first use: the first key each node announces is pinned; any node could announce first. Use a signed roster (FLAME_ROSTER) in production.', {});
      t.loadPins();
      await t.refreshAnnounced(true);
      return t;
    }
    const roster = await t.loadRoster();
    t.setRoster(roster);
    return t;
  }

  /** The mode in force. */
  get mode(): 'roster' | 'tofu' {
    return this.o.config.mode;
  }

  /** The roster in force (roster mode). */
  get currentRoster(): Roster | undefined {
    return this.roster;
  }

  private async loadRoster(): Promise<Roster> {
    const { roster } = this.o.config;
    if (roster !== undefined) {
      const doc = typeof roster === 'string' ? JSON.parse(inlineOrFile(roster, 'trust.roster (FLAME_ROSTER)', (v) => v.trimStart().startsWith('{'))) as unknown : roster;
      return openRoster(doc, `roster ${typeof roster === 'string' && !roster.trimStart().startsWith('{') ? roster : '(config)'}`, this.operatorKey);
    }
    if (this.operatorKey !== undefined && this.o.brokerRoster) {
      const text = await this.o.brokerRoster();
      if (text === undefined) throw new BadRequestError('trust: no roster on the broker yet (the operator publishes one with flame roster publish), and none configured (FLAME_ROSTER)');
      return openRoster(JSON.parse(text), 'roster on the broker', this.operatorKey);
    }
    const others = this.o.participants.filter((p) => p !== this.o.nodeId);
    if (others.length === 0) {
      // Alone in the analysis: the only keys to trust are this node's own.
      return buildRoster(this.o.analysisId, [{ node_id: this.o.nodeId, role: 'aggregator', keys: this.o.identity.keys.map(publicKeySet) }]);
    }
    throw new BadRequestError(
      `config trust: the analysis has ${this.o.participants.length} participants but no roster: set FLAME_ROSTER to a roster signed by the operator (flame roster sign) with FLAME_OPERATOR_KEY, or FLAME_TRUST=tofu for a trial`,
    );
  }

  private setRoster(roster: Roster): void {
    const { analysisId, participants, aggregatorId, nodeId, identity } = this.o;
    if (roster.analysis_id !== analysisId) throw new BadRequestError(`roster: it is for analysis "${roster.analysis_id}", not "${analysisId}"`);
    const byId = new Map(roster.nodes.map((n) => [n.node_id, n]));
    const missing = participants.filter((p) => !byId.has(p));
    if (missing.length) throw new BadRequestError(`roster: participant(s) ${missing.map((m) => `"${m}"`).join(', ')} are not in the roster (version ${roster.version})`);
    const agg = roster.nodes.find((n) => n.role === 'aggregator')!;
    if (agg.node_id !== aggregatorId) throw new BadRequestError(`roster: the aggregator is "${agg.node_id}", but this node is configured with aggregator "${aggregatorId}"`);
    if (!this.o.observer) {
      const own = new Set(byId.get(nodeId)!.keys.map((k) => k.kid));
      if (!identity.keys.some((k) => own.has(k.kid))) {
        throw new BadRequestError(
          `roster: none of this node's keys (${identity.keys.map((k) => k.kid).join(', ')}) is listed for "${nodeId}"; give the operator the output of flame keys show and use the roster they sign`,
        );
      }
      // Send with the newest key the roster knows (a rotated key the operator has not signed yet waits).
      identity.keys.sort((a, b) => Number(own.has(b.kid)) - Number(own.has(a.kid)));
    }
    this.roster = roster;
  }

  keysOf(nodeId: string): PublicKeySet[] | undefined {
    if (this.o.config.mode === 'tofu') {
      if (nodeId === this.o.nodeId) return this.o.identity.keys.map(publicKeySet);
      const k = this.pinned.get(nodeId);
      return k ? [k] : undefined;
    }
    return this.roster?.nodes.find((n) => n.node_id === nodeId)?.keys;
  }

  /** The role the trust anchor gives `nodeId` (tofu: from the config). */
  roleOf(nodeId: string): 'aggregator' | 'analyzer' | undefined {
    if (this.o.config.mode === 'tofu') return this.o.participants.includes(nodeId) ? (nodeId === this.o.aggregatorId ? 'aggregator' : 'analyzer') : undefined;
    return this.roster?.nodes.find((n) => n.node_id === nodeId)?.role;
  }

  /**
   * Looks for newer keys: a newer roster on the broker, or first announcements (tofu). At most once per
   * `minIntervalMs`; true when something changed.
   */
  async refresh(minIntervalMs = 1000): Promise<boolean> {
    const now = Date.now();
    if (now - this.lastRefresh < minIntervalMs) return false;
    this.lastRefresh = now;
    if (this.o.config.mode === 'tofu') return this.refreshAnnounced(false);
    if (this.o.config.roster !== undefined || this.operatorKey === undefined || !this.o.brokerRoster) return false;
    const text = await this.o.brokerRoster().catch(() => undefined);
    if (text === undefined) return false;
    let next: Roster;
    try {
      next = openRoster(JSON.parse(text), 'roster on the broker', this.operatorKey);
    } catch (e) {
      this.o.log.error('refused a roster published on the broker', { error: e });
      return false;
    }
    if (!this.roster || next.version <= this.roster.version) return false;
    this.setRoster(next);
    this.o.log.info('roster updated', { version: next.version });
    return true;
  }

  private pinFile(): string {
    return path.join(this.o.stateDir, 'tofu-keys.json');
  }

  private loadPins(): void {
    try {
      const raw = JSON.parse(fs.readFileSync(this.pinFile(), 'utf8')) as Record<string, PublicKeySet>;
      for (const [node, k] of Object.entries(raw)) if (k && k.kid === keyId(k.box, k.sign)) this.pinned.set(node, k);
    } catch {
      // no pins yet
    }
  }

  private async refreshAnnounced(initial: boolean): Promise<boolean> {
    if (!this.o.announced) return false;
    let changed = false;
    for (const a of await this.o.announced().catch(() => [] as AnnouncedKeys[])) {
      if (a.nodeId === this.o.nodeId || !this.o.participants.includes(a.nodeId) || !a.keys) continue;
      if (a.keys.kid !== keyId(a.keys.box, a.keys.sign)) continue;
      const pinned = this.pinned.get(a.nodeId);
      if (!pinned) {
        this.pinned.set(a.nodeId, publicKeySet(a.keys));
        changed = true;
        this.o.log.warn('trust on first use: pinned a node key', { peer: a.nodeId, kid: a.keys.kid });
      } else if (pinned.kid !== a.keys.kid && !initial) {
        this.o.log.error('a node announced a key other than the one pinned at first use; keeping the pinned key', { peer: a.nodeId, pinned: pinned.kid, announced: a.keys.kid });
      }
    }
    if (changed) {
      fs.mkdirSync(this.o.stateDir, { recursive: true });
      fs.writeFileSync(this.pinFile(), JSON.stringify(Object.fromEntries(this.pinned)));
    }
    return changed;
  }
}
