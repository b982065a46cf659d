/**
 * Parsing a job's request text: invalid JSON is a BadRequestError that names where the text goes
 * wrong (character position, line and column), whatever the JavaScript engine's message says.
 */
import { BadRequestError } from './errors.js';

/** A place in a text. */
export interface TextPosition {
  /** Line, from 1. */
  line: number;
  /** Column, from 1. */
  column: number;
}

/** Line and column (both from 1) of character `position` in `text`. */
export function lineColumn(text: string, position: number): TextPosition {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  return { line, column: position - (before.lastIndexOf('\n') + 1) + 1 };
}

/** Where JSON.parse gave up, from its message; the end of the text when the message says so or names no place. */
function errorPosition(text: string, message: string): number {
  const pos = /at position (\d+)/.exec(message);
  if (pos) return Number(pos[1]);
  const lc = /\(line (\d+) column (\d+)\)/.exec(message);
  if (lc) {
    const lines = text.split('\n');
    const line = Math.min(Number(lc[1]), lines.length);
    return lines.slice(0, line - 1).reduce((a, l) => a + l.length + 1, 0) + Number(lc[2]) - 1;
  }
  return text.length;
}

/**
 * Parses `input` when it is a string (a request as the seed passes it); other values are returned
 * as they are (an already parsed request).
 * @param what names the input in errors (e.g. `request`)
 * @throws BadRequestError `request is not valid JSON at position 12 (line 1, column 13): …`
 */
export function parseRequestJson(input: unknown, what = 'request'): unknown {
  if (typeof input !== 'string') return input;
  if (input.trim() === '') throw new BadRequestError(`${what} is empty (expected a JSON object)`);
  try {
    return JSON.parse(input) as unknown;
  } catch (e) {
    const message = (e as Error).message;
    const position = errorPosition(input, message);
    const { line, column } = lineColumn(input, position);
    const near = JSON.stringify(input.slice(Math.max(0, position - 10), position + 10));
    throw new BadRequestError(`${what} is not valid JSON at position ${position} (line ${line}, column ${column}, near ${near}): ${message}`, { cause: e });
  }
}
