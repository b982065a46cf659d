/**
 * The `--help` text of every `flame` command as one Markdown page (docs/cli-help.md), generated from
 * the command definitions so the reference cannot drift from the CLI.
 */
import type { Command } from 'commander';
import { buildProgram } from './program.js';

function walk(cmd: Command, trail: string[], out: string[]): void {
  // A fixed width, so the page does not depend on the terminal it is generated in.
  cmd.configureHelp({ helpWidth: 100 });
  const name = [...trail, cmd.name()].join(' ');
  out.push(`## \`${name}\``, '', '```', cmd.helpInformation({ error: false }).trimEnd(), '```', '');
  for (const sub of cmd.commands) if (sub.name() !== 'help') walk(sub, [...trail, cmd.name()], out);
}

/** The Markdown reference of all commands, in definition order. */
export function cliHelpReference(): string {
  const program = buildProgram();
  const out = ['# `flame` command reference', '', 'Generated from the command definitions by `npm run docs:cli`; the explanations are in [cli.md](cli.md).', ''];
  walk(program, [], out);
  return out.join('\n');
}
