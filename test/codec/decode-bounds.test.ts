/**
 * The non-Arrow decoders check what a hostile frame claims before spending on it: JSON nesting,
 * tensor shapes, composite part lengths, the envelope's reserved bytes, and keys that would
 * rewrite a decoded object's prototype.
 */
import { BadRequestError } from '../../src/errors.js';
import { decodeValue, encodeValue, type FlameValue } from '../../src/codec/index.js';
import { seal } from '../security/fuzz-frames.js';


function timed(f: () => unknown): number {
  const t0 = performance.now();
  try {
    f();
  } catch {
    // the caller asserts the error separately
  }
  return performance.now() - t0;
}

describe('JSON nesting', () => {
  it('refuses 10^6 levels quickly (V8 alone needs over a second, and readers then overflow)', () => {
    const deep = seal('json', Buffer.from('['.repeat(1e6) + ']'.repeat(1e6)));
    expect(() => decodeValue(deep, 'message "deep"')).toThrow(/message "deep": JSON nested deeper than 512 levels/);
    const ms = timed(() => decodeValue(deep, 'x'));
    console.log(`10^6-deep JSON refused in ${ms.toFixed(1)} ms`);
    expect(ms).toBeLessThan(1000);
  });

  it('still decodes the deepest value encodeValue writes, and brackets inside strings do not count', () => {
    let v: FlameValue = [];
    for (let i = 0; i < 512; i++) v = [v];
    expect(decodeValue(encodeValue(v))).toEqual(v);
    const s = { text: '['.repeat(5000) };
    expect(decodeValue(encodeValue(s))).toEqual(s);
    expect(decodeValue(encodeValue({ q: '\\"[[[' + '['.repeat(1000) }))).toEqual({ q: '\\"[[[' + '['.repeat(1000) });
  });
});

describe('tensor shapes', () => {
  it('refuses a shape far larger than the data before allocating it', () => {
    const head = Buffer.alloc(4 + 12);
    head.writeUInt8(2, 0); // float64
    head.writeUInt8(3, 1);
    for (let i = 0; i < 3; i++) head.writeUInt32LE(0xffffffff, 4 + 4 * i);
    const bomb = seal('tensor', Buffer.concat([head, Buffer.alloc(16)]));
    expect(() => decodeValue(bomb, 'weights "w"')).toThrow(BadRequestError);
    expect(() => decodeValue(bomb, 'weights "w"')).toThrow(/weights "w".*needs .* data bytes, found 16/);
  });
});

describe('composite values', () => {
  it('refuses a part length beyond the frame', () => {
    const json = Buffer.from('{"a":{"$flame":0}}');
    const payload = Buffer.concat([Buffer.alloc(4), json, Buffer.alloc(8)]);
    payload.writeUInt32LE(json.length, 0);
    payload.writeBigUInt64LE(1n << 60n, 4 + json.length);
    expect(() => decodeValue(seal('composite', payload), 'result "c"')).toThrow(/result "c": truncated composite part 0/);
  });

  it('keeps a "__proto__" key as an own property instead of rewriting the prototype', () => {
    const part = encodeValue(Buffer.from('x'));
    const json = Buffer.from('{"__proto__":{"$flame":0},"ok":1}');
    const head = Buffer.alloc(4);
    head.writeUInt32LE(json.length);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(part.length));
    const out = decodeValue(seal('composite', Buffer.concat([head, json, len, part])), 'v') as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 'ok']);
    expect(Buffer.isBuffer(Object.getOwnPropertyDescriptor(out, '__proto__')?.value)).toBe(true);
  });
});

describe('the envelope', () => {
  it('refuses reserved header bytes that are not zero', () => {
    const bytes = Buffer.from(encodeValue({ a: 1 }));
    bytes[6] = 1;
    expect(() => decodeValue(bytes, 'message "r"')).toThrow(/message "r": reserved header bytes are 1, expected 0/);
  });
});
