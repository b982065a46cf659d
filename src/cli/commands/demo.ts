/** `flame demo`: the federated example analysis over three simulated nodes (what `npm start` runs). */
import type { Command } from 'commander';
import { federatedMean, SOURCE_ID } from '../../../analyses/federated-mean/index.js';
import { packagePath } from '../../package-root.js';
import { simulate } from '../../star/simulator.js';
import { formatTable, printResult } from '../output.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the example federated analysis (mean and std of patient ages) over 3 simulated nodes')
    .option('--data <dir>', 'folder with one sub-folder of ages.csv per node', packagePath('data', 'example'))
    .action(async (opts: { data: string }) => {
      const json = Boolean(program.opts().json);
      const nodes = ['node-a', 'node-b', 'node-c'].map((id) => ({
        id,
        dataSources: [{ id: SOURCE_ID, type: 'folder' as const, path: `${opts.data}/${id}` }],
      }));
      if (!json) process.stdout.write(`Simulating ${nodes.length} nodes + aggregator with the embedded broker and storage…\n`);
      const { outcome, dir } = await simulate(federatedMean, { nodes, resultName: 'federated-mean' });
      const r = outcome.result;
      if (json) return printResult({ ...r, rounds: outcome.rounds, result_id: outcome.resultId, storage: dir }, true);
      const rows = Object.entries(r.perNode).map(([node, count]) => ({ node, values: count }));
      process.stdout.write(`\n${formatTable(rows)}\n\n`);
      process.stdout.write(`pooled over ${r.count} values in ${outcome.rounds} rounds: mean ${r.mean.toFixed(3)}, std ${r.std?.toFixed(3)}\n`);
      process.stdout.write(`final result ${outcome.resultId} stored under ${dir}/hub\n`);
    });
}
