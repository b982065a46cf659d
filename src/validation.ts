/**
 * Checks of untrusted input (requests, results, references, command-line flags), each naming the
 * field as a path into its input (`request.tasks[0].name: expected …, got …`) in a BadRequestError.
 * The checkers return the value with its type, so callers read it without casts.
 */
import { BadRequestError } from './errors.js';

/** A parsed JSON object. */
export type Json = Record<string, unknown>;

/** Whether `v` is a JSON object (not null, not an array). */
export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How a wrong value is shown after `got`: `null`, `an array`, `an object`, `string "x"`, `number 5`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Throws a BadRequestError `where: problem`.
 * @param where the field path, e.g. `request.dataset.classes[1]` or a flag, e.g. `--folds`
 */
export function fail(where: string, problem: string): never {
  throw new BadRequestError(`${where}: ${problem}`);
}

/** A JSON object; `what` says which, e.g. `an object {classes, class_files}`. */
export function objectAt(v: unknown, where: string, what: string): Json {
  if (v === undefined) fail(where, `missing (${what})`);
  if (!isObject(v)) fail(where, `expected ${what}, got ${describeValue(v)}`);
  return v;
}

/** A non-empty string; `what` names it in the missing message, e.g. `a non-empty string`. */
export function nonEmptyString(v: unknown, where: string, what = 'a non-empty string'): string {
  if (v === undefined) fail(where, `missing (${what})`);
  if (typeof v !== 'string' || v === '') fail(where, `expected ${what}, got ${describeValue(v)}`);
  return v;
}

/** `true` or `false`. */
export function booleanAt(v: unknown, where: string): boolean {
  if (v === undefined) fail(where, 'missing (true or false)');
  if (typeof v !== 'boolean') fail(where, `expected true or false, got ${describeValue(v)}`);
  return v;
}

/** Bounds of {@link integerAt} and {@link intOption}; `min` defaults to 1. */
export interface IntBounds {
  /** Smallest value allowed (default 1). */
  min?: number;
  /** Largest value allowed (default none). */
  max?: number;
}

function intExpected({ min = 1, max }: IntBounds): string {
  return `expected an integer from ${min}${max !== undefined ? ` to ${max}` : ''}`;
}

function inBounds(n: number, { min = 1, max }: IntBounds): boolean {
  return Number.isSafeInteger(n) && n >= min && (max === undefined || n <= max);
}

/** A whole number within `bounds` (default 1 and up). */
export function integerAt(v: unknown, where: string, bounds: IntBounds = {}): number {
  if (typeof v !== 'number' || !inBounds(v, bounds)) fail(where, `${intExpected(bounds)}, got ${describeValue(v)}`);
  return v;
}

/** An array of finite numbers, of exactly `length` values when given (one per channel). */
export function numberArrayAt(v: unknown, where: string, length?: number): number[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) fail(where, `expected an array of numbers, got ${describeValue(v)}`);
  if (length !== undefined && v.length !== length) fail(where, `expected ${length} value(s) (one per channel), got ${v.length}`);
  return v as number[];
}

/**
 * A commander option parser of whole numbers within `bounds` (default 1 and up): `--folds abc`,
 * `--folds 1.5` and `--folds 1` (with min 2) are refused alike, naming the flag.
 */
export function intOption(flag: string, bounds: IntBounds = {}): (value: string) => number {
  return (value) => {
    const n = value.trim() === '' ? Number.NaN : Number(value);
    if (!inBounds(n, bounds)) fail(flag, `${intExpected(bounds)}, got ${JSON.stringify(value)}`);
    return n;
  };
}

/**
 * A commander option parser of a count (a whole number, 1 and up) or a fraction strictly between 0
 * and 1, naming the flag when refused: `--min-nodes 2` and `--min-nodes 0.5` pass, `abc`, `0` and
 * `1.5` do not.
 */
export function countOrFractionOption(flag: string): (value: string) => number {
  return (value) => {
    const n = value.trim() === '' ? Number.NaN : Number(value);
    if (!((n > 0 && n < 1) || inBounds(n, {}))) fail(flag, `expected a count from 1 or a fraction between 0 and 1, got ${JSON.stringify(value)}`);
    return n;
  };
}

/** A commander option parser of numbers from `min` to `max`, naming the flag when refused. */
export function numberOption(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = value.trim() === '' ? Number.NaN : Number(value);
    if (!(n >= min && n <= max)) fail(flag, `expected a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return n;
  };
}
