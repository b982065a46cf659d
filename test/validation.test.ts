/** The field-path checkers and the command-line option parsers of src/validation.ts. */
import { BadRequestError } from '../src/errors.js';
import { booleanAt, countOrFractionOption, integerAt, intOption, nonEmptyString, numberArrayAt, numberOption, objectAt } from '../src/validation.js';
import { runCli } from './cli/run-cli.js';

function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BadRequestError);
    return (e as Error).message;
  }
  throw new Error('expected a BadRequestError');
}

test('field checkers return the typed value or name the field path and what was expected', () => {
  expect(integerAt(3, 'request.tasks[0].n')).toBe(3);
  expect(messageOf(() => integerAt(0, 'request.tasks[0].n'))).toBe('request.tasks[0].n: expected an integer from 1, got number 0');
  expect(messageOf(() => integerAt(2.5, 'f.channels', { max: 4 }))).toBe('f.channels: expected an integer from 1 to 4, got number 2.5');
  expect(messageOf(() => integerAt('3', 'x', { min: 0 }))).toBe('x: expected an integer from 0, got string "3"');
  expect(nonEmptyString('a', 'r.id')).toBe('a');
  expect(messageOf(() => nonEmptyString(undefined, 'r.id'))).toBe('r.id: missing (a non-empty string)');
  expect(messageOf(() => nonEmptyString(null, 'r.id'))).toBe('r.id: expected a non-empty string, got null');
  expect(booleanAt(false, 'r.auto')).toBe(false);
  expect(messageOf(() => booleanAt([], 'r.auto'))).toBe('r.auto: expected true or false, got an array');
  expect(objectAt({ a: 1 }, 'r', 'an object {a}')).toEqual({ a: 1 });
  expect(messageOf(() => objectAt(7, 'r.d', 'an object {a}'))).toBe('r.d: expected an object {a}, got number 7');
  expect(numberArrayAt([1, 2], 'r.mean', 2)).toEqual([1, 2]);
  expect(messageOf(() => numberArrayAt([1, Number.NaN], 'r.mean'))).toBe('r.mean: expected an array of numbers, got an array');
  expect(messageOf(() => numberArrayAt([1], 'r.mean', 3))).toBe('r.mean: expected 3 value(s) (one per channel), got 1');
});

test('option parsers refuse a value that is not a number like one out of range, naming the flag', () => {
  const folds = intOption('--folds', { min: 2 });
  expect(folds('5')).toBe(5);
  expect(messageOf(() => folds('abc'))).toBe('--folds: expected an integer from 2, got "abc"');
  expect(messageOf(() => folds('1'))).toBe('--folds: expected an integer from 2, got "1"');
  expect(messageOf(() => folds('2.5'))).toBe('--folds: expected an integer from 2, got "2.5"');
  expect(messageOf(() => folds(''))).toBe('--folds: expected an integer from 2, got ""');
  const p = numberOption('--min-confidence', 0, 1);
  expect(p('0.25')).toBe(0.25);
  expect(messageOf(() => p('high'))).toBe('--min-confidence: expected a number from 0 to 1, got "high"');
  const nodes = countOrFractionOption('--min-nodes');
  expect(nodes('2')).toBe(2);
  expect(nodes('0.5')).toBe(0.5);
  for (const bad of ['abc', '0', '1.5', '-1', '']) {
    expect(messageOf(() => nodes(bad))).toBe(`--min-nodes: expected a count from 1 or a fraction between 0 and 1, got ${JSON.stringify(bad)}`);
  }
});

test('flame diagnose --folds abc is refused like --folds 1, before the request is read', async () => {
  for (const value of ['abc', '1']) {
    const run = await runCli(['diagnose', '--request', 'does-not-matter.json', '--folds', value]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`--folds: expected an integer from 2, got "${value}"`);
  }
}, 30_000);

test('flame run and flame nodes name a flag that is not a whole number', async () => {
  const run = await runCli(['run', 'analysis.ts', '--timeout-ms', 'soon']);
  expect(run.code).toBe(2);
  expect(run.stderr).toContain('--timeout-ms: expected an integer from 1, got "soon"');
  const nodes = await runCli(['nodes', 'status', '--timeout-ms', '1.5']);
  expect(nodes.code).toBe(2);
  expect(nodes.stderr).toContain('--timeout-ms: expected an integer from 1, got "1.5"');
  const minNodes = await runCli(['run', 'analysis.ts', '--min-nodes', 'most']);
  expect(minNodes.code).toBe(2);
  expect(minNodes.stderr).toContain('--min-nodes: expected a count from 1 or a fraction between 0 and 1, got "most"');
}, 30_000);
