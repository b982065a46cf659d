/**
 * Resume: an aggregator or an analyzer that stops in the middle of a run and is started again with
 * the same configuration goes on from its last completed round (its checkpoint and its kept inbox),
 * and the final result equals the undisturbed run's. Here the stops are in-process (the node's SDK is
 * dropped mid-round); test/chaos kills real node processes with SIGKILL.
 */
import type { FlameSDK } from '../../src/sdk.js';
import type { StarAnalysis } from '../../src/star/analysis.js';
import { runStar } from '../../src/star/runner.js';
import { memoryFederation } from '../helpers/memory-federation.js';

const ROUNDS = 6;
const NODES = ['x', 'y', 'agg'];

/** Each round every analyzer adds a value that depends on its node, the round and its own running state. */
function counting(hooks: { onAnalyze?: (node: string, round: number) => Promise<void>; onAggregate?: (round: number) => Promise<void> } = {}) {
  const kept = new Map<string, number>();
  const resumed: string[] = [];
  const analysis: StarAnalysis<{ v: number }, { total: number; round: number }> = {
    async analyze({ sdk, round, global }) {
      await hooks.onAnalyze?.(sdk.nodeId, round);
      // state kept between rounds (rebuilt by resume after a restart)
      const before = kept.get(sdk.nodeId) ?? 0;
      const v = (sdk.nodeId === 'x' ? 3 : 5) * (round + 1) + before + (global?.total ?? 0) % 7;
      kept.set(sdk.nodeId, before + round);
      return { v };
    },
    resume({ sdk, round }) {
      resumed.push(`${sdk.nodeId}@${round}`);
      let before = 0;
      for (let r = 0; r < round; r++) before += r;
      kept.set(sdk.nodeId, before);
    },
    async aggregate(results, { round, previous }) {
      await hooks.onAggregate?.(round);
      return { total: (previous?.total ?? 0) + results.reduce((t, r) => t + r.value.v, 0), round };
    },
    converged: (current) => current.round === ROUNDS - 1,
    maxRounds: ROUNDS,
  };
  return { analysis, resumed };
}

const federation = () => memoryFederation(NODES, 'resume-');

const opts = { timeoutMs: 20_000, lossAfterMs: 20_000 };

/**
 * Runs x and the aggregator to the end while y, once `stopped`, is dropped (closed) and connected
 * again with a fresh analysis object; checks every node ends with `expected`.
 */
async function stopAndRestartY(
  f: Awaited<ReturnType<typeof federation>>,
  nodes: { x: FlameSDK; y: FlameSDK; agg: FlameSDK },
  first: ReturnType<typeof counting>,
  stopped: Promise<void>,
  expected: unknown,
) {
  const done = Promise.all([runStar(nodes.x, first.analysis, opts), runStar(nodes.agg, first.analysis, opts)]);
  void runStar(nodes.y, first.analysis, opts);
  await stopped;
  await nodes.y.close();
  const second = counting();
  const oy = await runStar(await f.connect('y'), second.analysis, opts);
  const [ox, oagg] = await done;
  expect(oagg.result).toEqual(expected);
  expect([ox.result, oy.result]).toEqual([expected, expected]);
  return { second, oy };
}

async function undisturbed(): Promise<{ total: number; round: number }> {
  const f = await federation();
  try {
    const { analysis } = counting();
    const sdks = await Promise.all(NODES.map((n) => f.connect(n)));
    const outcomes = await Promise.all(sdks.map((s) => runStar(s, analysis, opts)));
    return outcomes[2].result as { total: number; round: number };
  } finally {
    await f.cleanup();
  }
}


/** A promise and the function that resolves it: a test's "this node stopped here" signal. */
function signal(): { stop: () => void; stopped: Promise<void> } {
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  return { stop, stopped };
}
test('an aggregator stopped after round 2 and started again finishes with the undisturbed result', async () => {
  const expected = await undisturbed();
  const f = await federation();
  try {
    const { stop, stopped } = signal();
    const first = counting({
      onAggregate: async (round) => {
        if (round === 3) {
          stop();
          await new Promise(() => undefined); // this aggregator never finishes round 3: it is dropped here
        }
      },
    });
    const [x, y, agg] = await Promise.all(NODES.map((n) => f.connect(n)));
    const analyzers = Promise.all([runStar(x, first.analysis, opts), runStar(y, first.analysis, opts)]);
    void runStar(agg, first.analysis, opts);
    await stopped;
    await agg.close();
    // The same aggregator, started again: it resumes after round 2.
    const again = await f.connect('agg');
    const outcome = await runStar(again, counting().analysis, opts);
    expect(outcome.result).toEqual(expected);
    expect(outcome.resumed).toBe(true);
    const [ox, oy] = await analyzers;
    expect([ox.result, oy.result]).toEqual([expected, expected]);
  } finally {
    await f.cleanup();
  }
}, 60_000);

test('an analyzer stopped in round 3 and started again rebuilds its state and the result is the undisturbed one', async () => {
  const expected = await undisturbed();
  const f = await federation();
  try {
    const { stop, stopped } = signal();
    const first = counting({
      onAnalyze: async (node, round) => {
        if (node === 'y' && round === 3) {
          stop();
          await new Promise(() => undefined); // y took round 3 and is dropped before it answers
        }
      },
    });
    const [x, y, agg] = await Promise.all(NODES.map((n) => f.connect(n)));
    const { second, oy } = await stopAndRestartY(f, { x, y, agg }, first, stopped, expected);
    // y found round 3 in its kept inbox (it had taken it before it stopped) and rebuilt its state first.
    expect(second.resumed).toEqual(['y@3']);
    expect(oy.resumed).toBe(true);
  } finally {
    await f.cleanup();
  }
}, 60_000);

test('an analyzer stopped after it checkpointed its answer but before it sent it sends the answer when started again', async () => {
  const expected = await undisturbed();
  const f = await federation();
  try {
    const first = counting();
    const [x, y, agg] = await Promise.all(NODES.map((n) => f.connect(n)));
    const { stop, stopped } = signal();
    // y dies between saving its round-3 checkpoint and sending the answer (the send never happens).
    const send = y.sendIntermediateResult.bind(y);
    y.sendIntermediateResult = (async (to: string, value: never, o?: never) => {
      if ((value as { round?: number }).round === 3) {
        stop();
        return new Promise<string>(() => undefined);
      }
      return send(to, value, o);
    }) as typeof y.sendIntermediateResult;
    const { second } = await stopAndRestartY(f, { x, y, agg }, first, stopped, expected);
    // The kept round-3 answer went out as it was (not computed again); y rebuilt its state for round 4.
    expect(second.resumed).toEqual(['y@4']);
  } finally {
    await f.cleanup();
  }
}, 60_000);

test('an analyzer that closes (a pod stopped with SIGTERM) and is started again within the loss window is not lost', async () => {
  const nodes = ['x', 'y', 'z', 'agg'];
  const f = await memoryFederation(nodes, 'resume-closed-');
  const undisturbedFed = await memoryFederation(nodes, 'resume-closed-ref-');
  try {
    const ref = counting();
    const refRuns = await Promise.all((await Promise.all(nodes.map((n) => undisturbedFed.connect(n)))).map((s) => runStar(s, ref.analysis, opts)));
    const expected = refRuns[refRuns.length - 1].result;
    const { stop, stopped } = signal();
    const first = counting({
      onAnalyze: async (node, round) => {
        if (node === 'y' && round === 2) {
          stop();
          await new Promise(() => undefined);
        }
      },
    });
    const sdks = await Promise.all(nodes.map((n) => f.connect(n)));
    const done = Promise.all([0, 2, 3].map((i) => runStar(sdks[i], first.analysis, opts)));
    void runStar(sdks[1], first.analysis, opts);
    await stopped;
    await sdks[1].close(); // says goodbye: its participant record is marked closed
    await new Promise((r) => setTimeout(r, 500)); // back well within the loss window (opts.lossAfterMs)
    const oy = await runStar(await f.connect('y'), counting().analysis, opts);
    const outcomes = await done;
    expect(outcomes[2].result).toEqual(expected);
    expect(oy.result).toEqual(expected);
    expect(outcomes[2].excluded).toEqual([]);
  } finally {
    await Promise.all([f.cleanup(), undisturbedFed.cleanup()]);
  }
}, 60_000);
