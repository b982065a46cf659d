/**
 * The phased helper on a small real analysis: the pooled mean, then the pooled variance around it,
 * then three steps of a repeated phase, run through the simulator and through runStar with an
 * analyzer that stops and is started again.
 */
import { simulate } from '../../src/star/simulator.js';
import { runStar } from '../../src/star/runner.js';
import { phased, type OpeningPhase, type Phase, type PhaseMark } from '../../src/star/phased.js';
import { memoryFederation } from '../helpers/memory-federation.js';

const DATA: Record<string, number[]> = { x: [1, 2, 3, 4], y: [10, 20], z: [5, 5, 5] };

type Global = PhaseMark & { mean?: number; count?: number; variance?: number; total?: number; perNode?: Record<string, number> };
type State = { values: number[]; centred?: number[] };

/** The analysis, with a log of what ran where (`node:what`). */
function spreadAnalysis(hooks: { onStep?: (node: string, step: number) => Promise<void> } = {}) {
  const log: string[] = [];
  const seen: Array<{ node: string; perNode: string[] }> = [];
  const sum: OpeningPhase<State, Global, { sum: number; count: number }> = {
    name: 'sum',
    local: ({ state }) => ({ sum: state.values.reduce((a, v) => a + v, 0), count: state.values.length }),
    merge: (partials) => {
      const count = partials.reduce((a, p) => a + p.value.count, 0);
      const total = partials.reduce((a, p) => a + p.value.sum, 0);
      return { phase: 'sum', mean: total / count, count, perNode: Object.fromEntries(partials.map((p) => [p.nodeId, p.value.count])) };
    },
    tolerates: true,
  };
  const never: Phase<State, Global> = {
    name: 'never',
    steps: () => 0,
    local: () => {
      throw new Error('a phase of 0 steps ran');
    },
    merge: () => {
      throw new Error('a phase of 0 steps merged');
    },
  };
  const spread: Phase<State, Global, { ss: number }> = {
    name: 'spread',
    enter: ({ sdk, state, global }) => {
      log.push(`${sdk.nodeId}:enter spread`);
      state.centred = state.values.map((v) => v - (global.mean ?? 0));
    },
    local: ({ sdk, state, global }) => {
      seen.push({ node: sdk.nodeId, perNode: Object.keys(global.perNode ?? {}) });
      return { ss: (state.centred ?? []).reduce((a, v) => a + v * v, 0) };
    },
    merge: (partials, { previous }) => ({ ...previous, variance: partials.reduce((a, p) => a + p.value.ss, 0) / (previous.count ?? 1) }),
    tolerates: true,
  };
  const repeat: Phase<State, Global, { v: number }> = {
    name: 'repeat',
    steps: () => 3,
    local: async ({ sdk, state, step }) => {
      await hooks.onStep?.(sdk.nodeId, step);
      log.push(`${sdk.nodeId}:repeat ${step}`);
      return { v: (step + 1) * (state.centred ?? []).reduce((a, v) => a + Math.abs(v), 0) };
    },
    // 1000 marks that the merge knew its last step.
    merge: (partials, { previous, last }) => ({ ...previous, total: (previous.total ?? 0) + partials.reduce((a, p) => a + p.value.v, 0) + (last ? 1000 : 0) }),
  };
  const analysis = phased<State, Global>({
    init: ({ sdk }) => {
      log.push(`${sdk.nodeId}:init`);
      return { values: DATA[sdk.nodeId] ?? [] };
    },
    open: sum,
    phases: [never, spread, repeat],
    maxRounds: 5,
    // Each node sees only its own count.
    globalFor: (g, nodeId) => ({ ...g, perNode: g.perNode && nodeId in g.perNode ? { [nodeId]: g.perNode[nodeId] } : {} }),
  });
  return { analysis, log, seen };
}

/** The pooled statistics over the data of `nodes`. */
function pooled(nodes: string[]) {
  const all = nodes.flatMap((n) => DATA[n]);
  const mean = all.reduce((a, v) => a + v, 0) / all.length;
  const variance = all.reduce((a, v) => a + (v - mean) ** 2, 0) / all.length;
  const absDev = all.reduce((a, v) => a + Math.abs(v - mean), 0);
  return { mean, variance, total: (1 + 2 + 3) * absDev + 1000 };
}

test('phases run in order, a repeated phase once per step, a phase of 0 steps never, and the end global is done', async () => {
  const { analysis, log, seen } = spreadAnalysis();
  const { outcome } = await simulate(analysis, { nodes: Object.keys(DATA).map((id) => ({ id })) });
  const { mean, variance, total } = pooled(Object.keys(DATA));
  expect(outcome.rounds).toBe(5);
  expect(outcome.result.phase).toBe('done');
  expect(outcome.result.step).toBeUndefined();
  expect(outcome.result.mean).toBeCloseTo(mean, 12);
  expect(outcome.result.variance).toBeCloseTo(variance, 12);
  expect(outcome.result.total).toBeCloseTo(total, 9);
  // Per node: its state made once, each phase entered once, the repeated phase's steps in order.
  for (const node of Object.keys(DATA)) {
    expect(log.filter((l) => l.startsWith(`${node}:`))).toEqual([`${node}:init`, `${node}:enter spread`, `${node}:repeat 0`, `${node}:repeat 1`, `${node}:repeat 2`]);
  }
  // globalFor is the view each node gets.
  expect(seen.map((s) => s.perNode).sort()).toEqual([['x'], ['y'], ['z']]);
});

test('the global names the phase and, in a repeated phase, the step the nodes run next', async () => {
  const { analysis } = spreadAnalysis();
  const globals: Array<{ phase: string; step?: number }> = [];
  const aggregate = analysis.aggregate.bind(analysis);
  analysis.aggregate = async (results, ctx) => {
    const g = await aggregate(results, ctx);
    globals.push({ phase: g.phase, ...(g.step !== undefined ? { step: g.step } : {}) });
    return g;
  };
  await simulate(analysis, { nodes: Object.keys(DATA).map((id) => ({ id })) });
  expect(globals).toEqual([{ phase: 'spread' }, { phase: 'repeat', step: 0 }, { phase: 'repeat', step: 1 }, { phase: 'repeat', step: 2 }, { phase: 'done' }]);
});

test('tolerates follows the phase of the round; names must be unique', () => {
  const { analysis } = spreadAnalysis();
  const ask = (global: Global | undefined) => analysis.tolerates?.({ round: 0, global, missing: ['x'] });
  expect(ask(undefined)).toBe(true);
  expect(ask({ phase: 'spread' })).toBe(true);
  expect(ask({ phase: 'repeat', step: 1 })).toBe(false);
  expect(ask({ phase: 'done' })).toBe(false);
  const dup = () => phased({ init: () => ({}), open: { name: 'a', local: () => ({}), merge: () => ({ phase: 'a' }) }, phases: [{ name: 'a', local: () => ({}), merge: () => ({ phase: 'a' }) }] });
  expect(dup).toThrow(/phase names must be unique/);
});

test('an analyzer stopped in a repeated phase and started again rebuilds its state from init and the phases it had entered', async () => {
  const nodes = ['x', 'y', 'agg'];
  const f = await memoryFederation(nodes, 'phased-');
  const opts = { timeoutMs: 20_000, lossAfterMs: 20_000 };
  try {
    let stop: (() => void) | undefined;
    const stopped = new Promise<void>((r) => (stop = r));
    const first = spreadAnalysis({
      onStep: async (node, step) => {
        if (node === 'y' && step === 1) {
          stop?.();
          await new Promise(() => undefined); // y took step 1 of the repeated phase and is dropped before it answers
        }
      },
    });
    const [x, y, agg] = await Promise.all(nodes.map((n) => f.connect(n)));
    const done = Promise.all([runStar(x, first.analysis, opts), runStar(agg, first.analysis, opts)]);
    void runStar(y, first.analysis, opts);
    await stopped;
    await y.close();
    const second = spreadAnalysis();
    const oy = await runStar(await f.connect('y'), second.analysis, opts);
    const [, oagg] = await done;
    expect(oy.resumed).toBe(true);
    // The restarted y made its state again and entered the spread phase again before step 1.
    expect(second.log).toEqual(['y:init', 'y:enter spread', 'y:repeat 1', 'y:repeat 2']);
    expect(oagg.result.total).toBeCloseTo(pooled(['x', 'y']).total, 9);
  } finally {
    await f.cleanup();
  }
}, 60_000);
