/** The packet codec and the line splitter on their own (the worker tests cover them end to end). */
import { ERROR_MESSAGES, NO_PACKET_ID, ProtocolError, decodePacket, encodePacket, errorMessage } from '../../apps/protocol/packets.js';
import { LineSplitter } from '../../apps/protocol/stdio.js';

describe('error messages', () => {
  test('every placeholder of the table is filled in, and a missing one is refused', () => {
    expect(errorMessage('no-such-id', { packet_type: 'ack', id: 3 })).toBe('Received a ack for invalid packet with id 3.');
    expect(errorMessage('unexpected-class', { class: 'a "b"' })).toBe('"a "b"" is not one of previously specified classes.');
    expect(() => errorMessage('wrong-pong', { message: 'x' })).toThrow('no value for ${wrong_message}');
    // The table of seed 004 has exactly these 16 codes.
    expect(Object.keys(ERROR_MESSAGES)).toHaveLength(16);
  });

  test('a value that looks like a placeholder is not expanded again', () => {
    expect(errorMessage('path-does-not-exist', { path: '/x/${path}' })).toBe('/x/${path} unexpectedly does not exist.');
  });
});

describe('decodePacket', () => {
  test('round trip, extra fields ignored, optional etc', () => {
    const line = encodePacket('progress', 4, { id: 2, completeness: 0.25 });
    expect(decodePacket(line)).toEqual({ type: 'progress', id: 4, data: { id: 2, completeness: 0.25 } });
    expect(decodePacket('{"type":"error","id":1,"data":{"id":-1,"code":"bug","x":1},"extra":true}')).toEqual({
      type: 'error',
      id: 1,
      data: { id: -1, code: 'bug' },
    });
  });

  test('the error refers to the id when it is valid, else to -1', () => {
    const refOf = (line: string): number => {
      try {
        decodePacket(line);
      } catch (e) {
        return (e as ProtocolError).refId;
      }
      throw new Error('decoded');
    };
    expect(refOf('{"type":"nope","id":12}')).toBe(12);
    expect(refOf('{"type":"nope","id":"12"}')).toBe(NO_PACKET_ID);
    expect(refOf('{"type":"ping","id":12,"data":{"message":1}}')).toBe(12);
    expect(refOf('{"type":"ack","id":12,"data":{"id":-2}}')).toBe(12);
  });
});

describe('LineSplitter', () => {
  test('splits at LF only, drops a CR before it, keeps UTF-8 split across chunks, flushes the last line', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    const bytes = Buffer.from('a\r\nb\rc\n\u00e9\u{1f600}\nlast');
    // Feed byte by byte: multi-byte characters arrive in pieces.
    for (const b of bytes) s.push(Buffer.from([b]));
    expect(lines).toEqual(['a', 'b\rc', '\u00e9\u{1f600}']);
    s.end();
    expect(lines.at(-1)).toBe('last');
  });
});
