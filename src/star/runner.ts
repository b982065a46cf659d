/**
 * Runs a StarAnalysis on one node, as analyzer or aggregator depending on the node's role. The same
 * code runs in the simulator (embedded adapters) and on NATS + S3 with real node processes; a node
 * that restarts with the same configuration resumes the run (checkpoint.ts).
 *
 * The aggregator's side (rounds, quorum, liveness): aggregator.ts. The analyzer's side: analyzer.ts.
 * The messages: protocol.ts.
 */
import type { FlameValue } from '../codec/index.js';
import type { FlameSDK } from '../sdk.js';
import type { StarAnalysis, StarOptions, StarOutcome } from './analysis.js';
import { aggregatorRun } from './aggregator.js';
import { analyzerRun } from './analyzer.js';

export { FINISHED, STAR_FAILED, STAR_LOCAL, STAR_ROUND } from './protocol.js';

/** Run `analysis` on this node until the aggregator declares it finished. */
export async function runStar<L extends FlameValue, G extends FlameValue, F extends FlameValue = G>(
  sdk: FlameSDK,
  analysis: StarAnalysis<L, G, F>,
  options: StarOptions = {},
): Promise<StarOutcome<G, F>> {
  sdk.setStatus('executing');
  try {
    const outcome = sdk.role === 'aggregator' ? await aggregatorRun(sdk, analysis, options) : await analyzerRun(sdk, analysis, options);
    sdk.setStatus('executed');
    return outcome;
  } catch (e) {
    sdk.setStatus('failed', e);
    throw e;
  }
}
