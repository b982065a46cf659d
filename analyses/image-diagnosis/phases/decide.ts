/**
 * The decide phase: every node judges its own images against the global statistics and sends its
 * files with their verdicts (and what its disclosure control suppressed over the run); the
 * aggregator assembles the seed-000 response, keeps each node's own part for its end message, and
 * with `modelResult` stores the trained classifier on the hub first (model.ts).
 */
import { Readable } from 'node:stream';
import { BadRequestError } from 'flame-sdk';
import { mergeSums, toChannelSums, type ChannelSums } from 'flame-sdk/images';
import { findLabelIssues, type FilterBy, type RankBy } from 'flame-sdk/ml';
import { projectFeatures, type Pca } from 'flame-sdk/ml';
import type { FlameSDK } from 'flame-sdk';
import { disclosureRecord, type NodeDisclosureReport } from 'flame-sdk';
import type { ExcludedNode, NodeResult } from 'flame-sdk';
import type { Phase } from 'flame-sdk';
import { aspectRatioVerdict, checkValues, grayscaleVerdict, lowInformationVerdict } from '../checks.js';
import { blurVerdict, lightingVerdict, signalValues, sizeVerdict, type QualityVerdict } from '../distribution.js';
import type { DiagnosisAggregate } from '../global.js';
import { diagnosisConvSpec, mirrors, MODEL_RESULT_NAME, trainedModel } from '../model.js';
import { assembleResponse, type NodeFile, type NodeTaskVerdicts } from '../output.js';
import type { DiagnosisTaskName } from '../request.js';
import { ownResponse, withDuplicateOf } from '../views.js';
import { thresholdsOf } from './cl-thresholds.js';
import { cutoffsOf } from './cl-cutoffs.js';
import { f32, f64, probabilitiesOf, settled, settleProbabilities, type DiagnosisContext, type NodeState } from './context.js';
import { logScore, nodeOutlierScores } from './outliers.js';

/** What a node sends in the decide round. */
export type DecidePartial = {
  /** The node's files and every task's verdict on them. */
  verdicts: NodeTaskVerdicts;
  /** What the node's disclosure control suppressed over the run. */
  disclosure: NodeDisclosureReport;
};

type Verdict = (QualityVerdict & { current_class?: string; extra?: Record<string, unknown> }) | null;

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/** Node side: the node's files and its verdicts on them for every task. */
export function decideLocal(s: NodeState, g: DiagnosisAggregate, ctx: { cl: boolean; filterBy: FilterBy; rankBy: RankBy }): DecidePartial {
  const { setup } = g;
  const classes = setup.classes;
  const images = s.data.images;
  let projection: Float32Array | undefined;
  if (g.pca && s.features) {
    const pca: Pca = { dim: s.features.dim, mean: f64(g.pca.mean), axes: f64(g.pca.axes), components: 2, variances: [] };
    projection = projectFeatures(s.features.values, pca);
  }
  const probs = ctx.cl ? s.probs : undefined;
  const files: NodeFile[] = images.map((im, i): NodeFile => ({
    uuid: im.uuid,
    path: im.path,
    original_class: im.label,
    width: im.meta.width,
    height: im.meta.height,
    channels: im.meta.channels,
    mean: im.meta.mean,
    std_dev: im.meta.std_dev,
    projections: projection ? { '2d': [round6(projection[2 * i]), round6(projection[2 * i + 1])] } : ({} as Record<string, number[]>),
    confidence_vectors: probs ? [Array.from(probs.subarray(i * classes.length, (i + 1) * classes.length), round6)] : [],
  }));
  const verdicts: NodeTaskVerdicts = { node: s.nodeId, files, skipped: s.data.skipped, tasks: {} };
  const judge = (name: DiagnosisTaskName, verdict: (i: number) => Verdict): void => {
    const flagged: NodeTaskVerdicts['tasks'][string]['flagged'] = [];
    const outlierSums: ChannelSums[] = [];
    const inlierSums: ChannelSums[] = [];
    images.forEach((im, i) => {
      const v = verdict(i);
      if (v && v.issue) {
        flagged.push({ index: i, issue: v.issue, score: round6(v.score), ...(v.current_class ? { current_class: v.current_class } : {}), ...(v.extra ?? {}) });
        outlierSums.push(toChannelSums(im.stats));
      } else inlierSums.push(toChannelSums(im.stats));
    });
    verdicts.tasks[name] = { flagged, outlierSums: mergeSums(outlierSums), inlierSums: mergeSums(inlierSums) };
  };
  for (const name of setup.tasks) {
    if (name === 'lighting_conditions') judge(name, (i) => lightingVerdict(signalValues(images[i].signals, images[i].meta), setup.cutoffs));
    else if (name === 'blurry') judge(name, (i) => blurVerdict(signalValues(images[i].signals, images[i].meta), setup.cutoffs));
    else if (name === 'odd_size') judge(name, (i) => sizeVerdict(signalValues(images[i].signals, images[i].meta), setup.cutoffs));
    else if (name === 'grayscale') judge(name, (i) => grayscaleVerdict(checkValues(images[i].signals), settled(setup.checks, 'check cut-offs')));
    else if (name === 'low_information') judge(name, (i) => lowInformationVerdict(checkValues(images[i].signals), settled(setup.checks, 'check cut-offs')));
    else if (name === 'odd_aspect_ratio') judge(name, (i) => aspectRatioVerdict(images[i].meta));
    else if (name === 'outliers') {
      const scores = nodeOutlierScores(s, g);
      const cutoff = settled(g.outlierCutoff, 'outlier cut-off');
      judge(name, (i) => ({ issue: logScore(scores[i]) > cutoff ? 'out_of_distribution' : null, score: scores[i] }));
    } else if (name === 'duplicates') {
      const marks = setup.duplicates[s.nodeId] ?? {};
      judge(name, (i) => {
        const m = marks[images[i].uuid];
        // A foreign kept image's uuid is not the node's to know: the aggregator fills it in (views.ts).
        return m ? { issue: m.issue, score: m.distance, extra: { duplicate_of: m.duplicate_of ?? null, duplicate_of_node: m.duplicate_of_node } } : null;
      });
    } else if (name === 'mislabeled_images') {
      const p = probabilitiesOf(s);
      const cutoffs = cutoffsOf(g);
      const issues = findLabelIssues(p, settled(s.features, 'features').labels, settled(g.joint, 'confident joint'), {
        filterBy: ctx.filterBy,
        rankBy: ctx.rankBy,
        thresholds: thresholdsOf(g),
        ...(cutoffs ? { cutoffs } : {}),
      });
      judge(name, (i) => (issues.isIssue[i] ? { issue: 'mislabeled', score: issues.selfConfidence[i], current_class: classes[issues.suggestedLabel[i]] } : null));
    }
  }
  return { verdicts, disclosure: s.control.report() };
}

/** Builds the trained classifier (model.ts) and submits it to the hub; returns its result id. */
async function storeModel(prev: DiagnosisAggregate, sdk: FlameSDK, mirror: boolean): Promise<string> {
  const { setup, standardizer, foldWeights, foldCounts } = prev;
  const classes = setup.classes.length;
  if (!standardizer || !foldWeights?.length || !foldCounts || foldCounts.length !== foldWeights.length) {
    throw new BadRequestError('model export (modelResult, --export-model): the run has no trained fold heads to export');
  }
  const dim = standardizer.mean.data.length;
  const model = trainedModel(
    diagnosisConvSpec(setup.shape, setup.mean, setup.std_dev, setup.filters),
    { mean: f32(standardizer.mean), invStd: f32(standardizer.invStd) },
    foldWeights.map((fw, k) => ({ weights: { dim, classes, w: f32(fw.w), b: f32(fw.b) }, count: foldCounts[k] })),
    setup.classes,
    { mirror },
  );
  return sdk.results.sendResultStream(Readable.from([Buffer.from(model.bytes)]), { name: MODEL_RESULT_NAME, contentType: 'application/onnx' });
}

/** Aggregator side: the merged response (the final global), and each node's own part into `ctx.ownParts`. */
export async function mergeDecide(
  partials: readonly NodeResult<DecidePartial>[],
  prev: DiagnosisAggregate,
  sdk: FlameSDK,
  excluded: readonly ExcludedNode[],
  ctx: DiagnosisContext,
): Promise<DiagnosisAggregate> {
  const { options } = ctx;
  const { tasks, classes } = prev.setup;
  const datasetUuid = options.datasetUuid ?? '';
  const reports = partials.map((r) => ({ node: r.nodeId, report: r.value.disclosure ?? { min_count: r.disclosure?.minCount ?? 1, suppressed: {} } }));
  const verdicts = partials.map((r) => r.value.verdicts);
  const result = assembleResponse(datasetUuid, tasks, classes, withDuplicateOf(verdicts, prev.setup));
  if (options.modelResult) {
    result.model_result_id = await storeModel(prev, sdk, mirrors(options));
    result.model_labels = [...classes];
  }
  const record = disclosureRecord(reports);
  if (record) result.disclosure = record;
  // Hospitals the run went on without (quorum): their images are not in the result.
  if (excluded.length > 0) result.excluded_nodes = excluded.map((e) => ({ node: e.nodeId, round: e.round, reason: e.reason }));
  ctx.ownParts.clear();
  verdicts.forEach((v, k) => ctx.ownParts.set(partials[k].nodeId, ownResponse(datasetUuid, tasks, classes, v, reports[k].report)));
  for (const t of result.tasks) options.onTaskResult?.(t);
  return { phase: prev.phase, setup: prev.setup, result };
}

/** The decide phase, the last: its merge is the run's result. */
export function decidePhase(ctx: DiagnosisContext): Phase<NodeState, DiagnosisAggregate, DecidePartial> {
  const choice = { cl: ctx.need.cl, filterBy: ctx.filterBy, rankBy: ctx.rankBy };
  return {
    name: 'decide',
    local: async ({ state, global }) => {
      if (choice.cl) await settleProbabilities(state, global);
      return decideLocal(state, global, choice);
    },
    async merge(partials, { sdk, previous, excluded }) {
      const next = await mergeDecide(partials, previous, sdk, excluded, ctx);
      ctx.report(sdk, 'done', 1);
      return next;
    },
  };
}
