/**
 * Structured logs on stderr, so stdout stays free for a command's output (tables, JSON results, the
 * worker protocol): JSON lines for machines (the default off a terminal, and what the orchestrator
 * collects), readable lines for a person at a terminal (`FLAME_LOG_FORMAT=pretty|json` chooses).
 */
import type { LogLevel } from './config.js';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Fields attached to every line of a logger (e.g. node and analysis ids). */
export type LogFields = Record<string, unknown>;

/** A JSON-lines logger. `fields` are added to the line; an `error` field that is an Error is logged as its message. */
export interface Logger {
  /** Log `msg` at level debug. */
  debug(msg: string, fields?: LogFields): void;
  /** Log `msg` at level info. */
  info(msg: string, fields?: LogFields): void;
  /** Log `msg` at level warn. */
  warn(msg: string, fields?: LogFields): void;
  /** Log `msg` at level error. */
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Where lines go; tests pass their own sink to read what was logged. */
export type LogSink = (line: string) => void;

/** The log format: `FLAME_LOG_FORMAT` when set, else readable on a terminal and JSON lines otherwise. */
export function logFormat(env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stderr.isTTY)): 'json' | 'pretty' {
  const f = env.FLAME_LOG_FORMAT;
  if (f === 'json' || f === 'pretty') return f;
  return isTTY ? 'pretty' : 'json';
}

const LEVEL_LABEL: Record<string, string> = { debug: 'debug', info: 'info ', warn: 'WARN ', error: 'ERROR' };

/** A JSON log line as a person reads it: `12:03:04 info  [node-a] node connected role=analyzer`. */
export function prettyLogLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, node, analysis: _analysis, ...rest } = o;
  void _analysis;
  const clock = typeof time === 'string' ? time.slice(11, 19) : '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${clock} ${LEVEL_LABEL[String(level)] ?? String(level)} ${node ? `[${String(node)}] ` : ''}${String(msg)}${fields ? ` ${fields}` : ''}`;
}

const stderrSink: LogSink = (line) => process.stderr.write((logFormat() === 'pretty' ? prettyLogLine(line) : line) + '\n');

/** Create a JSON-lines logger that drops lines below `level`. */
export function createLogger(level: LogLevel = 'info', base: LogFields = {}, sink: LogSink = stderrSink): Logger {
  const min = ORDER[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] < min) return;
    const err = fields?.error;
    const extra = err instanceof Error ? { ...fields, error: err.message } : fields;
    sink(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...extra }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, sink),
  };
}
