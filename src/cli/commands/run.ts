/** `flame run FILE`: run a star analysis module on this node, configured by FLAME_* env (the container entrypoint). */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { BadRequestError } from '../../errors.js';
import { FlameSDK } from '../../sdk.js';
import type { StarAnalysis } from '../../star/analysis.js';
import { runStar } from '../../star/runner.js';
import { printResult } from '../output.js';

function isStarAnalysis(v: unknown): v is StarAnalysis {
  return !!v && typeof (v as StarAnalysis).analyze === 'function' && typeof (v as StarAnalysis).aggregate === 'function';
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a star analysis (a module exporting {analyze, aggregate}) on this node; config from FLAME_* env')
    .argument('<file>', 'analysis module (.js, or .ts under tsx)')
    .option('--export <name>', 'named export holding the analysis', 'default')
    .option('--max-rounds <n>', 'upper bound on rounds (default: what the analysis declares, else 10)', (v) => Number(v))
    .option('--timeout-ms <ms>', 'how long to wait for other nodes per round', (v) => Number(v), 120000)
    .action(async (file: string, opts: { export: string; maxRounds?: number; timeoutMs: number }) => {
      const mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
      const analysis = mod[opts.export];
      if (!isStarAnalysis(analysis)) {
        throw new BadRequestError(`${file}: export "${opts.export}" is not an analysis with analyze() and aggregate()`);
      }
      const sdk = await FlameSDK.connect();
      try {
        const outcome = await runStar(sdk, analysis, { maxRounds: opts.maxRounds, timeoutMs: opts.timeoutMs });
        printResult({ node_id: sdk.nodeId, role: sdk.role, rounds: outcome.rounds, result_id: outcome.resultId ?? null, result: outcome.result }, true);
      } finally {
        await sdk.close();
      }
    });
}
