import { BadRequestError, UnauthorizedError } from '../../src/errors.js';
import {
  exportPrivateKey,
  generateNodeKeys,
  importPrivateKey,
  openSealed,
  publicKeyOf,
  SEAL_OVERHEAD,
  sealFor,
} from '../../src/trust/seal.js';

const plaintext = Buffer.from('local statistics of node B: {"n": 120, "sum": 3.25}');
const aad = 'analysis-1/node-b/result-42';

describe('sealFor / openSealed', () => {
  const b = generateNodeKeys();
  const c = generateNodeKeys();

  it('round trips for the recipient, with and without aad, and hides the plaintext', () => {
    const sealed = sealFor(b.publicKey, plaintext, aad);
    expect(sealed.length).toBe(plaintext.length + SEAL_OVERHEAD);
    expect(Buffer.from(sealed).includes(Buffer.from('node B'))).toBe(false);
    expect(Buffer.from(openSealed(b.privateKey, sealed, aad)).equals(plaintext)).toBe(true);
    const noAad = sealFor(b.publicKey, plaintext);
    expect(Buffer.from(openSealed(b.privateKey, noAad)).equals(plaintext)).toBe(true);
    expect(openSealed(b.privateKey, sealFor(b.publicKey, new Uint8Array(0))).length).toBe(0);
  });

  it('uses a fresh ephemeral key each time (same input, different output)', () => {
    expect(Buffer.from(sealFor(b.publicKey, plaintext)).equals(Buffer.from(sealFor(b.publicKey, plaintext)))).toBe(false);
  });

  it('node C cannot open what was sealed for B', () => {
    const sealed = sealFor(b.publicKey, plaintext, aad);
    expect(() => openSealed(c.privateKey, sealed, aad, 'intermediate result r1')).toThrow(UnauthorizedError);
    expect(() => openSealed(c.privateKey, sealed, aad, 'intermediate result r1')).toThrow(
      'cannot decrypt intermediate result r1: not sealed for this node or tampered',
    );
  });

  it('a flipped bit anywhere (version, ephemeral key, iv, tag, ciphertext) is refused', () => {
    const sealed = Buffer.from(sealFor(b.publicKey, plaintext, aad));
    for (const index of [0, 1, 20, 33, 40, 45, 60, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[index] ^= 0x04;
      expect(() => openSealed(b.privateKey, bad, aad, `copy with byte ${index} flipped`)).toThrow(UnauthorizedError);
    }
  });

  it('truncated input is refused', () => {
    const sealed = sealFor(b.publicKey, plaintext, aad);
    for (const cut of [0, 1, SEAL_OVERHEAD - 1, SEAL_OVERHEAD, sealed.length - 1]) {
      expect(() => openSealed(b.privateKey, sealed.subarray(0, cut), aad)).toThrow(UnauthorizedError);
    }
  });

  it('a different aad is refused', () => {
    const sealed = sealFor(b.publicKey, plaintext, aad);
    expect(() => openSealed(b.privateKey, sealed, 'analysis-1/node-b/result-43')).toThrow(UnauthorizedError);
    expect(() => openSealed(b.privateKey, sealed)).toThrow(UnauthorizedError);
  });

  it('rejects a malformed recipient key with BadRequestError naming it', () => {
    expect(() => sealFor('bm90IGEga2V5', plaintext)).toThrow(BadRequestError);
    expect(() => sealFor('bm90IGEga2V5', plaintext)).toThrow(/bm90IGEga2V5/);
  });

  it('keeps a node identity across export and import', () => {
    const restored = importPrivateKey(exportPrivateKey(b.privateKey));
    expect(publicKeyOf(restored)).toBe(b.publicKey);
    expect(Buffer.from(openSealed(restored, sealFor(b.publicKey, plaintext))).equals(plaintext)).toBe(true);
    expect(() => importPrivateKey('AAAA')).toThrow(BadRequestError);
  });
});
