/**
 * `flame demo` (what `npm start` runs): the federated image diagnosis over three simulated hospitals
 * holding the shipped Fashion-MNIST sample, on the embedded broker and storage. Prints what each task
 * found per node, scores it against the planted faults, and writes the result and an HTML report.
 * `flame demo --analysis mean` runs the small federated-mean example instead.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { federatedMean, SOURCE_ID } from '../../../analyses/federated-mean/index.js';
import { diagnose, type DiagnosisResult } from '../../../analyses/image-diagnosis/index.js';
import { BadRequestError } from '../../../src/errors.js';
import { checkResult } from '../../../src/evaluation/check.js';
import { parseReference, type Reference } from '../../../src/evaluation/reference.js';
import { packagePath } from '../../../src/package-root.js';
import { renderDiagnosisReport } from '../../../src/report/index.js';
import { simulate } from '../../../src/star/simulator.js';
import { formatTable, printResult } from '../output.js';

const NODES = ['node-a', 'node-b', 'node-c'];

/** Outliers per task and node, with precision/recall against the planted faults. */
function demoRows(result: DiagnosisResult, truth: Reference): Record<string, string | number>[] {
  const scores = new Map(checkResult(result, truth).rows.map((r) => [r.task, r]));
  const pct = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(2));
  return result.tasks.map((t) => {
    const perNode: Record<string, number> = Object.fromEntries(NODES.map((n) => [n, 0]));
    for (const files of Object.values(t.datasets.outliers.class_files)) {
      for (const f of Object.values(files)) perNode[f.node] = (perNode[f.node] ?? 0) + 1;
    }
    const s = scores.get(t.name);
    return { task: t.name, ...perNode, flagged: Object.values(perNode).reduce((a, b) => a + b, 0), planted: s?.faults ?? '-', precision: pct(s?.precision), recall: pct(s?.recall), f1: pct(s?.f1) };
  });
}

async function runDiagnosisDemo(data: string, out: string, json: boolean): Promise<void> {
  // Each hospital reads its own class-folder tree through the SDK's data API, as in production.
  const nodes = NODES.map((id) => ({
    id,
    dataSources: [{ id: 'images', type: 'folder' as const, path: path.join(data, id) }],
    data: { source: 'images' },
  }));
  if (!json) process.stdout.write(`Federated diagnosis of ${data}: ${NODES.length} hospitals + an aggregator, embedded broker and storage…\n`);
  let lastPhase = '';
  const result = await diagnose(
    { auto: true, dataset_uuid: 'fashion-mnist-sample' },
    {
      nodes,
      onProgress: (p) => {
        if (json || p.phase === lastPhase) return;
        lastPhase = p.phase;
        process.stderr.write(`  ${p.phase}…\n`);
      },
    },
  );
  await mkdir(out, { recursive: true });
  const resultPath = path.join(out, 'result.json');
  const reportPath = path.join(out, 'report.html');
  await writeFile(resultPath, JSON.stringify(result, null, 2));
  const truth = parseReference(JSON.parse(await readFile(path.join(data, 'truth.json'), 'utf8')), 'truth.json');
  // the report shows the same precision/recall against the planted faults as the table below
  const { html } = await renderDiagnosisReport(result, {
    title: 'Fashion-MNIST sample: federated diagnosis',
    nodeDirs: Object.fromEntries(NODES.map((id) => [id, path.join(data, id)])),
    reference: truth,
  });
  await writeFile(reportPath, html);
  const rows = demoRows(result, truth);
  if (json) return printResult({ rows, result: resultPath, report: reportPath }, true);
  process.stdout.write(`\n${formatTable(rows)}\n\n`);
  process.stdout.write(`(flagged images per node; precision/recall against the faults planted in ${path.join(data, 'truth.json')})\n`);
  const d = (result as { disclosure?: { min_count: Record<string, number>; suppressed_total: number } }).disclosure;
  if (d) {
    const min = [...new Set(Object.values(d.min_count))].join('/');
    process.stdout.write(`disclosure control: each hospital shares no count below ${min}; ${d.suppressed_total} values were suppressed or merged (FLAME_MIN_COUNT=1 turns it off)\n`);
  }
  process.stdout.write(`result: ${resultPath}\nreport: ${reportPath}  (open it in a browser)\n`);
}

async function runMeanDemo(json: boolean): Promise<void> {
  const data = packagePath('data', 'example');
  const nodes = NODES.map((id) => ({ id, dataSources: [{ id: SOURCE_ID, type: 'folder' as const, path: path.join(data, id) }] }));
  const { outcome, dir } = await simulate(federatedMean, { nodes, resultName: 'federated-mean' });
  const r = outcome.result;
  if (json) return printResult({ ...r, rounds: outcome.rounds, result_id: outcome.resultId, storage: dir }, true);
  process.stdout.write(`${formatTable(Object.entries(r.perNode).map(([node, values]) => ({ node, values })))}\n\n`);
  process.stdout.write(`pooled over ${r.count} values in ${outcome.rounds} rounds: mean ${r.mean.toFixed(3)}, std ${r.std?.toFixed(3)}\n`);
  process.stdout.write(`final result ${outcome.resultId} stored under ${dir}/hub\n`);
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('federated image diagnosis of the shipped Fashion-MNIST sample over 3 simulated hospitals (what npm start runs)')
    .option('--analysis <name>', 'diagnosis, or mean (the federated-mean example)', 'diagnosis')
    .option('--data <dir>', 'folder with node-a, node-b, node-c class-folder trees and truth.json (default: the shipped data/sample)')
    .option('--out <dir>', 'where result.json and report.html go', 'out')
    .action(async (opts: { analysis: string; data?: string; out: string }) => {
      const json = Boolean(program.opts().json);
      if (opts.analysis === 'mean') return runMeanDemo(json);
      if (opts.analysis !== 'diagnosis') throw new BadRequestError(`--analysis: expected "diagnosis" or "mean", got "${opts.analysis}"`);
      return runDiagnosisDemo(path.resolve(opts.data ?? packagePath('data', 'sample')), path.resolve(opts.out), json);
    });
}
