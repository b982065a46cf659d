/**
 * A value in a file a person opens with ordinary tools: JSON (pretty), bytes as they are, an Arrow
 * table as an Arrow IPC file (pyarrow, DuckDB, Polars), a tensor as NumPy's `.npy`. What a download
 * writes instead of the SDK's internal value frame.
 */
import { Table, tableToIPC } from 'apache-arrow';
import type { FlameValue } from './index.js';
import { Tensor } from './tensor.js';

/** The file format chosen for a value. */
export type FileFormat = 'json' | 'bytes' | 'arrow' | 'npy';

/** NumPy's type codes for each tensor element type (little-endian). */
const NPY_DESCR: Record<Tensor['dtype'], string> = {
  float32: '<f4',
  float64: '<f8',
  int8: '|i1',
  int16: '<i2',
  int32: '<i4',
  uint8: '|u1',
  uint16: '<u2',
  uint32: '<u4',
  int64: '<i8',
  uint64: '<u8',
};

/** A tensor as a NumPy `.npy` file (format 1.0: magic, header length, padded header dict, data). */
export function tensorToNpy(t: Tensor): Uint8Array {
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${NPY_DESCR[t.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // The whole preamble (10 bytes) plus header and its newline is a multiple of 64 bytes.
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY', 'latin1'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(data, 10 + header.length);
  return out;
}

/** JSON for values that nest bytes or tensors: bytes as base64, tensors as {dtype, shape, data}. */
function jsonOf(value: FlameValue): string {
  return `${JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (v instanceof Tensor) return { dtype: v.dtype, shape: v.shape, data: Array.from(v.data as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? x.toString() : x)) };
      if (v instanceof Uint8Array) return { base64: Buffer.from(v).toString('base64') };
      if (v instanceof Table) return v.toArray().map((row) => row.toJSON());
      if (typeof v === 'bigint') return v.toString();
      return v;
    },
    2,
  )}\n`;
}

/** A value as a file. */
export interface ValueFile {
  /** The format chosen for the value. */
  format: FileFormat;
  /** The file's bytes. */
  bytes: Uint8Array;
}

/** The bytes of `value` as a file, and their format. */
export function valueToFile(value: FlameValue): ValueFile {
  if (value instanceof Uint8Array) return { format: 'bytes', bytes: value };
  if (value instanceof Table) return { format: 'arrow', bytes: tableToIPC(value, 'file') };
  if (value instanceof Tensor) return { format: 'npy', bytes: tensorToNpy(value) };
  return { format: 'json', bytes: Buffer.from(jsonOf(value), 'utf8') };
}
