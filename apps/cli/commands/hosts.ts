/** `flame hosts`: this machine's CPU, memory and the onnxruntime-node execution providers that work. */
import type { Command } from 'commander';
import { describeHost } from '../../../src/system/hosts.js';
import { formatTable, printResult } from '../output.js';

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** Registers `flame hosts`. */
export function registerHosts(program: Command): void {
  program
    .command('hosts')
    .description('CPU, memory and onnxruntime-node execution providers of this machine (each provider is tried with a tiny model)')
    .option('--provider <name...>', 'probe only these providers (e.g. cpu cuda)')
    .action(async (opts: { provider?: string[] }) => {
      const host = await describeHost({ providers: opts.provider });
      if (program.opts().json) return printResult(host, true);
      const rows = [
        { type: 'cpu', name: host.cpu.model, detail: `${host.cpu.cores} cores, ${host.arch}, ${gib(host.memory.total_bytes)} memory (${gib(host.memory.free_bytes)} free)` },
        ...host.providers.map((p) => ({
          type: 'provider',
          name: p.name,
          detail: p.usable ? `usable${p.bundled ? '' : ' (not bundled)'}` : `not usable: ${p.error}`,
        })),
      ];
      process.stdout.write(`${formatTable(rows)}\n${host.hostname}: ${host.platform}, node ${host.node}, onnxruntime-node ${host.onnxruntime}\n`);
    });
}
