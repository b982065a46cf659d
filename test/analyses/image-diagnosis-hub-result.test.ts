/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * What the image diagnosis leaves on the hub is the seed-000 response itself, the value a person
 * downloads and `flame report` / `flame check` read — not the run's working aggregate.
 */
import path from 'node:path';
import { createDiagnosis, diagnosisRounds } from '../../analyses/image-diagnosis/index.js';
import type { FlameValue } from '../../src/codec/index.js';
import { simulate } from '../../src/star/simulator.js';

const SAMPLE = path.resolve('data/sample');

test('the final result on the hub is exactly the seed-000 response the run produced', async () => {
  const options = { tasks: ['lighting_conditions' as const], datasetUuid: 'sample', data: { 'node-a': { folder: path.join(SAMPLE, 'node-a') }, 'node-b': { folder: path.join(SAMPLE, 'node-b') } } };
  let stored: FlameValue | undefined;
  const { outcome } = await simulate(createDiagnosis(options), {
    nodes: [{ id: 'node-a' }, { id: 'node-b' }],
    maxRounds: diagnosisRounds(options),
    resultName: 'diagnosis',
    logLevel: 'silent',
    disclosure: { minCount: 1 },
    afterRun: async (sdks, done) => {
      stored = await sdks.aggregator.results.getResult(done.resultId!);
    },
  });
  const response = outcome.result.result!;
  expect(response.tasks.map((t) => t.name)).toEqual(['lighting_conditions']);
  expect(stored).toEqual(response);
  expect(Object.keys(stored as object)).not.toContain('phase');
}, 120_000);
