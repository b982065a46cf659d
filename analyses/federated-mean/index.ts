/**
 * Example federated analysis: the mean and standard deviation of a numeric CSV column held by every
 * node, in two rounds (sums → global mean; squared deviations → variance). Only sums leave a node.
 * `npm start` runs it over three simulated nodes before the image analyses take over.
 */
import type { FileDataClient } from '../../src/data/port.js';
import { BadRequestError } from '../../src/errors.js';
import type { StarAnalysis } from '../../src/star/analysis.js';

/** Data source id and file every node reads. */
export const SOURCE_ID = 'values';
export const FILE = 'ages.csv';

/** A node's contribution in one round. */
export interface LocalSums {
  count: number;
  sum: number;
  /** Sum of squared deviations from the global mean (round 1 only). */
  squaredDeviations: number;
}

/** The aggregate after each round. */
export interface MeanResult {
  count: number;
  mean: number;
  /** Population standard deviation (after round 1). */
  std: number | null;
  /** Number of values per node (counts are not considered private here). */
  perNode: Record<string, number>;
}

/** Parse the first column of a CSV with a header line; the error names the file and line. */
export function parseColumn(text: string, file: string): number[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines.slice(1).map((line, i) => {
    const v = Number(line.split(',')[0]);
    if (!Number.isFinite(v)) throw new BadRequestError(`${file} line ${i + 2}: not a number: ${JSON.stringify(line)}`);
    return v;
  });
}

export const federatedMean: StarAnalysis<LocalSums & Record<string, number>, MeanResult & Record<string, unknown>> = {
  async analyze({ sdk, round, global }) {
    const client = sdk.getDataClient(SOURCE_ID) as FileDataClient;
    const values = parseColumn(Buffer.from(await client.getBytes(FILE)).toString('utf8'), `${sdk.nodeId}:${FILE}`);
    const sum = values.reduce((a, b) => a + b, 0);
    const squaredDeviations = round === 0 || !global ? 0 : values.reduce((a, v) => a + (v - global.mean) ** 2, 0);
    return { count: values.length, sum, squaredDeviations };
  },
  aggregate(results, { round, previous }) {
    const count = results.reduce((a, r) => a + r.value.count, 0);
    const sum = results.reduce((a, r) => a + r.value.sum, 0);
    const perNode = Object.fromEntries(results.map((r) => [r.nodeId, r.value.count]));
    if (round === 0 || !previous) return { count, mean: sum / count, std: null, perNode };
    const ss = results.reduce((a, r) => a + r.value.squaredDeviations, 0);
    return { count, mean: previous.mean, std: Math.sqrt(ss / count), perNode };
  },
  converged: (_current, _previous, round) => round >= 1,
};

export default federatedMean;
