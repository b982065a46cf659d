/** How the CLI prints: tables for people on a TTY, JSON for scripts, and one clear line per error. */
import { FlameError, type FlameErrorKind } from '../../src/errors.js';

/** Exit codes scripts can rely on, one per failure kind. */
export const EXIT_CODES: Record<FlameErrorKind | 'usage', number> = {
  bad_request: 2,
  usage: 2,
  not_found: 3,
  unauthorized: 4,
  conflict: 5,
  timeout: 6,
  excluded: 7,
  internal: 1,
};

/** A byte count for people: `512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB` (JSON output keeps the raw number). */
export function humanBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Render rows as an aligned text table. */
export function formatTable(rows: Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(none)';
  const cols = columns ?? Object.keys(rows[0]);
  const cell = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

/** Print `value` as JSON when asked, else as a table (arrays of objects) or key/value lines. */
export function printResult(value: unknown, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  } else if (Array.isArray(value)) {
    process.stdout.write(formatTable(value as Record<string, unknown>[]) + '\n');
  } else if (value && typeof value === 'object') {
    process.stdout.write(formatTable(Object.entries(value).map(([key, v]) => ({ key, value: v }))) + '\n');
  } else {
    process.stdout.write(String(value) + '\n');
  }
}

/** The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/** A command stopped by the user (Ctrl-C); its message says what was kept and how to go on. */
export class Interrupted extends Error {}

/** Print an error as one line (cause on --verbose) and return the exit code for its kind. */
export function reportError(e: unknown, verbose: boolean): number {
  if (e instanceof Interrupted) {
    process.stderr.write(`flame: ${e.message}\n`);
    return EXIT_INTERRUPTED;
  }
  const kind: FlameErrorKind = e instanceof FlameError ? e.kind : 'internal';
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`flame: ${kind.replace('_', ' ')}: ${message}\n`);
  if (verbose && e instanceof Error) {
    if (e.stack) process.stderr.write(e.stack + '\n');
    if (e.cause) process.stderr.write(`cause: ${e.cause instanceof Error ? (e.cause.stack ?? e.cause.message) : String(e.cause)}\n`);
  }
  return EXIT_CODES[kind];
}
