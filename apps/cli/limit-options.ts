/**
 * The `--max-*` options of the commands that read untrusted requests, images or packet lines. An
 * option wins over its `FLAME_MAX_*` variable, which wins over the default in src/limits.ts, so an
 * operator can set a node-wide cap in the environment and still change it for one run.
 */
import type { Command } from 'commander';
import { BadRequestError } from '../../src/errors.js';
import { DEFAULT_LIMITS, LIMIT_ENV, LIMIT_FLAG, limitsFromEnv, resolveLimits, type Limits } from '../../src/limits.js';

/** The caps that have a command-line option. */
export type FlaggedLimit = 'maxClasses' | 'maxImagePixels' | 'maxLineBytes';

/** The parsed `--max-*` options (commander names them like the caps). */
export type LimitOptions = Partial<Pick<Limits, FlaggedLimit>>;

const HELP: Record<FlaggedLimit, string> = {
  maxClasses: 'most classes a request may declare',
  maxImagePixels: 'most pixels (width × height) of one image, read from its header before decoding',
  maxLineBytes: 'longest packet line in bytes; a longer one is discarded and answered with field-out-of-range',
};

function wholeNumber(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new BadRequestError(`${flag} ${v}: expected a whole number >= 1`);
    return n;
  };
}

/** Adds the `--max-*` option of each cap in `fields` to `command`; `help` words an option for this command. */
export function addLimitOptions(command: Command, fields: readonly FlaggedLimit[], help: Partial<Record<FlaggedLimit, string>> = {}): Command {
  for (const field of fields) {
    const flag = LIMIT_FLAG[field]!;
    command.option(`${flag} <n>`, `${help[field] ?? HELP[field]} (default ${DEFAULT_LIMITS[field]}; env ${LIMIT_ENV[field]})`, wholeNumber(flag));
  }
  return command;
}

/** The caps a command runs with: its `--max-*` options over `FLAME_MAX_*` over the defaults. */
export function commandLimits(options: LimitOptions, env: NodeJS.ProcessEnv = process.env): Limits {
  const given = Object.fromEntries(Object.entries(pickLimits(options)).filter(([, v]) => v !== undefined));
  return resolveLimits({ ...limitsFromEnv(env), ...given });
}

/** Only the `--max-*` fields of a command's options (commander passes every option in one object). */
export function pickLimits(options: LimitOptions): LimitOptions {
  const { maxClasses, maxImagePixels, maxLineBytes } = options;
  return { maxClasses, maxImagePixels, maxLineBytes };
}
