/** `flame run FILE`: run a star analysis module on this node, configured by FLAME_* env (the container entrypoint). */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { BadRequestError } from '../../../src/errors.js';
import { FlameSDK } from '../../../src/sdk.js';
import type { StarAnalysis } from '../../../src/star/analysis.js';
import { runStar } from '../../../src/star/runner.js';
import { printResult } from '../output.js';
import { countOrFractionOption, intOption } from '../../../src/validation.js';

function isStarAnalysis(v: unknown): v is StarAnalysis {
  return !!v && typeof (v as StarAnalysis).analyze === 'function' && typeof (v as StarAnalysis).aggregate === 'function';
}

/** The analysis a module exports as `name`, or a BadRequestError naming the file. */
export async function loadAnalysis(file: string, name: string): Promise<StarAnalysis> {
  const mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
  const analysis = mod[name];
  if (!isStarAnalysis(analysis)) throw new BadRequestError(`${file}: export "${name}" is not an analysis with analyze() and aggregate()`);
  return analysis;
}

/** `--node id=DIR` → one simulated node whose folder is data source `sourceId`. */
function nodeOption(v: string, previous: Array<{ id: string; dir: string }> = []): Array<{ id: string; dir: string }> {
  const at = v.indexOf('=');
  if (at <= 0 || at === v.length - 1) throw new BadRequestError(`--node ${JSON.stringify(v)}: expected ID=DIR, e.g. --node hospital-a=data/a`);
  return [...previous, { id: v.slice(0, at), dir: v.slice(at + 1) }];
}

/** Registers `flame simulate run` (beside `flame simulate diagnose`). */
export function registerSimulateRun(program: Command): void {
  const simulateCmd = program.commands.find((c) => c.name() === 'simulate') ?? program.command('simulate').description('run an analysis over simulated nodes on this machine');
  simulateCmd
    .command('run')
    .description('run your star analysis over simulated nodes on this machine, each node with its own data folder, on the embedded broker and storage')
    .argument('<file>', 'analysis module (.js, or .ts under tsx)')
    .requiredOption('--node <id=dir>', 'a node and its data folder (repeat per node)', nodeOption)
    .option('--source <id>', 'the data source id the analysis reads the folder as (getDataClient(id))', 'values')
    .option('--export <name>', 'named export holding the analysis', 'default')
    .option('--max-rounds <n>', 'upper bound on rounds (default: what the analysis declares, else 10)', intOption('--max-rounds'))
    .option('--min-count <n>', 'smallest count a node shares (disclosure control; 1 = off)', intOption('--min-count'))
    .action(async (file: string, opts: { node: Array<{ id: string; dir: string }>; source: string; export: string; maxRounds?: number; minCount?: number }) => {
      const analysis = await loadAnalysis(file, opts.export);
      const { simulate } = await import('../../../src/star/simulator.js');
      const { outcome } = await simulate(analysis, {
        nodes: opts.node.map((n) => ({ id: n.id, dataSources: [{ id: opts.source, type: 'folder' as const, path: path.resolve(n.dir) }] })),
        ...(opts.maxRounds !== undefined ? { maxRounds: opts.maxRounds } : {}),
        ...(opts.minCount !== undefined ? { disclosure: { minCount: opts.minCount } } : {}),
        logLevel: 'warn',
      });
      printResult({ rounds: outcome.rounds, result_id: outcome.resultId ?? null, contributors: outcome.contributors ?? [], result: outcome.result }, true);
    });
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a star analysis (a module exporting {analyze, aggregate}) on this node; config from FLAME_* env')
    .argument('<file>', 'analysis module (.js, or .ts under tsx)')
    .option('--export <name>', 'named export holding the analysis', 'default')
    .option('--max-rounds <n>', 'upper bound on rounds (default: what the analysis declares, else 10)', intOption('--max-rounds'))
    .option('--timeout-ms <ms>', 'how long to wait for other nodes per round', intOption('--timeout-ms'), 120000)
    .option('--min-nodes <n>', 'aggregator: fewest analyzers a round may close with, when the analysis tolerates missing ones (a count, or a fraction 0-1)', countOrFractionOption('--min-nodes'))
    .option('--straggler-ms <ms>', 'aggregator: per-round deadline after which a tolerated round closes with the analyzers that answered', intOption('--straggler-ms'))
    .option('--loss-after-ms <ms>', 'a node whose heartbeats stopped this long is lost (default 3 heartbeats; raise it to wait for restarts)', intOption('--loss-after-ms'))
    .addHelpText(
      'after',
      `
Exit codes: 0 the analysis finished, 7 the aggregator went on without this node (quorum), 6 a node or
round timed out, 1 it failed (see "flame --help" for the others). A node killed and started again with
the same configuration goes on from its last completed round.

Example:
  FLAME_NODE_ID=hospital-a FLAME_NATS_URL=tls://nats:4222 ... flame run dist/analyses/federated-mean/index.js --loss-after-ms 60000`,
    )
    .action(async (file: string, opts: { export: string; maxRounds?: number; timeoutMs: number; minNodes?: number; stragglerMs?: number; lossAfterMs?: number }) => {
      const analysis = await loadAnalysis(file, opts.export);
      const sdk = await FlameSDK.connect();
      try {
        const outcome = await runStar(sdk, analysis, {
          maxRounds: opts.maxRounds,
          timeoutMs: opts.timeoutMs,
          ...(opts.minNodes !== undefined ? { minNodes: opts.minNodes } : {}),
          ...(opts.stragglerMs !== undefined ? { stragglerMs: opts.stragglerMs } : {}),
          ...(opts.lossAfterMs !== undefined ? { lossAfterMs: opts.lossAfterMs } : {}),
        });
        printResult(
          {
            node_id: sdk.nodeId,
            role: sdk.role,
            rounds: outcome.rounds,
            result_id: outcome.resultId ?? null,
            result: outcome.result,
            ...(outcome.contributors ? { contributors: outcome.contributors } : {}),
            ...(outcome.excluded?.length ? { excluded: outcome.excluded } : {}),
            ...(outcome.resumed ? { resumed: true } : {}),
            message_stats: sdk.messageStats(),
          },
          true,
        );
      } finally {
        await sdk.close();
      }
    });
}
