/** Runs the analysis over two simulated nodes (in-process broker and storage) and checks the result. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { simulate } from 'flame-sdk';
import analysis, { parseValues, SOURCE_ID } from '../src/main.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('the federated mean equals the mean of the pooled values', async () => {
  const nodes = ['node-a', 'node-b'].map((id) => ({
    id,
    dataSources: [{ id: SOURCE_ID, type: 'folder' as const, path: path.join(root, 'data', id) }],
  }));
  const { outcome } = await simulate(analysis, { nodes });
  const pooled = [41, 37, 58, 62, 29];
  assert.equal(outcome.result.count, pooled.length);
  assert.equal(outcome.result.nodes, 2);
  assert.ok(Math.abs(outcome.result.mean - pooled.reduce((a, b) => a + b, 0) / pooled.length) < 1e-12);
  assert.ok(outcome.resultId, 'the aggregator submitted the final result');
});

test('a bad line is reported with its file and line number', () => {
  assert.throws(() => parseValues('value\n1\nabc\n', 'x.csv'), /x\.csv line 3: not a number/);
});
