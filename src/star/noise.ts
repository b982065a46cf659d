/**
 * Laplace noise on final results, the second half of a node's disclosure policy
 * (`config.disclosure.noiseScale`, `FLAME_NOISE_SCALE`), as FLAME's `StarLocalDPModel` adds it: the
 * aggregator adds Laplace(0, b) noise to the numbers of the final result before it submits it. The
 * scale is the largest any participant asks for ({@link strictestNoiseScale}); ε-differential privacy
 * then holds for a statistic of sensitivity Δ when b ≥ Δ/ε, which is the analysis' to argue.
 * Noise is drawn from the OS's cryptographic generator (textbook inverse-CDF sampling: floating-point
 * rounding leaks a little, see Mironov 2012; good enough for scales well above a number's ulp).
 */
import { getRandomValues } from 'node:crypto';
import type { DisclosurePolicy } from '../config.js';
import { BadRequestError } from '../errors.js';
import { Tensor, type FlameValue } from '../codec/index.js';

/** What the aggregator added to the final result, as recorded in its `disclosure` field. */
export interface NoiseRecord {
  /** The noise distribution (Laplace(0, scale)). */
  mechanism: 'laplace';
  /** Scale b of the noise. */
  scale: number;
  /** How many numbers got noise. */
  values: number;
  /** The paths noised (`*` = every number of the result). */
  fields: string[];
  /** The nodes whose policy asks for this scale. */
  requested_by: string[];
}

/** What {@link addLaplaceNoise} returns. */
export interface NoisedValue<T> {
  /** The value with noise (a copy). */
  value: T;
  /** How many numbers got noise. */
  noised: number;
}

/** What {@link recordNoise} returns. */
export interface RecordedNoise<T> {
  /** The value with the record written (a copy where it changed). */
  value: T;
  /** False when noise was added but no object could hold the record. */
  recorded: boolean;
}

/** The noise a run must add, from {@link strictestNoiseScale}. */
export interface NoiseDemand {
  /** The largest scale asked for. */
  scale: number;
  /** The nodes asking for it. */
  nodes: string[];
}

/** A uniform number in [0, 1) with 53 random bits from the OS's generator. */
function uniform(): number {
  const [hi, lo] = getRandomValues(new Uint32Array(2));
  return ((hi >>> 5) * 67108864 + (lo >>> 6)) / 9007199254740992;
}

/** One draw of Laplace(0, `scale`); `random` (uniform on [0, 1)) is for tests. */
export function laplaceSample(scale: number, random: () => number = uniform): number {
  let u = random() - 0.5;
  while (u === -0.5) u = random() - 0.5;
  return -scale * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
}

/**
 * The noise scale a run must apply: the largest `noiseScale` among the policies (undefined when no
 * node asks for noise), and the nodes asking for it.
 */
export function strictestNoiseScale(policies: ReadonlyArray<{ node: string; policy?: Partial<DisclosurePolicy> }>): NoiseDemand | undefined {
  let scale = 0;
  for (const p of policies) scale = Math.max(scale, p.policy?.noiseScale ?? 0);
  if (!(scale > 0)) return undefined;
  return { scale, nodes: policies.filter((p) => p.policy?.noiseScale === scale).map((p) => p.node) };
}

function isPlainObject(v: unknown): v is Record<string, FlameValue> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Every finite number in `v` plus noise (copies; float tensors too; strings, bytes, tables as they are). */
function noiseAll(v: FlameValue, draw: () => number, tally: { n: number }): FlameValue {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return v;
    tally.n++;
    return v + draw();
  }
  if (Array.isArray(v)) return v.map((x) => noiseAll(x, draw, tally));
  if (v instanceof Tensor) {
    if (v.dtype !== 'float32' && v.dtype !== 'float64') return v;
    const data = (v.data as Float32Array | Float64Array).map((x) => {
      if (!Number.isFinite(x)) return x;
      tally.n++;
      return x + draw();
    });
    return new Tensor(v.dtype, v.shape, data);
  }
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, noiseAll(x, draw, tally)]));
  return v;
}

/** `v` with noise on what `path` (segments; `*` = every key or index) selects. */
function noiseAt(v: FlameValue, path: readonly string[], draw: () => number, tally: { n: number }): FlameValue {
  if (path.length === 0) return noiseAll(v, draw, tally);
  const [head, ...rest] = path;
  if (Array.isArray(v)) {
    return v.map((x, i) => (head === '*' || head === String(i) ? noiseAt(x, rest, draw, tally) : x));
  }
  if (isPlainObject(v)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, head === '*' || head === k ? noiseAt(x, rest, draw, tally) : x]));
  }
  return v;
}

/**
 * `value` with Laplace(0, `scale`) noise added to the numbers `fields` select: dot-separated paths
 * whose segments are keys, array indices or `*` (every key or index), each selecting every finite
 * number under it (in plain objects, arrays and float tensors). Default `['*']`: every finite number
 * of the value. The input is not changed.
 * @returns the noised copy and how many numbers got noise
 */
export function addLaplaceNoise<T extends FlameValue>(
  value: T,
  scale: number,
  fields: readonly string[] = ['*'],
  draw: () => number = () => laplaceSample(scale),
): NoisedValue<T> {
  const tally = { n: 0 };
  let out: FlameValue = value;
  for (const f of fields) out = f === '*' ? noiseAll(out, draw, tally) : noiseAt(out, f.split('.'), draw, tally);
  return { value: out as T, noised: tally.n };
}

/**
 * `value` with the noise record written at `field` (a dot path of keys to an object field, default
 * `disclosure`): merged as its `noise` key into an object already there, else `{noise}`; `null` when no
 * noise was added and a record is there (an absent record stays absent: the result is unchanged).
 * @returns the new value, and false when there is no object to hold the field (nothing recorded)
 */
export function recordNoise<T extends FlameValue>(value: T, field: string, noise: NoiseRecord | null): RecordedNoise<T> {
  const path = field.split('.');
  const write = (v: FlameValue, i: number): FlameValue | undefined => {
    if (!isPlainObject(v)) return undefined;
    const key = path[i];
    if (i < path.length - 1) {
      const inner = write(v[key], i + 1);
      return inner === undefined ? undefined : { ...v, [key]: inner };
    }
    const existing = v[key];
    if (isPlainObject(existing)) return { ...v, [key]: { ...existing, noise: noise as unknown as FlameValue } };
    if (noise) return { ...v, [key]: { noise: noise as unknown as FlameValue } };
    return v;
  };
  const out = write(value, 0);
  return out === undefined ? { value, recorded: noise === null } : { value: out as T, recorded: true };
}

/** Parameters of local differential privacy on one final result (python-sdk's `local_dp`). */
export interface LocalDpOptions {
  /** Privacy budget ε (> 0). */
  epsilon: number;
  /** Sensitivity Δ of the statistic (> 0): how much one record can change it. */
  sensitivity: number;
}

/** Path of the first leaf of `v` that is not a finite number (or float tensor), undefined when all are. */
function firstNonNumeric(v: FlameValue, at: string): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : at;
  if (v instanceof Tensor) return v.dtype === 'float32' || v.dtype === 'float64' ? undefined : at;
  if (Array.isArray(v) || isPlainObject(v)) {
    const entries = Object.entries(v as Record<string, FlameValue>);
    if (entries.length === 0) return at;
    for (const [k, x] of entries) {
      const bad = firstNonNumeric(x, `${at}.${k}`);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  return at;
}

/**
 * `value` with Laplace(0, Δ/ε) noise on every number: ε-local differential privacy for a statistic of
 * sensitivity Δ. Only numeric values are accepted (a finite number, a float tensor, or arrays and
 * objects of them): anything else, or ε or Δ not a finite number > 0, is refused with a BadRequestError
 * (`what` names the call) rather than sent without the privacy asked for.
 */
export function applyLocalDp<T extends FlameValue>(value: T, dp: LocalDpOptions, what: string, draw?: () => number): NoisedValue<T> {
  for (const key of ['epsilon', 'sensitivity'] as const) {
    const x = (dp as unknown as Record<string, unknown> | undefined)?.[key];
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) throw new BadRequestError(`${what}: localDp.${key} must be a finite number > 0, not ${JSON.stringify(x)}`);
  }
  const bad = firstNonNumeric(value, 'value');
  if (bad !== undefined) throw new BadRequestError(`${what}: localDp needs a numeric value (numbers, float tensors, arrays or objects of them); ${bad} is not`);
  const scale = dp.sensitivity / dp.epsilon;
  return addLaplaceNoise(value, scale, ['*'], draw ?? (() => laplaceSample(scale)));
}
