/**
 * The iterate phase: K folds × R rounds of federated averaging of a softmax head, one fold after
 * the other (step = fold × R + round); the first steps also carry the federated PCA's power
 * iterations. The maths of both protocols is src/ml's (cross-validation.ts, projection.ts); this
 * phase moves their tensors and keeps each fold's final head in the global.
 */
import { Tensor } from 'flame-sdk';
import { nodeFolds, localRoundUpdate, selectRows } from 'flame-sdk/ml';
import { DEFAULT_PCA, localCovarianceProduct, mergePowerStep } from 'flame-sdk/ml';
import { averageWeights, standardize, zeroWeights, type SoftmaxWeights } from 'flame-sdk/ml';
import type { Phase } from 'flame-sdk';
import { discloseUpdate } from '../disclosure.js';
import type { DiagnosisAggregate } from '../global.js';
import { f32, f64, settled, type DiagnosisContext, type NodeState } from './context.js';

/**
 * A head as it travels: `w` flat `dim × classes`.
 *
 * @property w The weight matrix.
 * @property b The bias, one per class.
 */
export type WeightTensors = { w: Tensor; b: Tensor };

/**
 * What a node sends in an iterate step: its fold update while training, its covariance product while the PCA runs.
 *
 * @property update The node's locally trained head and the number of images it trained on (`count`).
 * @property product The node's Σ x xᵀ Q over its standardised features x, for the current PCA basis Q.
 */
export type IteratePartial = { update?: WeightTensors & { count: number }; product?: Tensor };

/** Where in the phase a step is. */
export interface IterateStep {
  step: number;
  folds: number;
  rounds: number;
  /** Steps that train (folds × rounds) and that run the PCA. */
  trainSteps: number;
  pcaSteps: number;
}

/** Node side (the phase's `enter`, replayed on a resume): standardised features and the node's folds. */
export function standardizeAndFold(s: NodeState, g: DiagnosisAggregate, folds: number): void {
  const features = settled(s.features, 'features');
  const st = settled(g.standardizer, 'standardizer');
  s.features = { ...features, values: standardize(features.values, { mean: f32(st.mean), invStd: f32(st.invStd) }) };
  s.folds = nodeFolds(features.labels.length, folds, s.nodeIndex);
}

/** Node side: one step's partial. */
export async function iterateLocal(s: NodeState, g: DiagnosisAggregate, at: IterateStep): Promise<IteratePartial> {
  const { labels, values, dim } = settled(s.features, 'features');
  const classes = g.setup.classes.length;
  const out: IteratePartial = {};
  if (at.step < at.trainSteps) {
    const fold = Math.floor(at.step / at.rounds);
    const round = at.step % at.rounds;
    const folds = settled(s.folds, 'folds');
    if (s.train?.fold !== fold) s.train = { fold, ...selectRows(values, labels, dim, (i) => folds[i] !== fold) };
    const weights: SoftmaxWeights = g.weights ? { dim, classes, w: f32(g.weights.w), b: f32(g.weights.b) } : zeroWeights(dim, classes);
    const u = await localRoundUpdate(weights, s.train, { round, rounds: at.rounds, nodeIndex: s.nodeIndex });
    out.update = discloseUpdate(s.control, { w: new Tensor('float32', [dim * classes], u.weights.w), b: new Tensor('float32', [classes], u.weights.b), count: u.count });
    if (at.step === at.trainSteps - 1) s.train = undefined;
  }
  if (at.step < at.pcaSteps && g.basis) {
    // Standardised features have mean zero over all nodes: the covariance is centred on 0.
    out.product = new Tensor('float64', [g.basis.data.length], localCovarianceProduct(values, dim, new Float64Array(dim), f64(g.basis)));
  }
  return out;
}

/**
 * Aggregator side: the averaged head of the step (kept as the fold's head after its last round),
 * and the next PCA basis, or its axes after the last power iteration.
 */
export function mergeIterate(partials: readonly IteratePartial[], prev: DiagnosisAggregate, at: IterateStep): DiagnosisAggregate {
  const { step } = at;
  const next: DiagnosisAggregate = { ...prev };
  if (step < at.trainSteps) {
    const classes = prev.setup.classes.length;
    const updates = partials.map((p) => settled(p.update, 'model update'));
    const avg = averageWeights(updates.map((u) => ({ weights: { dim: u.w.data.length / classes, classes, w: f32(u.w), b: f32(u.b) }, count: u.count })));
    const weights = { w: new Tensor('float32', [avg.w.length], avg.w), b: new Tensor('float32', [avg.b.length], avg.b) };
    if (step % at.rounds === at.rounds - 1) {
      next.foldWeights = [...(prev.foldWeights ?? []), weights];
      next.foldCounts = [...(prev.foldCounts ?? []), updates.reduce((a, u) => a + u.count, 0)];
      next.weights = null;
    } else next.weights = weights;
  }
  if (step < at.pcaSteps && prev.basis) {
    const basis = f64(prev.basis);
    const dim = basis.length / (DEFAULT_PCA.components + DEFAULT_PCA.oversample);
    const products = partials.map((p) => f64(settled(p.product, 'covariance product')));
    const merged = mergePowerStep(products, basis, { step, iterations: at.pcaSteps - 1, mean: new Float64Array(dim), count: prev.setup.count, components: DEFAULT_PCA.components });
    if ('basis' in merged) next.basis = new Tensor('float64', [merged.basis.length], merged.basis);
    else {
      next.pca = { mean: new Tensor('float64', [dim], merged.pca.mean), axes: new Tensor('float64', [merged.pca.axes.length], merged.pca.axes) };
      next.basis = null;
    }
  }
  return next;
}

/** The iterate phase: as many steps as the longer of training and PCA. */
export function iteratePhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, IteratePartial> {
  const at = (step: number): IterateStep => ({ step, folds: ctx.folds, rounds: ctx.rounds, trainSteps: ctx.trainSteps, pcaSteps: ctx.pcaSteps });
  const steps = Math.max(ctx.trainSteps, ctx.pcaSteps);
  return {
    name: 'iterate',
    steps: () => steps,
    enter: ({ state, global }) => standardizeAndFold(state, global, ctx.folds),
    local: ({ state, global, step }) => iterateLocal(state, global, at(step)),
    merge(partials, { sdk, previous, step, last }) {
      const next = mergeIterate(
        partials.map((p) => p.value),
        previous,
        at(step),
      );
      if (step < ctx.trainSteps) ctx.report(sdk, 'train', 0.35 + 0.5 * ((step + 1) / steps), 'mislabeled_images');
      else if (ctx.trainSteps === 0) ctx.report(sdk, 'pca', 0.35 + 0.5 * ((step + 1) / ctx.pcaSteps));
      if (last) delete next.weights;
      return next;
    },
  };
}
