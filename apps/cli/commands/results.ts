/** `flame results list|get|download`: final and intermediate results of the analysis on the hub. */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { valueToFile } from '../../../src/codec/index.js';
import { FlameSDK } from '../../../src/sdk.js';
import { humanBytes, printResult } from '../output.js';

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
        const rows: Array<{ result_size: number }> = opts.local
          ? await sdk.listIntermediateResultsLocal()
          : opts.intermediate
            ? await sdk.listIntermediateResults()
            : (await sdk.results.listResults()).map((r) => (json() ? r : { ...r, verified: r.verified ? 'yes' : `NO: ${r.verification}` }));
        // A table for people shows sizes as sizes; JSON keeps the byte counts.
        printResult(json() ? rows : rows.map((r) => ({ ...r, result_size: humanBytes(r.result_size) })), json());
      }),
    );
  results
    .command('get')
    .description('print a final result (JSON values as JSON); refused unless the aggregator\'s signature verifies')
    .argument('<id>', 'result id')
    .option('--unverified', 'print it even when its signature does not verify (says so on stderr)')
    .action((id: string, opts: { unverified?: boolean }) =>
      withSdk(async (sdk) => {
        if (opts.unverified) {
          const v = await sdk.results.verifyResult(id);
          if (!v.verified) process.stderr.write(`warning: final result ${id} is not verified: ${v.detail}\n`);
        }
        printResult(await sdk.results.getResult(id, { unverified: opts.unverified }), true);
      }),
    );
  results
    .command('download')
    .description("download a final result as a file you can open: the value as submitted (JSON, bytes, Arrow IPC file, or .npy for a tensor), or a streamed result's bytes")
    .argument('<id>', 'result id')
    .requiredOption('-o, --out <file>', 'where to write')
    .option('--unverified', 'download it even when its signature does not verify')
    .option('--frame', "write the stored bytes as they are (a value's internal FLMV frame)")
    .action((id: string, opts: { out: string; unverified?: boolean; frame?: boolean }) =>
      withSdk(async (sdk) => {
        const part = `${opts.out}.part`;
        let format = 'bytes';
        try {
          if (opts.frame || (await sdk.results.isStreamedResult(id))) {
            await pipeline(await sdk.results.getResultStream(id, { unverified: opts.unverified }), fs.createWriteStream(part));
          } else {
            // A value sent with sendResult: the value itself (checked and decoded within bounds), not the frame.
            const file = valueToFile(await sdk.results.getResult(id, { unverified: opts.unverified }));
            format = file.format;
            fs.writeFileSync(part, file.bytes);
          }
          fs.renameSync(part, opts.out);
        } catch (e) {
          // Bytes that fail the digest check at the end must not stay behind as if they were the result.
          fs.rmSync(part, { force: true });
          throw e;
        }
        if (json()) printResult({ id, out: opts.out, format }, true);
        else process.stdout.write(`wrote ${opts.out} (${format})\n`);
      }),
    );
}
