/**
 * A dense n-dimensional array: element type, shape and a flat typed array in row-major order.
 * The shape is checked against the data so a Tensor that reaches another node is always whole.
 */
import { endianness } from 'node:os';
import { BadRequestError, InternalError } from '../errors.js';

/** Element types a Tensor may hold. */
export type TensorDType = 'float32' | 'float64' | 'int8' | 'int16' | 'int32' | 'uint8' | 'uint16' | 'uint32' | 'int64' | 'uint64';

/** The typed array behind each element type. */
export interface TensorDataMap {
  /** 32-bit floats. */
  float32: Float32Array;
  /** 64-bit floats. */
  float64: Float64Array;
  /** Signed 8-bit integers. */
  int8: Int8Array;
  /** Signed 16-bit integers. */
  int16: Int16Array;
  /** Signed 32-bit integers. */
  int32: Int32Array;
  /** Unsigned 8-bit integers. */
  uint8: Uint8Array;
  /** Unsigned 16-bit integers. */
  uint16: Uint16Array;
  /** Unsigned 32-bit integers. */
  uint32: Uint32Array;
  /** Signed 64-bit integers, as bigint. */
  int64: BigInt64Array;
  /** Unsigned 64-bit integers, as bigint. */
  uint64: BigUint64Array;
}

/** Any typed array a Tensor may hold. */
export type TensorData = TensorDataMap[TensorDType];

type TypedArrayConstructor = {
  new (length: number): TensorData;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): TensorData;
  readonly BYTES_PER_ELEMENT: number;
};

/** Constructor and wire code of each dtype; the codes are part of the codec's format, never renumber. */
export const TENSOR_DTYPES: Readonly<Record<TensorDType, { code: number; array: TypedArrayConstructor }>> = {
  float32: { code: 1, array: Float32Array },
  float64: { code: 2, array: Float64Array },
  int8: { code: 3, array: Int8Array },
  int16: { code: 4, array: Int16Array },
  int32: { code: 5, array: Int32Array },
  uint8: { code: 6, array: Uint8Array },
  uint16: { code: 7, array: Uint16Array },
  uint32: { code: 8, array: Uint32Array },
  int64: { code: 9, array: BigInt64Array },
  uint64: { code: 10, array: BigUint64Array },
};

/** The number of elements of a shape (1 for a scalar's empty shape). */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** A dense tensor; construction fails with BadRequestError when shape × dtype does not match the data. */
export class Tensor<D extends TensorDType = TensorDType> {
  /** Element type. */
  readonly dtype: D;
  /** Size of each dimension, outermost first; `[]` for a scalar. */
  readonly shape: readonly number[];
  /** The elements, row-major (last dimension varies fastest). */
  readonly data: TensorDataMap[D];

  /** Checks dtype, shape and data length; throws BadRequestError naming the tensor when they disagree. */
  constructor(dtype: D, shape: readonly number[], data: TensorDataMap[D]) {
    const what = `Tensor(${JSON.stringify(dtype)}, ${JSON.stringify(shape)})`;
    const spec = (TENSOR_DTYPES as Record<string, { array: TypedArrayConstructor } | undefined>)[dtype];
    if (spec === undefined) throw new BadRequestError(`${what}: unknown dtype, expected one of ${Object.keys(TENSOR_DTYPES).join(', ')}`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new BadRequestError(`${what}: shape must be an array of whole numbers >= 0`);
    }
    if (!(data instanceof spec.array)) {
      throw new BadRequestError(`${what}: data must be a ${spec.array.name}, got ${data?.constructor?.name ?? typeof data}`);
    }
    const expected = shapeSize(shape);
    if (data.length !== expected) {
      throw new BadRequestError(`${what}: shape holds ${expected} elements but data has ${data.length}`);
    }
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** A tensor of zeros. */
  static zeros<D extends TensorDType>(dtype: D, shape: readonly number[]): Tensor<D> {
    const spec = TENSOR_DTYPES[dtype];
    if (spec === undefined) throw new BadRequestError(`Tensor.zeros: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new BadRequestError(`Tensor.zeros(${JSON.stringify(dtype)}, ${JSON.stringify(shape)}): shape must be an array of whole numbers >= 0`);
    }
    return new Tensor(dtype, shape, new spec.array(shapeSize(shape)) as TensorDataMap[D]);
  }
}

/** Tensors travel little-endian, as the CPU holds them; refuse to run where that is not so. */
export function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new InternalError('tensor encoding needs a little-endian CPU');
}
