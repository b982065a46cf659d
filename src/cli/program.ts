/** The `flame` command's definition. Each command lives in its own module under commands/. */
import { Command, CommanderError } from 'commander';
import { registerCheck } from './commands/check.js';
import { registerClean } from './commands/clean.js';
import { registerDatasets } from './commands/datasets.js';
import { registerDemo } from './commands/demo.js';
import { registerDiagnose } from './commands/diagnose.js';
import { registerHosts } from './commands/hosts.js';
import { registerInit } from './commands/init.js';
import { registerJob } from './commands/job.js';
import { registerMetadata } from './commands/metadata.js';
import { registerNodes } from './commands/nodes.js';
import { registerReport } from './commands/report.js';
import { registerResults } from './commands/results.js';
import { registerRun } from './commands/run.js';
import { registerWorker } from './commands/worker.js';
import { EXIT_CODES, reportError } from './output.js';

/** The whole `flame` command tree (commander), ready to parse. */
export function buildProgram(): Command {
  const program = new Command('flame')
    .description('FLAME federated analyses: run, simulate and inspect analyses on NATS + S3 or the embedded default')
    .option('--json', 'print machine-readable JSON instead of tables')
    .option('--verbose', 'print the cause of errors')
    .option('--insecure', 'accept self-signed TLS certificates of NATS and S3 (same as FLAME_INSECURE=1; off by default)')
    .showHelpAfterError()
    .exitOverride()
    .hook('preAction', (cmd) => {
      // Configuration is read from the environment, so the flag becomes the env switch every command honours.
      if (cmd.opts().insecure) {
        process.env.FLAME_INSECURE = '1';
        process.stderr.write('flame: warning: --insecure: self-signed TLS certificates are accepted; do not use this in production\n');
      }
    });
  registerDemo(program);
  registerRun(program);
  registerNodes(program);
  registerResults(program);
  registerWorker(program);
  registerDatasets(program);
  registerCheck(program);
  registerHosts(program);
  registerInit(program);
  registerDiagnose(program);
  registerClean(program);
  registerReport(program);
  registerMetadata(program);
  registerJob(program);
  return program;
}

/** Run `flame` with `argv` (without node and script); resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_CODES.usage;
    return reportError(e, Boolean(program.opts().verbose));
  }
}

