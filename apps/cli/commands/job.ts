/**
 * `flame job diagnose|clean|metadata --user UUID --request FILE [--sock PATH] [--out FILE]`: seed
 * 000's job API (apps/jobs) as commands. The request file is passed as text, exactly as the platform
 * passes it; the output JSON goes to --out, else to stdout; progress events go as line-delimited
 * JSON to the Unix socket --sock (docs/jobs.md). Bad requests exit 2, a missing request file or
 * metadata image 3.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { startCleaningJob } from '../../jobs/cleaning.js';
import { startDiagnosisJob } from '../../jobs/diagnosis.js';
import { getImageMetadataJob } from '../../jobs/metadata.js';
import type { JobOptions } from '../../jobs/run.js';
import { intOption, numberOption } from '../../../src/validation.js';
import { addLimitOptions, commandLimits, type FlaggedLimit, type LimitOptions } from '../limit-options.js';
import { namingRequestFile, readTextFile } from './read-json.js';

interface JobCliOptions extends LimitOptions {
  user: string;
  request: string;
  sock?: string;
  out?: string;
  jobId?: string;
}

/** Reads the request, runs the job, writes or prints its output; errors name the request file. */
async function runJobCommand(opts: JobCliOptions, start: (user: string, request: string, sock: string, options: JobOptions) => Promise<string>): Promise<void> {
  const text = await readTextFile(opts.request, '--request');
  const out = await namingRequestFile(opts.request, () => start(opts.user, text, opts.sock ?? '', { limits: commandLimits(opts), ...(opts.jobId ? { jobId: opts.jobId } : {}) }));
  const pretty = JSON.stringify(JSON.parse(out), null, 2) + '\n';
  if (opts.out) {
    await writeFile(opts.out, pretty);
    process.stderr.write(`result written to ${opts.out}\n`);
  } else {
    process.stdout.write(pretty);
  }
}

function jobCommand(parent: Command, name: string, description: string, requestHelp: string, limits: readonly FlaggedLimit[]): Command {
  const command = parent
    .command(name)
    .description(description)
    .requiredOption('--user <uuid>', 'uuid of the user starting the job')
    .requiredOption('--request <file>', requestHelp)
    .option('--sock <path>', 'Unix domain socket to send progress events to (line-delimited JSON; optional)')
    .option('--out <file>', 'write the output JSON here (default: stdout)')
    .option('--job-id <id>', 'job id stamped on the progress events (default: a random UUID)');
  return addLimitOptions(command, limits);
}

/** Registers `flame job diagnose|clean|metadata`. */
export function registerJob(program: Command): void {
  const job = program
    .command('job')
    .description('seed-000 jobs as the platform starts them: request JSON in, output JSON out, progress on a Unix socket (docs/jobs.md)');

  jobCommand(job, 'diagnose', 'start_diagnosis_job: diagnose the request\'s dataset (paths on this machine)', 'diagnosis request JSON {auto, dataset_uuid, dataset, tasks}', ['maxClasses', 'maxImagePixels'])
    .option('--folds <k>', 'cross-validation folds of the mislabeled task', intOption('--folds', { min: 2 }))
    .action((opts: JobCliOptions & { folds?: number }) =>
      runJobCommand(opts, (u, r, s, o) => startDiagnosisJob(u, r, s, { ...o, ...(opts.folds ? { folds: opts.folds } : {}) })),
    );

  jobCommand(job, 'clean', 'start_cleaning_job: corrected and removed files from a diagnosis result', 'cleaning request JSON {auto, dataset_uuid, tasks}', ['maxClasses'])
    .option('--min-confidence <p>', 'auto: relabel only at this probability of the suggested class or more', numberOption('--min-confidence', 0, 1))
    .option('--no-check-files', 'do not skip files that do not exist on this machine')
    .action((opts: JobCliOptions & { minConfidence?: number; checkFiles: boolean }) =>
      runJobCommand(opts, (u, r, s, o) => startCleaningJob(u, r, s, { ...o, checkFiles: opts.checkFiles, ...(opts.minConfidence !== undefined ? { minConfidence: opts.minConfidence } : {}) })),
    );

  jobCommand(job, 'metadata', 'get_image_metadata: channels, size and per-channel mean/std (0–1) of one image', 'metadata request JSON {"path": ...}', ['maxImagePixels']).action((opts: JobCliOptions) =>
    runJobCommand(opts, getImageMetadataJob),
  );
}
