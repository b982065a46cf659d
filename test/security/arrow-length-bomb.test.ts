/**
 * Attack: a hostile node sends a small, valid-looking Arrow frame whose length fields were
 * rewritten (envelope checksum recomputed). Before the fix, apache-arrow trusted those lengths:
 * an 812-byte frame with RecordBatch.nodes set to 2^31-1 spun for 188 s and aborted the process
 * with a V8 heap error (exit 134, 7.4 GB RSS). Now every such frame is refused up front, quickly,
 * with a BadRequestError naming the value and the field that is wrong.
 */
import { Table, tableFromArrays, tableToIPC, vectorFromArray, Bool, Field, Int32, List, Struct, Utf8 } from 'apache-arrow';
import { BadRequestError } from '../../src/errors.js';
import { decodeValue, encodeValue } from '../../src/codec/index.js';
import { arrowFrame, hostileValues, lengthFields, readLength, withLength, type LengthField } from './arrow-frames.js';

const WHAT = 'message "m-17" from node B';

function tables(): Array<[string, Table]> {
  const flat = tableFromArrays({ id: Int32Array.from([1, 2, 3]), score: Float64Array.from([0.5, 1.5, -2]), name: ['a', 'b', 'c'] });
  const list = vectorFromArray([[1, 2], [], [3, 4, 5]], new List(new Field('item', new Int32(), true)));
  const struct = vectorFromArray(
    [{ x: 1, label: 'p' }, null, { x: 3, label: 'r' }],
    new Struct([new Field('x', new Int32(), true), new Field('label', new Utf8(), true)]),
  );
  const flags = vectorFromArray([true, null, false], new Bool());
  const nested = new Table({ list, struct, flags });
  return [
    ['flat table with a dictionary column', flat],
    ['nested table (list, struct, nulls, bools)', nested],
  ];
}

interface Outcome {
  field: LengthField;
  value: bigint;
  ms: number;
  refused?: BadRequestError;
}

/** Decodes every mutation of every length field of `table`; any other exception fails the test. */
function attack(table: Table): Outcome[] {
  const frame = encodeValue(table);
  const ipc = tableToIPC(table, 'stream');
  const out: Outcome[] = [];
  for (const field of lengthFields(ipc)) {
    for (const value of hostileValues(readLength(ipc, field), field.width)) {
      const bytes = arrowFrame(frame, withLength(ipc, field, value));
      const t0 = performance.now();
      let refused: BadRequestError | undefined;
      try {
        const decoded = decodeValue(bytes, WHAT) as Table;
        // what decodes must be whole: every value of every column readable
        for (const column of decoded.schema.fields) decoded.getChild(column.name)?.toArray();
      } catch (err) {
        if (!(err instanceof BadRequestError)) throw new Error(`${field.name}=${value}: ${String(err)}`, { cause: err });
        refused = err;
      }
      out.push({ field, value, ms: performance.now() - t0, refused });
    }
  }
  return out;
}

describe('Arrow frames with rewritten length fields', () => {
  it.each(tables())('are refused quickly, naming the value: %s', (_name, table) => {
    const outcomes = attack(table);
    const refused = outcomes.filter((o) => o.refused !== undefined);
    const slowest = outcomes.reduce((a, b) => (b.ms > a.ms ? b : a));
    console.log(
      `${_name}: ${outcomes.length} mutations, ${refused.length} refused, ${outcomes.length - refused.length} decoded whole; ` +
        `slowest ${slowest.ms.toFixed(2)} ms (${slowest.field.name}=${slowest.value})`,
    );
    expect(slowest.ms).toBeLessThan(1000);
    for (const o of refused) expect(o.refused!.message).toContain(WHAT);
    expect(refused.length).toBeGreaterThan(outcomes.length / 2);
  });

  it('names what is wrong in the classic bombs', () => {
    const table = tables()[0][1];
    const frame = encodeValue(table);
    const ipc = tableToIPC(table, 'stream');
    const fields = lengthFields(ipc);
    const find = (re: RegExp): LengthField => fields.find((f) => re.test(f.name))!;
    const cases: Array<[RegExp, bigint, RegExp]> = [
      [/RecordBatch\.nodes$/, 0x7fffffffn, /nodes.*2147483647|2147483647.*nodes/],
      [/RecordBatch\.buffers$/, 0x10000000n, /buffers/],
      [/message 2 bodyLength/, 1n << 40n, /bodyLength/],
      [/RecordBatch\.buffers\[1\]\.length/, 1n << 30n, /buffer.*outside/],
      [/RecordBatch\.nodes\[0\]\.length/, 1000n, /values|length|bytes/],
      [/Schema\.fields$/, 0x7fffffffn, /fields/],
      [/message 0 metadata length/, 0x7ffffff8n, /metadata length/],
    ];
    for (const [where, value, message] of cases) {
      const f = find(where);
      expect(f).toBeDefined();
      const bytes = arrowFrame(frame, withLength(ipc, f, value));
      expect(() => decodeValue(bytes, WHAT)).toThrow(BadRequestError);
      expect(() => decodeValue(bytes, WHAT)).toThrow(message);
    }
  });
});
