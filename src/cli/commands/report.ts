/**
 * `flame report --result result.json --out report.html`: the self-contained HTML report of a
 * diagnosis result (src/report). Thumbnails are read from the files' paths when this machine has
 * them; relative paths are read from the working directory.
 */
import type { Command } from 'commander';
import { BadRequestError } from '../../errors.js';
import { MAX_THUMBNAILS, writeDiagnosisReport } from '../../report/index.js';
import { formatTable, printResult } from '../output.js';
import { readJsonFile } from './read-json.js';

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new BadRequestError(`${name} ${v}: expected a whole number ≥ 0`);
  return n;
}

/** Registers `flame report`. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report of a diagnosis result: projection, thumbnails, counts per class and node')
    .requiredOption('--result <file>', 'diagnosis result JSON (what flame diagnose writes)')
    .requiredOption('--out <file>', 'HTML file to write')
    .option('--title <text>', 'page title', 'Diagnosis report')
    .option('--no-thumbnails', 'leave thumbnails out')
    .option('--max-thumbnails <n>', `at most this many thumbnails (default ${MAX_THUMBNAILS})`)
    .action(async (opts: { result: string; out: string; title: string; thumbnails: boolean; maxThumbnails?: string }) => {
      const result = await readJsonFile(opts.result, '--result');
      const summary = await writeDiagnosisReport(result, {
        out: opts.out,
        title: opts.title,
        thumbnails: opts.thumbnails,
        maxThumbnails: opts.maxThumbnails === undefined ? undefined : positiveInt(opts.maxThumbnails, '--max-thumbnails'),
      });
      if (program.opts().json) return printResult(summary, true);
      process.stdout.write(`${formatTable([summary as unknown as Record<string, unknown>])}\n`);
    });
}
