/**
 * `flame clean --request req.json [--out FILE] [--apply DIR (--source DIR | --root DIR...)]`: seed
 * 000's cleaning job. The request is a diagnosis result with `auto` (set in the JSON, or by --auto /
 * --reviewed); the response `{dataset_uuid, corrected, removed}` goes to --out, else to stdout.
 * --apply writes a cleaned copy of the dataset into a new folder, reading only images inside the
 * folders the operator names (--source, --root): a result is untrusted, so the paths it names are
 * never enough. Source files are never changed. Rules: analyses/image-cleaning/README.md.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { applyCleaning, DEFAULT_MAX_GIVEN_CONFIDENCE, DEFAULT_MIN_CONFIDENCE, planCleaning, requestSource, responseOf } from '../../../analyses/image-cleaning/index.js';
import { BadRequestError } from '../../../src/errors.js';
import { numberOption } from '../../../src/validation.js';
import { datasetFromFolder } from '../../../src/images/index.js';
import { addLimitOptions, commandLimits, type LimitOptions } from '../limit-options.js';
import { formatTable, printResult } from '../output.js';
import { readJsonFile } from './read-json.js';

interface CleanOptions extends LimitOptions {
  request: string;
  out?: string;
  apply?: string;
  source?: string;
  root?: string[];
  minConfidence?: string;
  maxGivenConfidence?: string;
  auto?: boolean;
  reviewed?: boolean;
}

function confidence(v: string | undefined): number {
  if (v === undefined) return DEFAULT_MIN_CONFIDENCE;
  return numberOption('--min-confidence', 0, 1)(v);
}

function collect(v: string, previous: string[] = []): string[] {
  return [...previous, v];
}

/** Registers `flame clean`. */
export function registerClean(program: Command): void {
  const command = program
    .command('clean')
    .description('decide which images to relabel (corrected) and drop (removed) from a diagnosis result; optionally write a cleaned copy')
    .requiredOption('--request <file>', 'cleaning request JSON: {auto, dataset_uuid, tasks} (a diagnosis result plus "auto")')
    .option('--out <file>', 'write the cleaning response JSON here (default: stdout)')
    .option('--apply <dir>', 'write a cleaned copy of the dataset into this new or empty folder (class folders + manifest.json)')
    .option('--source <dir>', 'with --apply: the dataset folder (class sub-folders) to copy from; default the files the request names (then --root is needed)')
    .option('--root <dir>', 'with --apply: a folder the files the request names may be read from (repeatable); files elsewhere are refused', collect)
    .option('--min-confidence <p>', `auto: relabel only when the suggested class has at least this probability (default ${DEFAULT_MIN_CONFIDENCE})`)
    .option('--max-given-confidence <p>', `auto: act on a mislabeled outlier only when its own class has at most this probability; 1 acts on every outlier (default the request's max_given_confidence, else ${DEFAULT_MAX_GIVEN_CONFIDENCE})`)
    .option('--auto', 'clean automatically (sets the request\'s "auto" to true)')
    .option('--reviewed', 'apply the reviewed outliers as given (sets "auto" to false)')
    .addHelpText(
      'after',
      `
auto: a mislabeled outlier is acted on only when its own class is very unlikely (at most
--max-given-confidence); then it is relabelled when its suggested class is confident, else removed;
the other mislabeled outliers are left for review. Lighting outliers and outliers of any other task
(blurry, odd_size, duplicates: only the later copy of a verified pair) are removed. reviewed: every outlier left in the
request is acted on: mislabeled ones whose current_class differs from original_class are
relabelled, all others removed. Details: analyses/image-cleaning/README.md.`,
    );
  addLimitOptions(command, ['maxClasses', 'maxImagePixels']).action(async (opts: CleanOptions) => {
    if (opts.auto && opts.reviewed) throw new BadRequestError('--auto and --reviewed exclude each other');
    const raw = await readJsonFile(opts.request, '--request');
    const request = raw && typeof raw === 'object' && !Array.isArray(raw) ? { ...(raw as Record<string, unknown>) } : raw;
    if (request && typeof request === 'object' && (opts.auto || opts.reviewed)) (request as Record<string, unknown>).auto = Boolean(opts.auto);
    if (request && typeof request === 'object' && (request as Record<string, unknown>).auto === undefined) {
      throw new BadRequestError(`--request ${opts.request}: "auto" is missing; set it in the JSON or pass --auto or --reviewed`);
    }
    if (opts.out && resolve(opts.out) === resolve(opts.request)) throw new BadRequestError(`--out ${opts.out} is the request file: choose another file`);
    if (opts.source && !opts.apply) throw new BadRequestError('--source is only used with --apply');
    const root = opts.root ?? [];
    if (root.length > 0 && !opts.apply) throw new BadRequestError('--root is only used with --apply');
    if (opts.apply && !opts.source && root.length === 0) {
      throw new BadRequestError('--apply needs the dataset folder the request\'s files may be read from: add --root DIR (repeatable), or --source DIR to copy from a folder');
    }
    const limits = commandLimits(opts);
    const { maxClasses, maxImagePixels } = limits;
    // Without the flag, the request's max_given_confidence applies, else the default.
    const maxGivenConfidence = opts.maxGivenConfidence === undefined ? undefined : numberOption('--max-given-confidence', 0, 1)(opts.maxGivenConfidence);
    const plan = planCleaning(request, { minConfidence: confidence(opts.minConfidence), ...(maxGivenConfidence !== undefined ? { maxGivenConfidence } : {}), maxClasses });
    const response = responseOf(plan);
    const json = Boolean(program.opts().json);
    if (opts.out) await writeFile(opts.out, JSON.stringify(response, null, 2) + '\n');
    else process.stdout.write(JSON.stringify(response, null, 2) + '\n');

    const summary: Record<string, unknown> = {
      dataset_uuid: response.dataset_uuid,
      corrected: plan.decisions.filter((d) => d.action === 'corrected').length,
      removed: plan.decisions.filter((d) => d.action === 'removed').length,
      left_for_review: plan.deferred.length,
    };
    if (opts.out) summary.out = opts.out;
    if (opts.apply) {
      const source = opts.source
        ? (await datasetFromFolder(opts.source, { maxImagePixels, logger: { warn: (m, f) => process.stderr.write(`warning: ${m} ${JSON.stringify(f)}\n`) } })).dataset
        : requestSource(request, { maxClasses });
      const roots = [...(opts.source ? [opts.source] : []), ...root];
      const applied = await applyCleaning(response, source, opts.apply, { roots, limits });
      for (const r of applied.manifest.refused) process.stderr.write(`flame clean: not copied: ${r.error}\n`);
      const { kept, not_in_source, refused } = applied.manifest.counts;
      Object.assign(summary, { applied_to: applied.outDir, kept, not_in_source, refused });
    }
    // stdout carries the response when there is no --out; the summary then goes to stderr
    if (!opts.out) process.stderr.write(`${formatTable(Object.entries(summary).map(([key, value]) => ({ key, value })))}\n`);
    else if (json) printResult(summary, true);
    else process.stdout.write(`${formatTable(Object.entries(summary).map(([key, value]) => ({ key, value })))}\n`);
  });
}
