/**
 * Example federated analysis: the mean and standard deviation of a numeric CSV column held by every
 * node, in two rounds (sums → global mean; squared deviations → variance). Only sums leave a node.
 * `flame demo --analysis mean` runs it over three simulated nodes.
 *
 * Disclosure control (the node's policy, src/star/disclosure.ts): a node holding fewer values than
 * its minimum count refuses to take part (its sums would be close to its values); its value count is
 * shared only at or above it. With a noise scale set by any node, the aggregator adds Laplace noise
 * to `mean` and `std` (not to the counts) and records it in the result's `disclosure` field.
 */
import type { FileDataClient } from 'flame-sdk';
import { BadRequestError } from 'flame-sdk';
import type { StarAnalysis } from 'flame-sdk';
import { DisclosureControl, disclosureRecord, type DisclosureRecord, type NodeDisclosureReport } from 'flame-sdk';

/** Data source id and file every node reads. */
export const SOURCE_ID = 'values';
export const FILE = 'ages.csv';

/** A node's contribution in one round. */
export interface LocalSums {
  count: number;
  sum: number;
  /** Sum of squared deviations from the global mean (round 1 only). */
  squaredDeviations: number;
  /** What the node's disclosure control did. */
  disclosure: NodeDisclosureReport;
  [key: string]: unknown;
}

/** The aggregate after each round. */
export interface MeanResult {
  count: number;
  mean: number;
  /** Population standard deviation (after round 1). */
  std: number | null;
  /** Number of values per node (each at least the node's minimum count). */
  perNode: Record<string, number>;
  /** Each node's minimum count and what was suppressed; absent when every node's minimum is 1. */
  disclosure?: DisclosureRecord;
  [key: string]: unknown;
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

/** The federated mean as a star analysis. */
export const federatedMean: StarAnalysis<LocalSums, MeanResult> = {
  async analyze({ sdk, round, global }) {
    const client = sdk.getDataClient(SOURCE_ID) as FileDataClient;
    const values = parseColumn(Buffer.from(await client.getBytes(FILE)).toString('utf8'), `${sdk.nodeId}:${FILE}`);
    const control = new DisclosureControl(sdk.config.disclosure);
    control.requireRecords(values.length, `federated mean on node "${sdk.nodeId}" (${FILE})`);
    const sum = values.reduce((a, b) => a + b, 0);
    const squaredDeviations = round === 0 || !global ? 0 : values.reduce((a, v) => a + (v - global.mean) ** 2, 0);
    return { count: control.count('value_counts', values.length), sum, squaredDeviations, disclosure: control.report() };
  },
  aggregate(results, { round, previous }) {
    const count = results.reduce((a, r) => a + r.value.count, 0);
    const sum = results.reduce((a, r) => a + r.value.sum, 0);
    const perNode = Object.fromEntries(results.map((r) => [r.nodeId, r.value.count]));
    const record = disclosureRecord(results.map((r) => ({ node: r.nodeId, report: r.value.disclosure })));
    const base = record ? { disclosure: record } : {};
    if (round === 0 || !previous) return { count, mean: sum / count, std: null, perNode, ...base };
    const ss = results.reduce((a, r) => a + r.value.squaredDeviations, 0);
    return { count, mean: previous.mean, std: Math.sqrt(ss / count), perNode, ...base };
  },
  converged: (_current, _previous, round) => round >= 1,
  // The statistics get the noise a node's policy asks for; the counts stay exact.
  noiseFields: ['mean', 'std'],
};

export default federatedMean;
