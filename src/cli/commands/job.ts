/**
 * `flame job diagnose|clean|metadata --user UUID --request FILE [--sock PATH] [--out FILE]`: seed
 * 000's job API (src/jobs) as commands. The request file is passed as text, exactly as the platform
 * passes it; the output JSON goes to --out, else to stdout; progress events go as line-delimited
 * JSON to the Unix socket --sock (docs/jobs.md). Bad requests exit 2, a missing request file or
 * metadata image 3.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { BadRequestError, FlameError, NotFoundError } from '../../errors.js';
import { startCleaningJob } from '../../jobs/cleaning.js';
import { startDiagnosisJob } from '../../jobs/diagnosis.js';
import { getImageMetadataJob } from '../../jobs/metadata.js';
import type { JobOptions } from '../../jobs/run.js';

interface JobCliOptions {
  user: string;
  request: string;
  sock?: string;
  out?: string;
  jobId?: string;
}

async function readRequestText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`--request ${file} does not exist`, { cause: e });
    throw new BadRequestError(`--request ${file} cannot be read: ${(e as Error).message}`, { cause: e });
  }
}

function positiveInt(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new BadRequestError(`${flag} ${v}: expected a positive integer`);
    return n;
  };
}

/** Reads the request, runs the job, writes or prints its output; errors name the request file. */
async function runJobCommand(opts: JobCliOptions, start: (user: string, request: string, sock: string, options: JobOptions) => Promise<string>): Promise<void> {
  const text = await readRequestText(opts.request);
  let out: string;
  try {
    out = await start(opts.user, text, opts.sock ?? '', opts.jobId ? { jobId: opts.jobId } : {});
  } catch (e) {
    if (e instanceof FlameError && e.message.startsWith('request')) e.message = `--request ${opts.request}: ${e.message}`;
    throw e;
  }
  const pretty = JSON.stringify(JSON.parse(out), null, 2) + '\n';
  if (opts.out) {
    await writeFile(opts.out, pretty);
    process.stderr.write(`result written to ${opts.out}\n`);
  } else {
    process.stdout.write(pretty);
  }
}

function jobCommand(parent: Command, name: string, description: string, requestHelp: string): Command {
  return parent
    .command(name)
    .description(description)
    .requiredOption('--user <uuid>', 'uuid of the user starting the job')
    .requiredOption('--request <file>', requestHelp)
    .option('--sock <path>', 'Unix domain socket to send progress events to (line-delimited JSON; optional)')
    .option('--out <file>', 'write the output JSON here (default: stdout)')
    .option('--job-id <id>', 'job id stamped on the progress events (default: a random UUID)');
}

/** Registers `flame job diagnose|clean|metadata`. */
export function registerJob(program: Command): void {
  const job = program
    .command('job')
    .description('seed-000 jobs as the platform starts them: request JSON in, output JSON out, progress on a Unix socket (docs/jobs.md)');

  jobCommand(job, 'diagnose', 'start_diagnosis_job: diagnose the request\'s dataset (paths on this machine)', 'diagnosis request JSON {auto, dataset_uuid, dataset, tasks}')
    .option('--folds <k>', 'cross-validation folds of the mislabeled task', positiveInt('--folds'))
    .option('--rounds <n>', 'federated-averaging rounds per fold', positiveInt('--rounds'))
    .action((opts: JobCliOptions & { folds?: number; rounds?: number }) =>
      runJobCommand(opts, (u, r, s, o) => startDiagnosisJob(u, r, s, { ...o, ...(opts.folds ? { folds: opts.folds } : {}), ...(opts.rounds ? { rounds: opts.rounds } : {}) })),
    );

  jobCommand(job, 'clean', 'start_cleaning_job: corrected and removed files from a diagnosis result', 'cleaning request JSON {auto, dataset_uuid, tasks}')
    .option('--min-confidence <p>', 'auto: relabel only at this probability of the suggested class or more', (v) => {
      const n = Number(v);
      if (!(n >= 0 && n <= 1)) throw new BadRequestError(`--min-confidence ${v}: expected a number between 0 and 1`);
      return n;
    })
    .option('--no-check-files', 'do not skip files that do not exist on this machine')
    .action((opts: JobCliOptions & { minConfidence?: number; checkFiles: boolean }) =>
      runJobCommand(opts, (u, r, s, o) => startCleaningJob(u, r, s, { ...o, checkFiles: opts.checkFiles, ...(opts.minConfidence !== undefined ? { minConfidence: opts.minConfidence } : {}) })),
    );

  jobCommand(job, 'metadata', 'get_image_metadata: channels, size and per-channel mean/std (0–1) of one image', 'metadata request JSON {"path": ...}').action((opts: JobCliOptions) =>
    runJobCommand(opts, getImageMetadataJob),
  );
}
