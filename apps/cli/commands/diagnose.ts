/**
 * `flame diagnose --request req.json [--out result.json]`: a seed-000 diagnosis request run on this
 * machine (one node holding the request's dataset) → the seed-000 response.
 * `flame simulate diagnose --node a=DIR ... [--tasks ...] [--out FILE]`: the federated diagnosis over
 * simulated nodes (one class-folder tree each) on the embedded adapters, with a summary table.
 * Progress: a bar on a TTY (stderr), plain lines otherwise, nothing with --json.
 * `--export-model FILE.onnx` (both): also write the trained mislabeled_images classifier and
 * `FILE.labels.txt` beside it, ready for `flame worker --model FILE.onnx --labels FILE.labels.txt`.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import {
  diagnose,
  DIAGNOSIS_TASKS,
  OPT_IN_DIAGNOSIS_TASKS,
  diagnosisRequestFromFolder,
  labelsPathFor,
  parseDiagnosisRequest,
  summaryRows,
  type DiagnoseOptions,
  type DiagnosisProgress,
  type DiagnosisResult,
} from '../../../analyses/image-diagnosis/index.js';
import type { FilterBy, RankBy } from '../../../src/ml/confident-learning.js';
import { BadRequestError } from '../../../src/errors.js';
import { intOption } from '../../../src/validation.js';
import { refusedThumbnailsLine, writeDiagnosisReport } from '../../../src/report/index.js';
import { addLimitOptions, commandLimits, type LimitOptions } from '../limit-options.js';
import { formatTable, printResult } from '../output.js';
import { namingRequestFile, readTextFile } from './read-json.js';

/**
 * Progress as a bar on a TTY (started at the first update, so a banner printed before stays above
 * it), plain lines otherwise: one when a phase starts and one per further 10 points, nothing when quiet.
 */
function progressReporter(quiet: boolean): { onProgress(p: DiagnosisProgress): void; stop(): void } {
  if (quiet) return { onProgress: () => undefined, stop: () => undefined };
  if (process.stderr.isTTY) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      onProgress: (p) => {
        if (!bar) {
          bar = new cliProgress.SingleBar({ format: 'diagnosis [{bar}] {percentage}% | {phase}', hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
          bar.start(100, 0, { phase: p.phase });
        }
        bar.update(Math.round(p.progress * 100), { phase: p.phase });
      },
      stop: () => {
        bar?.stop();
        bar = undefined;
      },
    };
  }
  let phase = '';
  let shown = -1;
  return {
    onProgress(p) {
      if (p.phase === 'load' && p.node !== 'aggregator') return;
      const percent = Math.round(p.progress * 100);
      if (p.phase === phase && percent < shown + 10) return;
      phase = p.phase;
      shown = percent;
      process.stderr.write(`${p.phase} ${percent}%\n`);
    },
    stop: () => undefined,
  };
}

async function output(result: DiagnosisResult, out: string | undefined, json: boolean, table: boolean): Promise<void> {
  if (out) await writeFile(out, JSON.stringify(result, null, 2));
  if (json && !out) return printResult(result, true);
  if (table && !json) {
    const rows = summaryRows(result).filter((r) => r.outliers > 0);
    process.stdout.write(rows.length ? `${formatTable(rows as unknown as Record<string, unknown>[])}\n` : 'no outliers found\n');
  }
  if (out && !json) process.stdout.write(`response written to ${out}\n`);
  if (!out && !json && !table) printResult(result, true);
  if (json && out) printResult({ out, tasks: result.tasks.map((t) => t.name) }, true);
}

function nodeSpec(value: string, previous: Array<{ id: string; dir: string }> = []): Array<{ id: string; dir: string }> {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new BadRequestError(`--node ${value}: expected NAME=DIR`);
  return [...previous, { id: value.slice(0, eq), dir: path.resolve(value.slice(eq + 1)) }];
}

interface CommonOpts extends LimitOptions {
  out?: string;
  classifier?: string;
  featureExtractor?: string;
  filterBy?: FilterBy;
  rankBy?: RankBy;
  folds?: number;
  augment?: 'hflip' | 'none';
  exportModel?: string;
  report?: string;
  /** `flame diagnose --root`: dataset folders the report's thumbnails may be read from. */
  root?: string[];
}

function common(o: CommonOpts): Pick<DiagnoseOptions, 'classifier' | 'featureExtractor' | 'filterBy' | 'rankBy' | 'folds' | 'augment' | 'exportModel' | 'limits'> {
  return {
    limits: commandLimits(o),
    ...(o.exportModel ? { exportModel: path.resolve(o.exportModel) } : {}),
    ...(o.classifier ? { classifier: path.resolve(o.classifier) } : {}),
    ...(o.featureExtractor ? { featureExtractor: path.resolve(o.featureExtractor) } : {}),
    ...(o.filterBy ? { filterBy: o.filterBy } : {}),
    ...(o.rankBy ? { rankBy: o.rankBy } : {}),
    ...(o.folds ? { folds: o.folds } : {}),
    ...(o.augment ? { augment: o.augment } : {}),
  };
}

function addCommonOptions(c: Command): Command {
  const withOptions = c
    .option('--out <file>', 'write the seed-000 response (JSON) here')
    .option('--classifier <onnx>', 'user ONNX classifier (N×C×H×W → N×classes) instead of the federated cross-validated heads')
    .option('--feature-extractor <onnx>', 'user ONNX feature extractor (N×C×H×W → N×D) instead of random convolutions')
    .option('--filter-by <how>', 'confident learning filter: auto (default), low_relative_confidence, both, prune_by_noise_rate, prune_by_class, confident_learning, predicted_neq_given')
    .option('--rank-by <score>', 'ranking for prune_by_class: self_confidence, normalized_margin')
    .option('--folds <k>', 'cross-validation folds', intOption('--folds', { min: 2 }))
    .option('--augment <how>', 'hflip (default): the heads also train on left-right mirrors; none where a mirror is another class')
    .option('--export-model <file.onnx>', 'also write the trained mislabeled_images classifier (ONNX) and <file>.labels.txt beside it')
    .option('--report <file.html>', 'also write the self-contained HTML report (projection, thumbnails, counts)');
  return addLimitOptions(withOptions, ['maxClasses', 'maxImagePixels']);
}

/**
 * Writes the HTML report when asked; `nodeDirs` tells where each simulated node's files are, and
 * with `--root` they are the only folders thumbnails are read from.
 */
async function writeReport(result: DiagnosisResult, o: CommonOpts, quiet: boolean, nodeDirs?: Record<string, string>): Promise<void> {
  if (!o.report) return;
  const summary = await writeDiagnosisReport(result, {
    out: o.report,
    title: `Diagnosis of ${result.dataset_uuid}`,
    ...(nodeDirs ? { nodeDirs } : {}),
    roots: o.root ?? [],
    limits: commandLimits(o),
  });
  if (quiet) return;
  process.stderr.write(`report written to ${summary.path} (${summary.images} images, ${summary.flagged} flagged)\n`);
  process.stderr.write(refusedThumbnailsLine('flame', summary, nodeDirs ? 'the --node folders' : 'pass --root DIR (the dataset folder, repeatable)'));
}

function collect(v: string, previous: string[] = []): string[] {
  return [...previous, v];
}

/** Tells where the exported model went (stderr, so stdout stays the response or the table). */
function reportModel(o: CommonOpts, quiet: boolean): void {
  if (!o.exportModel || quiet) return;
  const model = path.resolve(o.exportModel);
  process.stderr.write(`model written to ${model} (labels: ${labelsPathFor(model)})\n`);
}

/** Registers `flame diagnose` and `flame simulate diagnose`. */
export function registerDiagnose(program: Command): void {
  const json = (): boolean => Boolean(program.opts().json);
  addCommonOptions(
    program
      .command('diagnose')
      .description('run a seed-000 diagnosis request (its dataset paths on this machine) and print or write the response')
      .option('--request <file>', 'seed-000 diagnosis request (JSON)')
      .option('--folder <dir>', 'instead of --request: diagnose a folder of class sub-folders (the request is made from it, every task)')
      .option('--write-request <file>', 'with --folder: also write the request made (to edit and pass as --request)')
      .option('--root <dir>', 'with --report: a dataset folder thumbnails may be read from (repeatable); other files get a placeholder', collect),
  ).action(async (opts: CommonOpts & { request?: string; folder?: string; writeRequest?: string }) => {
    if (Boolean(opts.request) === Boolean(opts.folder)) throw new BadRequestError('flame diagnose: give --request FILE or --folder DIR (one of them)');
    let text: string;
    let name: string;
    if (opts.folder) {
      const made = await diagnosisRequestFromFolder(opts.folder);
      text = JSON.stringify(made, null, 2);
      name = opts.writeRequest ?? `request made from ${opts.folder}`;
      if (opts.writeRequest) await writeFile(opts.writeRequest, `${text}\n`);
      opts.root ??= [opts.folder];
    } else {
      name = opts.request!;
      text = await readTextFile(name, '--request');
    }
    // a request file is a seed-000 request: checked as the job API checks it (auto and dataset required)
    const request = await namingRequestFile(name, async () => parseDiagnosisRequest(text, { needDataset: true, requireAuto: true, maxClasses: commandLimits(opts).maxClasses }));
    const progress = progressReporter(json());
    try {
      const result = await namingRequestFile(name, () => diagnose(request, { ...common(opts), onProgress: progress.onProgress }));
      progress.stop();
      reportModel(opts, json());
      await writeReport(result, opts, json());
      await output(result, opts.out, json(), false);
    } finally {
      progress.stop();
    }
  });

  const simulate = program.commands.find((c) => c.name() === 'simulate') ?? program.command('simulate').description('run an analysis over simulated nodes on this machine');
  addCommonOptions(
    simulate
      .command('diagnose')
      .description('federated diagnosis over simulated nodes, each holding a folder of class sub-folders')
      .requiredOption('--node <name=dir>', 'a node and its image folder (repeat per node)', nodeSpec)
      .option('--tasks <list>', `comma-separated tasks (default: ${DIAGNOSIS_TASKS.join(', ')}; on request also ${OPT_IN_DIAGNOSIS_TASKS.join(', ')})`)
      .option('--dataset-uuid <id>', 'dataset_uuid of the response', 'simulated'),
  ).action(async (opts: CommonOpts & { node: Array<{ id: string; dir: string }>; tasks?: string; datasetUuid: string }) => {
    const tasks = opts.tasks ? opts.tasks.split(',').map((t) => ({ name: t.trim() })) : undefined;
    const request = { dataset_uuid: opts.datasetUuid, auto: !tasks, ...(tasks ? { tasks } : {}) };
    const nodes = opts.node.map((n) => ({ id: n.id, data: { folder: n.dir } }));
    if (!json()) process.stderr.write(`Simulating ${nodes.length} node${nodes.length === 1 ? '' : 's'} + aggregator with the embedded broker and storage…\n`);
    const progress = progressReporter(json());
    try {
      const result = await diagnose(request, { ...common(opts), nodes, onProgress: progress.onProgress });
      progress.stop();
      reportModel(opts, json());
      await writeReport(result, opts, json(), Object.fromEntries(opts.node.map((n) => [n.id, n.dir])));
      await output(result, opts.out, json(), true);
    } finally {
      progress.stop();
    }
  });
}
