/** How the CLI prints: tables for people on a TTY, JSON for scripts, and one clear line per error. */
import { FlameError, type FlameErrorKind } from '../errors.js';

/** Exit codes scripts can rely on, one per failure kind. */
export const EXIT_CODES: Record<FlameErrorKind | 'usage', number> = {
  bad_request: 2,
  usage: 2,
  not_found: 3,
  unauthorized: 4,
  conflict: 5,
  timeout: 6,
  internal: 1,
};

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

/** Print an error as one line (cause on --verbose) and return the exit code for its kind. */
export function reportError(e: unknown, verbose: boolean): number {
  const kind: FlameErrorKind = e instanceof FlameError ? e.kind : 'internal';
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`flame: ${kind.replace('_', ' ')}: ${message}\n`);
  if (verbose && e instanceof Error) {
    if (e.stack) process.stderr.write(e.stack + '\n');
    if (e.cause) process.stderr.write(`cause: ${e.cause instanceof Error ? (e.cause.stack ?? e.cause.message) : String(e.cause)}\n`);
  }
  return EXIT_CODES[kind];
}
