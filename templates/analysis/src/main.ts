/**
 * A federated analysis in the star pattern: every node computes the count and sum of the values in
 * its own `values.csv`; the aggregator merges them into the global mean. Only the two numbers leave
 * a node, never the values.
 */
import { BadRequestError, type FileDataClient, type StarAnalysis } from 'flame-sdk';

/** Id of the data source every node reads (set per node in FLAME_DATA_SOURCES). */
export const SOURCE_ID = 'values';
/** File read from that data source: a CSV with a header line and one number per line. */
export const FILE = 'values.csv';

/** What one node sends to the aggregator. */
export type LocalStats = { count: number; sum: number };

/** The final result. */
export type GlobalStats = { count: number; mean: number; nodes: number };

/** The numbers of the first column, below the header line; the error names the file and line. */
export function parseValues(text: string, file: string): number[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  return lines.slice(1).map((line, i) => {
    const value = Number(line.split(',')[0]);
    if (!Number.isFinite(value))
      throw new BadRequestError(`${file} line ${i + 2}: not a number: ${JSON.stringify(line)}`);
    return value;
  });
}

const analysis: StarAnalysis<LocalStats, GlobalStats> = {
  async analyze({ sdk }) {
    const data = sdk.getDataClient(SOURCE_ID) as FileDataClient;
    const text = Buffer.from(await data.getBytes(FILE)).toString('utf8');
    const values = parseValues(text, `${sdk.nodeId}:${FILE}`);
    return { count: values.length, sum: values.reduce((a, b) => a + b, 0) };
  },
  aggregate(results) {
    const count = results.reduce((a, r) => a + r.value.count, 0);
    const sum = results.reduce((a, r) => a + r.value.sum, 0);
    return { count, mean: count === 0 ? 0 : sum / count, nodes: results.length };
  },
};

export default analysis;
