/** `flame results list|get|download`: final and intermediate results of the analysis on the hub. */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { FlameSDK } from '../../sdk.js';
import { printResult } from '../output.js';

async function withSdk<T>(fn: (sdk: FlameSDK) => Promise<T>): Promise<T> {
  const sdk = await FlameSDK.connect({ logLevel: 'warn' }, { observer: true });
  try {
    return await fn(sdk);
  } finally {
    await sdk.close();
  }
}

export function registerResults(program: Command): void {
  const results = program.command('results').description('results of the analysis on the hub');
  const json = () => Boolean(program.opts().json);
  results
    .command('list')
    .description('list final results (or intermediate ones with --intermediate, local ones with --local)')
    .option('--intermediate', 'intermediate results on the hub')
    .option('--local', 'intermediate results in this node\'s local storage')
    .action((opts: { intermediate?: boolean; local?: boolean }) =>
      withSdk(async (sdk) => {
        const rows = opts.local
          ? await sdk.listIntermediateResultsLocal()
          : opts.intermediate
            ? await sdk.listIntermediateResults()
            : await sdk.results.listResults();
        printResult(rows, json());
      }),
    );
  results
    .command('get')
    .description('print a final result (JSON values as JSON)')
    .argument('<id>', 'result id')
    .action((id: string) => withSdk(async (sdk) => printResult(await sdk.results.getResult(id), true)));
  results
    .command('download')
    .description('download a final result\'s stored bytes to a file')
    .argument('<id>', 'result id')
    .requiredOption('-o, --out <file>', 'where to write')
    .action((id: string, opts: { out: string }) =>
      withSdk(async (sdk) => {
        await pipeline(await sdk.results.getResultStream(id), fs.createWriteStream(opts.out));
        if (!json()) process.stdout.write(`wrote ${opts.out}\n`);
      }),
    );
}
