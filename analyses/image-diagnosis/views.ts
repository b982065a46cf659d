/**
 * What each hospital receives of the diagnosis (the runner's `globalFor` / `finalFor`): every round
 * an analyzer gets the round's global statistics with only its own duplicate marks, and a mark that
 * points at another hospital's image names that hospital but not the image (its uuid stays with the
 * aggregator, which re-attaches it when it assembles the response). At the end an analyzer gets only
 * its own verdicts: the seed-000 response over its own files, with dataset mean/std pooled from its
 * own images. The merged response goes to the hub and the aggregator only.
 */
import type { DiagnosisAggregate, DiagnosisSetup } from './global.js';
import type { DuplicateMark } from './duplicates.js';
import { assembleResponse, type DiagnosisResult, type NodeTaskVerdicts } from './output.js';
import type { DiagnosisTaskName } from './request.js';
import { disclosureRecord, type NodeDisclosureReport } from 'flame-sdk';
import { BadRequestError } from 'flame-sdk';

/** A duplicate mark as its node receives it: `duplicate_of` only when the kept image is the node's own. */
export type NodeDuplicateMark = Omit<DuplicateMark, 'duplicate_of'> & { duplicate_of?: string };

/** The setup as node `nodeId` receives it: its own duplicate marks only, foreign kept images without their uuid. */
export function setupFor(setup: DiagnosisSetup, nodeId: string): DiagnosisSetup {
  const own = setup.duplicates[nodeId];
  if (!own) return { ...setup, duplicates: {} };
  const marks: Record<string, NodeDuplicateMark> = {};
  for (const [uuid, m] of Object.entries(own)) {
    if (m.duplicate_of_node === nodeId) marks[uuid] = m;
    else {
      const { duplicate_of: _hidden, ...rest } = m;
      void _hidden;
      marks[uuid] = rest;
    }
  }
  return { ...setup, duplicates: { [nodeId]: marks } };
}

/** A round's aggregate as node `nodeId` receives it. */
export function globalFor(g: DiagnosisAggregate, nodeId: string): DiagnosisAggregate {
  const { result: _result, ...rest } = g;
  void _result;
  return { ...rest, setup: setupFor(g.setup, nodeId) };
}

/**
 * The nodes' verdicts with every duplicate's `duplicate_of` taken from the aggregator's own marks
 * (nodes do not know, or may not say, which foreign image theirs duplicates). Copies; key order kept.
 */
export function withDuplicateOf(verdicts: readonly NodeTaskVerdicts[], setup: DiagnosisSetup): NodeTaskVerdicts[] {
  return verdicts.map((v) => {
    const task = v.tasks.duplicates;
    if (!task) return v;
    const marks = setup.duplicates[v.node] ?? {};
    const flagged = task.flagged.map((f) => {
      const uuid = v.files[f.index]?.uuid;
      const kept = uuid === undefined ? undefined : marks[uuid]?.duplicate_of;
      if (kept === undefined) throw new BadRequestError(`duplicates: node "${v.node}" flagged file ${f.index} that has no duplicate mark`);
      return { ...f, duplicate_of: kept };
    });
    return { ...v, tasks: { ...v.tasks, duplicates: { ...task, flagged } } };
  });
}

/** Node `verdicts.node`'s own part of the response: its files only, dataset mean/std from its own images. */
export function ownResponse(
  datasetUuid: string,
  tasks: readonly DiagnosisTaskName[],
  classes: readonly string[],
  verdicts: NodeTaskVerdicts,
  report: NodeDisclosureReport | undefined,
): DiagnosisResult {
  const own = assembleResponse(datasetUuid, tasks, classes, [verdicts]);
  const record = report ? disclosureRecord([{ node: verdicts.node, report }]) : undefined;
  return record ? { ...own, disclosure: record } : own;
}

/** The end message for node `nodeId`: its own setup view and its own part of the response. */
export function finalFor(g: DiagnosisAggregate, nodeId: string, parts: ReadonlyMap<string, DiagnosisResult>): DiagnosisAggregate {
  const own = parts.get(nodeId);
  return { phase: 'done', setup: setupFor(g.setup, nodeId), ...(own ? { result: own } : {}) };
}
