/**
 * `flame check --reference REF.json RESULT.json`: precision, recall, F1 and accuracy of a diagnosis
 * or cleaning result against a ground truth, per task. The reference format is in docs/check.md.
 */
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { BadRequestError, NotFoundError } from '../../../src/errors.js';
import { checkResult, type CheckRow } from '../../../src/evaluation/check.js';
import { parseReference } from '../../../src/evaluation/reference.js';
import { formatTable, printResult } from '../output.js';
import { HUB_PREFIX, readResultArg } from './read-json.js';

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${what} ${file} does not exist`);
    throw new BadRequestError(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BadRequestError(`${what} ${file} is not valid JSON (${(e as Error).message})`);
  }
}

function fixed(v: number | null): string {
  return v === null ? '-' : v.toFixed(3);
}

/** The table a person reads: counts, then the metrics with three decimals ('-' where undefined). */
export function checkTableRows(rows: CheckRow[]): Record<string, unknown>[] {
  return rows.map((r) => ({
    task: r.task,
    files: r.files ?? '-',
    flagged: r.flagged,
    faults: r.faults,
    tp: r.tp,
    fp: r.fp,
    fn: r.fn,
    tn: r.tn ?? '-',
    precision: fixed(r.precision),
    recall: fixed(r.recall),
    f1: fixed(r.f1),
    accuracy: fixed(r.accuracy),
    relabel: fixed(r.relabel_accuracy),
  }));
}

/** Registers `flame check`. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('compare a diagnosis or cleaning result with a reference (ground truth): precision, recall, F1, accuracy per task')
    .requiredOption('-r, --reference <file>', 'ground truth JSON: mislabeled files with their true class, files with bad lighting (docs/check.md)')
    .argument('<result>', 'diagnosis result ({"tasks": [...]}) or cleaning result ({"corrected", "removed"}) JSON, or hub:ID for a final result on the hub')
    .addHelpText(
      'after',
      `
Reference format (either spelling; paths match result keys by trailing path segments):
  {"mislabeled": {"<path>": {"true_class": "dog", "given_class": "cat"}},
   "lighting": {"<path>": "dark" | "bright"}, "files": <count> | ["<path>", ...]}
  {"flipped": [{"path", "true_class", "labelled_class"}], "darkened": [...], "brightened": [...], "files": <count>}

Rows: a diagnosis gives one row per task (mislabeled_images vs "mislabeled", lighting_conditions vs
"lighting"); a cleaning result gives "cleaning" (corrected + removed vs every fault) and "corrected"
(vs mislabeled). relabel = share of found mislabeled files moved to their true class.`,
    )
    .action(async (resultFile: string, opts: { reference: string }) => {
      const reference = parseReference(await readJson(opts.reference, 'reference'), opts.reference);
      const report = checkResult(resultFile.startsWith(HUB_PREFIX) ? await readResultArg(resultFile, 'result') : await readJson(resultFile, 'result'), reference, resultFile);
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
      if (program.opts().json) return printResult(report, true);
      process.stdout.write(`${formatTable(checkTableRows(report.rows))}\n`);
    });
}
