/**
 * Phased analyses: a star analysis written as a list of phases, each a node-side `local` step and an
 * aggregator-side `merge` step (as Flower's Strategy pairs configure and aggregate per step). The
 * helper keeps the bookkeeping every such analysis would otherwise write again: which phase and step
 * the nodes run next (named in the global), phases that repeat or are skipped, the state each node
 * keeps between rounds, its rebuild after a restart, and which phases may lose a node.
 */
import type { FlameValue } from '../codec/index.js';
import { BadRequestError } from '../errors.js';
import type { FlameSDK } from '../sdk.js';
import type { AggregateContext, AnalyzeContext, ExcludedNode, FinalInfo, NodeResult, StarAnalysis } from './analysis.js';

/** The fields {@link phased} keeps in every global: the phase the nodes run next, and its step when it repeats. */
export type PhaseMark = {
  /** Name of the phase the nodes run next; the `doneName` once the last phase has merged. */
  phase: string;
  /** Step within a phase that runs for more than one step (0-based); absent otherwise. */
  step?: number;
};

/** What a phase's node-side steps see. */
export interface PhaseNodeContext<S, G> {
  /** This node's SDK. */
  sdk: FlameSDK;
  /** Round of the run. */
  round: number;
  /** Step within the phase (0 for a phase of one step). */
  step: number;
  /** The global the round was started with. */
  global: G;
  /** What this node keeps between rounds (made by {@link PhasedSpec.init}). */
  state: S;
}

/** What a phase's merge sees. */
export interface PhaseMergeContext<G> {
  /** The aggregator's SDK. */
  sdk: FlameSDK;
  /** Round of the run. */
  round: number;
  /** Step within the phase. */
  step: number;
  /** Whether this is the phase's last step. */
  last: boolean;
  /** The global the round was started with. */
  previous: G;
  /** Analyzers left out of the run so far. */
  excluded: ExcludedNode[];
}

/** One phase after the opening one. `P` is what a node sends for it. */
export interface Phase<S, G extends PhaseMark, P extends FlameValue = FlameValue> {
  /** Its name in the global's `phase`. */
  name: string;
  /**
   * How many steps (rounds) the phase runs; 0 skips it (default 1). Asked with the global the phase
   * would start with, and again on a resume with a later global: derive it from the options or from
   * what the global settled before the phase.
   */
  steps?(global: G): number;
  /**
   * Node side: prepare the state before the phase's first step on this node. A restarted node runs
   * the `enter` of every phase it had gone through again, so it rebuilds what they left in its state.
   */
  enter?(ctx: PhaseNodeContext<S, G>): Promise<void> | void;
  /** Node side: this node's partial for the step. */
  local(ctx: PhaseNodeContext<S, G>): Promise<P> | P;
  /** Aggregator side: the next global from the nodes' partials (the helper sets `phase` and `step`). */
  merge(partials: NodeResult<P>[], ctx: PhaseMergeContext<G>): Promise<G> | G;
  /** Whether a round of this phase may close without some nodes (quorum); default false. */
  tolerates?: boolean;
}

/** The opening phase: it runs in round 0, with no global, and makes the first one. */
export interface OpeningPhase<S, G, P extends FlameValue = FlameValue> {
  /** Its name (for messages). */
  name: string;
  /** Node side: this node's partial, from the state {@link PhasedSpec.init} made. */
  local(ctx: { sdk: FlameSDK; state: S }): Promise<P> | P;
  /** Aggregator side: the first global. */
  merge(partials: NodeResult<P>[], ctx: AggregateContext<G>): Promise<G> | G;
  /** Whether round 0 may close without some nodes; default false. */
  tolerates?: boolean;
}

/** What {@link phased} builds a StarAnalysis from. */
export interface PhasedSpec<S, G extends PhaseMark, F extends FlameValue = G>
  extends Pick<StarAnalysis<FlameValue, G, F>, 'maxRounds' | 'noiseFields' | 'disclosureField'> {
  /** The value stored on the hub as the final result: {@link StarAnalysis.submit}. */
  submit?(final: G): FlameValue;
  /** Node side: the state a node keeps between rounds, from its own data (before round 0, and on a resume). */
  init(ctx: AnalyzeContext<G>): Promise<S> | S;
  /** The phase of round 0. */
  open: OpeningPhase<S, G>;
  /** The phases after it, in order. A node's state is dropped after its last partial (the last phase's last step). */
  phases: readonly Phase<S, G>[];
  /** The global's `phase` after the last phase merged: the run has converged (default `done`). */
  doneName?: string;
  /** Per-node view of each round's global: {@link StarAnalysis.globalFor}. */
  globalFor?(global: G, nodeId: string): G;
  /** What each analyzer receives at the end: {@link StarAnalysis.finalFor}. */
  finalFor?(result: G, nodeId: string, info: FinalInfo): F;
}

/** Builds the StarAnalysis that runs `spec`'s phases in order. Keeps per-node state: use it for one run. */
export function phased<S, G extends PhaseMark, L extends FlameValue = FlameValue, F extends FlameValue = G>(spec: PhasedSpec<S, G, F>): StarAnalysis<L, G, F> {
  const doneName = spec.doneName ?? 'done';
  const { phases } = spec;
  if (new Set([spec.open.name, ...phases.map((p) => p.name), doneName]).size !== phases.length + 2) throw new BadRequestError('phased: phase names must be unique');
  /** Per node id (the simulator runs every node in one process): its state and the phase it has entered. */
  const nodes = new Map<string, { state: S; entered?: string }>();
  const stepsOf = (p: Phase<S, G>, g: G): number => p.steps?.(g) ?? 1;

  const phaseOf = (g: G): { phase: Phase<S, G>; index: number } => {
    const index = phases.findIndex((p) => p.name === g.phase);
    if (index < 0) throw new BadRequestError(`phased: unexpected phase "${g.phase}"`);
    return { phase: phases[index], index };
  };

  /** `g` pointed at the first phase from `from` on that runs any step, or at the end. */
  const moveTo = (g: G, from: number): G => {
    const next = { ...g };
    delete next.step;
    for (let k = from; k < phases.length; k++) {
      const steps = stepsOf(phases[k], g);
      if (steps > 0) return { ...next, phase: phases[k].name, ...(steps > 1 ? { step: 0 } : {}) };
    }
    return { ...next, phase: doneName };
  };

  const nodeOf = (sdk: FlameSDK, phase: string): { state: S; entered?: string } => {
    const n = nodes.get(sdk.nodeId);
    if (!n) throw new BadRequestError(`node "${sdk.nodeId}" has no state for phase "${phase}" (did it miss the ${spec.open.name} round?)`);
    return n;
  };

  return {
    async analyze({ sdk, round, global }): Promise<L> {
      if (!global) {
        const state = await spec.init({ sdk, round, global });
        nodes.set(sdk.nodeId, { state });
        return (await spec.open.local({ sdk, state })) as L;
      }
      const { phase, index } = phaseOf(global);
      const node = nodeOf(sdk, phase.name);
      const ctx: PhaseNodeContext<S, G> = { sdk, round, step: global.step ?? 0, global, state: node.state };
      if (node.entered !== phase.name) {
        await phase.enter?.(ctx);
        node.entered = phase.name;
      }
      const partial = await phase.local(ctx);
      if (index === phases.length - 1 && ctx.step + 1 >= stepsOf(phase, global)) nodes.delete(sdk.nodeId);
      return partial as L;
    },

    async aggregate(results, { sdk, round, previous, excluded }): Promise<G> {
      if (!previous) return moveTo(await spec.open.merge(results, { sdk, round, previous, excluded }), 0);
      const { phase, index } = phaseOf(previous);
      const step = previous.step ?? 0;
      const steps = stepsOf(phase, previous);
      const last = step + 1 >= steps;
      const merged = await phase.merge(results, { sdk, round, step, last, previous, excluded });
      return last ? moveTo(merged, index + 1) : { ...merged, phase: phase.name, step: step + 1 };
    },

    converged: (current) => current.phase === doneName,

    // Rebuild a restarted node's state: its data, then every phase it had gone through, entered again.
    async resume({ sdk, round, global }): Promise<void> {
      if (!global || nodes.has(sdk.nodeId)) return;
      const state = await spec.init({ sdk, round, global });
      nodes.set(sdk.nodeId, { state });
      if (global.phase === doneName) return;
      const { index } = phaseOf(global);
      for (const p of phases.slice(0, index)) {
        if (stepsOf(p, global) > 0) await p.enter?.({ sdk, round, step: 0, global, state });
      }
    },

    tolerates: ({ global }) => (global ? global.phase !== doneName && phaseOf(global).phase.tolerates === true : spec.open.tolerates === true),

    ...(spec.maxRounds !== undefined ? { maxRounds: spec.maxRounds } : {}),
    ...(spec.globalFor ? { globalFor: spec.globalFor.bind(spec) } : {}),
    ...(spec.finalFor ? { finalFor: spec.finalFor.bind(spec) } : {}),
    ...(spec.noiseFields ? { noiseFields: spec.noiseFields } : {}),
    ...(spec.submit ? { submit: spec.submit.bind(spec) } : {}),
    ...(spec.disclosureField ? { disclosureField: spec.disclosureField } : {}),
  };
}
