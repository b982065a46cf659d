/** `flame nodes status`: the participants of the analysis and whether they answer. */
import type { Command } from 'commander';
import { FlameSDK } from '../../../src/sdk.js';
import { printResult } from '../output.js';
import { intOption } from '../../../src/validation.js';

export function registerNodes(program: Command): void {
  const nodes = program.command('nodes').description('participants of the analysis');
  nodes
    .command('status')
    .description('ping every participant: online, offline or not_connected')
    .option('--timeout-ms <ms>', 'how long to wait for each answer', intOption('--timeout-ms'), 2000)
    .action(async (opts: { timeoutMs: number }) => {
      const sdk = await FlameSDK.connect({ logLevel: 'warn' }, { observer: true });
      try {
        const [participants, status] = await Promise.all([sdk.getParticipants(), sdk.askNodeStatus({ timeoutMs: opts.timeoutMs })]);
        const rows = participants.map((p) => ({ node: p.nodeId, role: p.role, status: status[p.nodeId], last_seen: p.lastSeen ?? '' }));
        printResult(rows, Boolean(program.opts().json));
      } finally {
        await sdk.close();
      }
    });
}
