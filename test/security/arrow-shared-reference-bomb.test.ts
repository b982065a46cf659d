/**
 * Attack: flatbuffer offsets may point at the same bytes many times. A 1 MiB Arrow schema whose
 * custom_metadata vector holds 250,000 references to one KeyValue with a 16 KiB value made
 * apache-arrow decode 4 GB of UTF-8: the unfixed decodeValue took 3.3 s over the 1 MiB frame,
 * 0.7 s over the 103 KiB one tested here, and the cost grows with the frame without bound.
 * The validator charges every string, vector and table it reads against the flatbuffer's own
 * size and refuses the frame within milliseconds.
 */
import { tableFromArrays } from 'apache-arrow';
import { BadRequestError } from '../../src/errors.js';
import { decodeValue, encodeValue } from '../../src/codec/index.js';
import { arrowFrame, sharedMetadataStream } from './arrow-frames.js';

describe('Arrow metadata that refers to the same bytes over and over', () => {
  it('is refused at once instead of being decoded 10,000 times', () => {
    const frame = arrowFrame(encodeValue(tableFromArrays({ x: Int32Array.of(1) })), sharedMetadataStream(10_000, 65_536));
    expect(() => decodeValue(frame, 'message "m9" from node B')).toThrow(/message "m9" from node B.*custom_metadata.*refers to the same bytes repeatedly/);
    const t0 = performance.now();
    expect(() => decodeValue(frame, 'message "m9" from node B')).toThrow(BadRequestError);
    const ms = performance.now() - t0;
    console.log(`${(frame.length / 1024).toFixed(0)} KiB frame with 10,000 shared references refused in ${ms.toFixed(1)} ms`);
    expect(ms).toBeLessThan(1000);
  });

  it('while metadata without sharing still decodes', () => {
    const frame = arrowFrame(encodeValue(tableFromArrays({ x: Int32Array.of(1) })), sharedMetadataStream(1, 16_384));
    expect(decodeValue(frame, 'v')).toBeDefined();
  });
});
