/**
 * Final-result signatures for one analysis (the proof itself is `signatures.ts`): the aggregator signs
 * each final result it submits; readers check a stored one against the roster, by size from a
 * listing or by size and digest once its bytes are read.
 */
import type { KeyObject } from 'node:crypto';
import { BadRequestError, NotFoundError } from '../errors.js';
import type { Signed } from '../trust/statements.js';
import type { ResultKeys } from './layout.js';
import type { ObjectStore } from './port.js';
import { checkSignature, Hashing, readSignature, storeSignature, type ResultStatement, type ResultTrust, type ResultVerification } from './signatures.js';

/** What a FinalResultProof signs and checks with. */
export interface FinalResultProofOptions {
  hub: ObjectStore;
  keys: ResultKeys;
  nodeId: string;
  projectId: string;
  analysisId: string;
  /** The aggregator's Ed25519 private key; without it nothing can be signed. */
  signingKey?: KeyObject;
  /** The roster's view of who signs final results; without it nothing verifies. */
  trust?: ResultTrust;
}

/** Signs final results and checks their signatures. */
export class FinalResultProof {
  constructor(private readonly o: FinalResultProofOptions) {}

  /** The signing key; BadRequestError when this node has none. */
  signer(): KeyObject {
    if (!this.o.signingKey) throw new BadRequestError(`node "${this.o.nodeId}" has no signing key: final results must be signed (FlameSDK gives the aggregator its key)`);
    return this.o.signingKey;
  }

  /** Signs the statement of final result `id` and stores it beside the result. */
  async sign(id: string, name: string, size: number, sha256: string): Promise<void> {
    const statement: ResultStatement = {
      format: 'flame-result-v1',
      project_id: this.o.projectId,
      analysis_id: this.o.analysisId,
      result_id: id,
      result_name: name,
      node_id: this.o.nodeId,
      size,
      sha256,
      time: new Date().toISOString(),
    };
    await storeSignature(this.o.hub, this.o.keys.signature(id), statement, this.signer());
  }

  /** The stored signature of final result `id`, if any. */
  signed(id: string): Promise<Signed<ResultStatement> | undefined> {
    return readSignature(this.o.hub, this.o.keys.signature(id));
  }

  /** Checks `signed` for final result `id` stored with `size` bytes (and digest `sha256`, when read). */
  check(signed: Signed<ResultStatement> | undefined, id: string, size: number, sha256?: string): ResultVerification {
    return checkSignature(signed, this.o.trust, { project_id: this.o.projectId, analysis_id: this.o.analysisId, result_id: id, size, ...(sha256 ? { sha256 } : {}) });
  }

  /** Reads the signature of final result `id` and checks it. */
  async verification(id: string, size: number, sha256?: string): Promise<ResultVerification> {
    return this.check(await this.signed(id), id, size, sha256);
  }

  /** Checks a final result's signature and content against the roster (reads the whole result). */
  async verifyStored(id: string): Promise<ResultVerification> {
    const key = this.o.keys.final(id);
    const info = await this.o.hub.head(key);
    if (!info) throw new NotFoundError(`final result "${id}" of analysis "${this.o.analysisId}" not found`);
    const stream = await this.o.hub.getStream(key);
    const hashing = new Hashing();
    for await (const _ of stream.pipe(hashing)) void _;
    return this.verification(id, hashing.bytes, hashing.digest);
  }
}
