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
import { registerRun, registerSimulateRun } from './commands/run.js';
import { registerTrust } from './commands/trust.js';
import { registerWorker } from './commands/worker.js';
import { shapeHelp } from './help.js';
import { EXIT_CODES, reportError } from './output.js';
import { packageVersion } from './version.js';

/** The whole `flame` command tree (commander), ready to parse. */
export function buildProgram(): Command {
  const program = new Command('flame')
    .description('FLAME federated analyses: run, simulate and inspect analyses on NATS + S3 or the embedded default')
    .usage('[--json] [--verbose] [--insecure] <command> …   (flame --version prints the version)')
    .option('--json', 'print machine-readable JSON instead of tables')
    .option('--verbose', 'print the cause of errors')
    .option('--insecure', 'accept self-signed TLS certificates of NATS and S3 (same as FLAME_INSECURE=1; off by default)')
    // A usage error is one line and a pointer, not the whole help.
    .showHelpAfterError("(run 'flame --help' or 'flame <command> --help' for usage)")
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
  registerTrust(program);
  registerWorker(program);
  registerDatasets(program);
  registerCheck(program);
  registerHosts(program);
  registerInit(program);
  registerDiagnose(program);
  registerSimulateRun(program);
  registerClean(program);
  registerReport(program);
  registerMetadata(program);
  registerJob(program);
  shapeHelp(program, EXIT_CODES);
  return program;
}

/** Run `flame` with `argv` (without node and script); resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  // Only as the first word: `flame roster sign --version 2` is that command's own option.
  if (argv[0] === '--version' || argv[0] === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_CODES.usage;
    return reportError(e, Boolean(program.opts().verbose));
  }
}

