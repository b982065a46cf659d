/**
 * `flame report --result result.json --out report.html [--root DIR...] [--reference truth.json]`:
 * the self-contained HTML report of a diagnosis result (src/report). Thumbnails are made only from
 * images inside the `--root` folders (the result is untrusted: the paths it names are never
 * enough); relative paths are resolved from the working directory. With a reference the page (and
 * the terminal, as `flame check` prints it) shows precision and recall per task.
 */
import type { Command } from 'commander';
import { intOption } from '../../../src/validation.js';
import { limitsFromEnv, resolveLimits } from '../../../src/limits.js';
import { parseReference } from '../../../src/evaluation/reference.js';
import { MAX_THUMBNAILS, refusedThumbnailsLine, writeDiagnosisReport } from '../../../src/report/index.js';
import { formatTable, printResult } from '../output.js';
import { checkTableRows } from './check.js';
import { readJsonFile, readResultArg } from './read-json.js';

function collect(v: string, previous: string[] = []): string[] {
  return [...previous, v];
}

/** Registers `flame report`. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report of a diagnosis result: projection, thumbnails, counts per class and node')
    .requiredOption('--result <file|hub:id>', 'diagnosis result JSON (what flame diagnose writes), or hub:ID for a final result on the hub')
    .requiredOption('--out <file>', 'HTML file to write')
    .option('--title <text>', 'page title', 'Diagnosis report')
    .option('--no-thumbnails', 'leave thumbnails out')
    .option('--max-thumbnails <n>', `at most this many thumbnails (default ${MAX_THUMBNAILS})`)
    .option('--root <dir>', 'a dataset folder thumbnails may be read from (repeatable); files elsewhere get a placeholder', collect)
    .option('-r, --reference <file>', 'ground truth JSON (the format of flame check, docs/check.md): the report shows precision/recall per task')
    .action(async (opts: { result: string; out: string; title: string; thumbnails: boolean; maxThumbnails?: string; root?: string[]; reference?: string }) => {
      const reference = opts.reference === undefined ? undefined : parseReference(await readJsonFile(opts.reference, '--reference'), opts.reference);
      const result = await readResultArg(opts.result, '--result');
      const roots = opts.root ?? [];
      const summary = await writeDiagnosisReport(result, {
        out: opts.out,
        title: opts.title,
        thumbnails: opts.thumbnails,
        maxThumbnails: opts.maxThumbnails === undefined ? undefined : intOption('--max-thumbnails', { min: 0 })(opts.maxThumbnails),
        roots,
        limits: resolveLimits(limitsFromEnv()),
        ...(reference ? { reference } : {}),
      });
      process.stderr.write(refusedThumbnailsLine('flame report', summary, roots.length ? 'add --root DIR for another folder' : 'pass --root DIR (the dataset folder, repeatable)'));
      for (const w of summary.check?.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
      if (program.opts().json) return printResult(summary, true);
      const { check, ...counts } = summary;
      process.stdout.write(`${formatTable([counts as unknown as Record<string, unknown>])}\n`);
      if (check) process.stdout.write(`\nagainst the reference ${opts.reference}:\n${formatTable(checkTableRows(check.rows))}\n`);
    });
}
