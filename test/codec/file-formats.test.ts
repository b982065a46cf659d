/** Values written as files people open: JSON, bytes, Arrow IPC files, NumPy .npy (parsed back here by their own rules). */
import { tableFromArrays, tableFromIPC } from 'apache-arrow';
import { Tensor } from '../../src/codec/index.js';
import { tensorToNpy, valueToFile } from '../../src/codec/file-formats.js';

/** Reads a .npy file by the format's published layout. */
function readNpy(bytes: Uint8Array): { descr: string; shape: number[]; fortran: boolean; data: Uint8Array } {
  expect(Array.from(bytes.subarray(0, 8))).toEqual([0x93, ...Buffer.from('NUMPY'), 1, 0]);
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true);
  expect((10 + len) % 64).toBe(0);
  const header = Buffer.from(bytes.subarray(10, 10 + len)).toString('latin1');
  expect(header.endsWith('\n')).toBe(true);
  const descr = /'descr': '([^']+)'/.exec(header)![1];
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1].split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  return { descr, shape, fortran: /'fortran_order': True/.test(header), data: bytes.subarray(10 + len) };
}

test('a tensor becomes a .npy file with its dtype, shape and row-major data', () => {
  const t = new Tensor('float32', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6.5]));
  const npy = readNpy(tensorToNpy(t));
  expect([npy.descr, npy.shape, npy.fortran]).toEqual(['<f4', [2, 3], false]);
  expect(Array.from(new Float32Array(npy.data.slice().buffer))).toEqual([1, 2, 3, 4, 5, 6.5]);
  const v = readNpy(tensorToNpy(new Tensor('int64', [4], BigInt64Array.from([1n, -2n, 3n, 4n]))));
  expect([v.descr, v.shape]).toEqual(['<i8', [4]]);
  expect(readNpy(valueToFile(new Tensor('uint8', [], Uint8Array.from([7]))).bytes).shape).toEqual([]);
});

test('JSON is pretty JSON, bytes stay bytes, a table is an Arrow IPC file', () => {
  const j = valueToFile({ mean: 4.25, tasks: [{ name: 'x' }] });
  expect(j.format).toBe('json');
  expect(JSON.parse(Buffer.from(j.bytes).toString('utf8'))).toEqual({ mean: 4.25, tasks: [{ name: 'x' }] });
  expect(Buffer.from(j.bytes).toString('utf8')).toContain('\n  "mean": 4.25');
  const b = valueToFile(Buffer.from([1, 2, 3]));
  expect([b.format, Array.from(b.bytes)]).toEqual(['bytes', [1, 2, 3]]);
  const a = valueToFile(tableFromArrays({ id: Int32Array.from([1, 2]), score: Float64Array.from([0.5, 0.25]) }));
  expect(a.format).toBe('arrow');
  expect(Buffer.from(a.bytes.subarray(0, 6)).toString('latin1')).toBe('ARROW1');
  expect(tableFromIPC(a.bytes).toArray().map((r) => r.toJSON())).toEqual([{ id: 1, score: 0.5 }, { id: 2, score: 0.25 }]);
});
