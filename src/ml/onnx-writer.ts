/**
 * A minimal ONNX ModelProto encoder: enough protobuf to write graphs of standard operators with
 * float/int initializers, so models can be built in TypeScript and run by onnxruntime-node
 * without a Python toolchain. Field numbers follow onnx/onnx.proto (IR version 8).
 */
import { BadRequestError } from '../errors.js';

/** Element types this writer can store (ONNX TensorProto.DataType codes). */
export type OnnxElementType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8';

const DATA_TYPE_CODE: Record<OnnxElementType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, float64: 11 };

/** A constant tensor stored in the model (weights, shapes, scalars). */
export interface OnnxInitializer {
  /** Value name that node inputs refer to; unique in the graph. */
  name: string;
  /** Element type the values are stored as. */
  type: OnnxElementType;
  /** Shape; `[]` for a scalar. */
  dims: readonly number[];
  /** Row-major values; its length must equal the product of `dims`. */
  values: Float32Array | Int32Array | BigInt64Array | readonly number[];
}

/**
 * A typed attribute value: `kind` names the ONNX AttributeProto type (int, float, ints, floats,
 * string) and `value` holds it. Make them with {@link attr}.
 */
export type OnnxAttribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string };

/** Constructors for attributes, because a JS number cannot say whether it is an int or a float. */
export const attr = {
  /** An int64 attribute (e.g. `axis`); must be an integer. */
  int: (value: number): OnnxAttribute => ({ kind: 'int', value }),
  /** A float attribute (e.g. `epsilon`). */
  float: (value: number): OnnxAttribute => ({ kind: 'float', value }),
  /** A list of int64s (e.g. `kernel_shape`, `pads`). */
  ints: (value: readonly number[]): OnnxAttribute => ({ kind: 'ints', value }),
  /** A list of floats. */
  floats: (value: readonly number[]): OnnxAttribute => ({ kind: 'floats', value }),
  /** A string attribute (e.g. `auto_pad`). */
  string: (value: string): OnnxAttribute => ({ kind: 'string', value }),
};

/** One operator application. */
export interface OnnxNode {
  /** Operator name, e.g. `Conv`, `MatMul`, `Softmax`. */
  opType: string;
  /** Names of the values it reads, in the operator's order; `''` skips an optional input. */
  inputs: readonly string[];
  /** Names of the values it produces. */
  outputs: readonly string[];
  /** Node name; default `<opType>_<index>`. */
  name?: string;
  /** The operator's attributes by name. */
  attributes?: Readonly<Record<string, OnnxAttribute>>;
  /** Operator domain; empty for the default ai.onnx domain. */
  domain?: string;
}

/** A graph input or output; a string dimension is symbolic (e.g. the batch size). */
export interface OnnxValueInfo {
  /** Value name. */
  name: string;
  /** Element type. */
  type: OnnxElementType;
  /** Dimensions: a number is fixed, a string is a named symbolic dimension. */
  shape: readonly (number | string)[];
}

/** A whole computation graph. */
export interface OnnxGraph {
  /** Graph name (stored in the model). */
  name: string;
  /** What the caller feeds to the model. */
  inputs: readonly OnnxValueInfo[];
  /** What the model returns. */
  outputs: readonly OnnxValueInfo[];
  /** Operators; a node may only read values that an input, an initializer or an earlier node defines. */
  nodes: readonly OnnxNode[];
  /** Constants (weights) stored in the model. */
  initializers: readonly OnnxInitializer[];
}

/** Options of {@link encodeModel}. */
export interface EncodeOptions {
  /** ai.onnx opset version; 17 by default (supported by onnxruntime ≥ 1.13). */
  opset?: number;
  /** The model's `producer_name`; default `flame-sdk`. */
  producerName?: string;
  /** The model's `doc_string`, a free-text description; left out when empty. */
  docString?: string;
}

/** Default opset of the models this SDK writes. */
export const DEFAULT_OPSET = 17;
const IR_VERSION = 8;

/** Appends protobuf fields; nested messages are encoded separately and embedded as bytes. */
class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private rawVarint(value: bigint): void {
    // int64 fields use two's complement, so negatives take ten bytes as protobuf requires.
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wireType: number): void {
    this.rawVarint(BigInt((field << 3) | wireType));
  }

  varint(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.rawVarint(typeof value === 'bigint' ? value : BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.rawVarint(BigInt(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, inner: ProtoWriter): this {
    return this.bytes(field, inner.finish());
  }

  packedVarints(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(BigInt(v));
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

function checkDims(what: string, dims: readonly number[]): number {
  let size = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new BadRequestError(`${what}: bad dimension ${d} in [${dims.join(', ')}]`);
    size *= d;
  }
  return size;
}

/** Little-endian raw bytes of an initializer (raw_data is the compact encoding ORT reads fastest). */
function rawData(t: OnnxInitializer): Uint8Array {
  const size = checkDims(`initializer ${t.name}`, t.dims);
  if (t.values.length !== size) {
    throw new BadRequestError(`initializer ${t.name}: ${t.values.length} values for dims [${t.dims.join(', ')}]`);
  }
  if (t.type === 'float32') {
    const src = t.values instanceof Float32Array ? t.values : Float32Array.from(t.values as ArrayLike<number>);
    const b = new Uint8Array(size * 4);
    const view = new DataView(b.buffer);
    for (let i = 0; i < size; i++) view.setFloat32(i * 4, src[i], true);
    return b;
  }
  if (t.type === 'float64') {
    const b = new Uint8Array(size * 8);
    const view = new DataView(b.buffer);
    for (let i = 0; i < size; i++) view.setFloat64(i * 8, Number(t.values[i]), true);
    return b;
  }
  if (t.type === 'uint8') {
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = Number(t.values[i]);
    return b;
  }
  if (t.type === 'int32') {
    const b = new Uint8Array(size * 4);
    const view = new DataView(b.buffer);
    for (let i = 0; i < size; i++) view.setInt32(i * 4, Number(t.values[i]), true);
    return b;
  }
  const b = new Uint8Array(size * 8);
  const view = new DataView(b.buffer);
  for (let i = 0; i < size; i++) view.setBigInt64(i * 8, BigInt(t.values[i]), true);
  return b;
}

function encodeTensor(t: OnnxInitializer): ProtoWriter {
  const w = new ProtoWriter();
  if (t.dims.length > 0) w.packedVarints(1, t.dims);
  w.varint(2, DATA_TYPE_CODE[t.type]);
  w.string(8, t.name);
  w.bytes(9, rawData(t));
  return w;
}

function encodeAttribute(name: string, a: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (a.kind) {
    case 'float':
      return w.float(2, a.value).varint(20, 1);
    case 'int':
      if (!Number.isInteger(a.value)) throw new BadRequestError(`attribute ${name}: ${a.value} is not an integer`);
      return w.varint(3, a.value).varint(20, 2);
    case 'string':
      return w.string(4, a.value).varint(20, 3);
    case 'floats':
      return w.packedFloats(7, a.value).varint(20, 6);
    case 'ints':
      for (const v of a.value) {
        if (!Number.isInteger(v)) throw new BadRequestError(`attribute ${name}: ${v} is not an integer`);
      }
      // Repeated int64 is written unpacked: both forms are legal, and unpacked is what onnx emits.
      for (const v of a.value) w.varint(8, v);
      return w.varint(20, 7);
  }
}

function encodeNode(n: OnnxNode, index: number): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name ?? `${n.opType}_${index}`);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function encodeValueInfo(v: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().varint(1, DATA_TYPE_CODE[v.type]).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

/** Checks that every node input is produced somewhere, so mistakes fail here with a name, not inside ORT. */
function validateGraph(g: OnnxGraph): void {
  const known = new Set<string>(['']); // '' marks an omitted optional input
  for (const i of g.inputs) known.add(i.name);
  for (const t of g.initializers) known.add(t.name);
  g.nodes.forEach((n, idx) => {
    for (const i of n.inputs) {
      if (!known.has(i)) throw new BadRequestError(`graph ${g.name}: node ${n.name ?? `${n.opType}_${idx}`} reads undefined value '${i}'`);
    }
    for (const o of n.outputs) known.add(o);
  });
  for (const o of g.outputs) {
    if (!known.has(o.name)) throw new BadRequestError(`graph ${g.name}: output '${o.name}' is never produced`);
  }
}

/** Encodes a graph as the bytes of an ONNX ModelProto, ready for `InferenceSession.create(bytes)`. */
export function encodeModel(graph: OnnxGraph, options: EncodeOptions = {}): Uint8Array {
  validateGraph(graph);
  const g = new ProtoWriter();
  graph.nodes.forEach((n, i) => g.message(1, encodeNode(n, i)));
  g.string(2, graph.name);
  for (const t of graph.initializers) g.message(5, encodeTensor(t));
  for (const i of graph.inputs) g.message(11, encodeValueInfo(i));
  for (const o of graph.outputs) g.message(12, encodeValueInfo(o));

  const opset = new ProtoWriter().string(1, '').varint(2, options.opset ?? DEFAULT_OPSET);
  const m = new ProtoWriter();
  m.varint(1, IR_VERSION);
  m.string(2, options.producerName ?? 'flame-sdk');
  m.string(3, '0.1.0');
  if (options.docString) m.string(6, options.docString);
  m.message(7, g);
  m.message(8, opset);
  return m.finish();
}

/**
 * Builds a graph step by step: `op()` names outputs uniquely, so feature extractors and heads
 * can be composed into one model without name clashes.
 */
export class GraphBuilder {
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly outputs: OnnxValueInfo[] = [];
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers: OnnxInitializer[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  /** @param name graph name, also the prefix of generated value names */
  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    let candidate = `${hint}_${this.counter++}`;
    while (this.used.has(candidate)) candidate = `${hint}_${this.counter++}`;
    this.used.add(candidate);
    return candidate;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new BadRequestError(`graph ${this.name}: value name '${name}' is already defined`);
    this.used.add(name);
    return name;
  }

  /** Declares a graph input and returns its name. */
  input(name: string, type: OnnxElementType, shape: readonly (number | string)[]): string {
    this.inputs.push({ name: this.claim(name), type, shape });
    return name;
  }

  /** Declares an existing value as a graph output. */
  output(name: string, type: OnnxElementType, shape: readonly (number | string)[]): void {
    this.outputs.push({ name, type, shape });
  }

  /** Adds a float constant and returns its (generated) name. */
  floats(hint: string, dims: readonly number[], values: Float32Array | readonly number[]): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, type: 'float32', dims, values });
    return name;
  }

  /** Adds an int64 constant (shapes, axes) and returns its name. */
  int64s(hint: string, dims: readonly number[], values: readonly number[]): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, type: 'int64', dims, values });
    return name;
  }

  /** Appends an operator with one output and returns that output's name. */
  op(opType: string, inputs: readonly string[], attributes?: Record<string, OnnxAttribute>, outputName?: string): string {
    const out = outputName ? this.claim(outputName) : this.fresh(opType.toLowerCase());
    this.nodes.push({ opType, inputs, outputs: [out], attributes });
    return out;
  }

  /** The graph built so far. */
  build(): OnnxGraph {
    return {
      name: this.name,
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      nodes: [...this.nodes],
      initializers: [...this.initializers],
    };
  }
}
