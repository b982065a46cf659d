import { BadRequestError } from '../../src/errors.js';
import { assertSafeId, assertSafeKey, assertSafePrefix, compareKeys, MAX_KEY_BYTES } from '../../src/results/keys.js';

describe('assertSafeKey', () => {
  it.each(['a', 'projects/p1/analyses/a1/final/3f2a', 'with space/ünïcödé ✓', 'a.b/c-d_e', '...x/y', `${'k'.repeat(200)}/${'k'.repeat(200)}`])(
    'accepts %j',
    (key) => {
      expect(assertSafeKey(key)).toBe(key);
    },
  );

  it.each([
    ['', /empty/],
    ['..', /'\.\.' segment/],
    ['a/../b', /'\.\.' segment/],
    ['./a', /'\.' segment/],
    ['/etc/passwd', /starts with '\/'/],
    ['a\\b', /backslash/],
    ['a//b', /empty segment/],
    ['a/', /ends with '\/'/],
    ['a\u0000b', /control/],
    ['a\u007fb', /control/],
    ['a\u0085b', /control/],
    ['x'.repeat(MAX_KEY_BYTES + 1), /longer than 1024 bytes/],
    ['é'.repeat(513), /longer than 1024 bytes/], // 1026 UTF-8 bytes in 513 characters
    ['s'.repeat(256), /segment longer than 255/],
  ])('rejects %j with BadRequestError naming it', (key, why) => {
    expect(() => assertSafeKey(key)).toThrow(BadRequestError);
    expect(() => assertSafeKey(key)).toThrow(why);
    expect(() => assertSafeKey(key, 'result key')).toThrow(`unsafe result key ${JSON.stringify(key)}`);
  });
});

describe('assertSafePrefix', () => {
  it('accepts the empty prefix, folder prefixes and partial names', () => {
    expect(assertSafePrefix('')).toBe('');
    expect(assertSafePrefix('projects/p1/')).toBe('projects/p1/');
    expect(assertSafePrefix('projects/p')).toBe('projects/p');
  });
  it('rejects traversal and absolute prefixes', () => {
    expect(() => assertSafePrefix('../')).toThrow(BadRequestError);
    expect(() => assertSafePrefix('/')).toThrow(BadRequestError);
    expect(() => assertSafePrefix('a//')).toThrow(BadRequestError);
  });
});

describe('assertSafeId', () => {
  it('accepts uuids and simple names', () => {
    expect(assertSafeId('3f2a9c1e-0b7d-4e8e-9a51-1d2c3b4a5f60')).toBe('3f2a9c1e-0b7d-4e8e-9a51-1d2c3b4a5f60');
    expect(assertSafeId('node_1.v2')).toBe('node_1.v2');
  });
  it.each(['', '..', 'a..b', 'a/b', '.hidden', '-flag', 'x'.repeat(129), 'tab\t'])('rejects %j naming it', (id) => {
    expect(() => assertSafeId(id, 'result id')).toThrow(`unsafe result id ${JSON.stringify(id)}`);
  });
});

describe('compareKeys', () => {
  it('orders by UTF-8 bytes as S3 does', () => {
    // plain JS sort (UTF-16 units) puts U+1F600 (surrogate 0xD83D) before U+FF21; in UTF-8 U+FF21 (0xEF..) comes first
    expect(['\u{1F600}', '\uFF21', 'b', 'a-', 'a/'].sort(compareKeys)).toEqual(['a-', 'a/', 'b', '\uFF21', '\u{1F600}']);
  });
});
