/**
 * The ground truth a diagnosis or cleaning result is checked against: which files are mislabeled
 * (with their true class) and which have bad lighting. Two spellings are accepted (docs/check.md):
 *
 *   { "mislabeled": { "<path>": { "true_class": "...", "given_class": "..." } },
 *     "lighting":   { "<path>": "dark" | "bright" },
 *     "files": 300 | ["<path>", ...] }                         (optional: the whole population)
 *
 *   { "flipped": [{ "path": "...", "true_class": "...", "labelled_class": "..." }],
 *     "darkened": ["<path>", ...], "brightened": ["<path>", ...], "files": 300 }
 *                                                            (data/sample/truth.json's spelling)
 *
 * Paths are matched to a result's file keys by whole trailing path segments, so `node-a/Bag/1.png`
 * in the reference matches `/data/node-a/Bag/1.png` or `Bag/1.png` in a result.
 */
import { BadRequestError } from '../errors.js';
import { isObject, nonEmptyString } from '../validation.js';

/** A mislabeled file's truth. */
export interface MislabeledTruth {
  true_class?: string;
  given_class?: string;
}

/** A parsed reference. */
export interface Reference {
  /** path → truth, for files filed under a wrong class. */
  mislabeled: Map<string, MislabeledTruth>;
  /** path → `dark`, `bright` (or another word), for files with bad lighting. */
  lighting: Map<string, string>;
  /** Number of files in the dataset, when the reference says. */
  fileCount?: number;
  /** Every file of the dataset, when the reference lists them. */
  files?: string[];
}

function optStr(v: unknown, where: string): string | undefined {
  return v === undefined || v === null ? undefined : nonEmptyString(v, where);
}

/** Parses and validates a reference; `name` (e.g. the file) prefixes every error. */
export function parseReference(raw: unknown, name: string): Reference {
  if (!isObject(raw)) throw new BadRequestError(`reference ${name}: expected a JSON object`);
  const ref: Reference = { mislabeled: new Map(), lighting: new Map() };
  const known = ['mislabeled', 'lighting', 'flipped', 'darkened', 'brightened', 'files'];
  if (!known.some((k) => k in raw)) {
    throw new BadRequestError(`reference ${name}: has none of ${known.join(', ')} (see docs/check.md for the format)`);
  }

  if (raw.mislabeled !== undefined) {
    if (!isObject(raw.mislabeled)) throw new BadRequestError(`reference ${name}: "mislabeled" must map paths to {true_class, given_class}`);
    for (const [p, t] of Object.entries(raw.mislabeled)) {
      const where = `reference ${name}: mislabeled[${JSON.stringify(p)}]`;
      if (!isObject(t)) throw new BadRequestError(`${where}: expected {"true_class": ..., "given_class": ...}`);
      ref.mislabeled.set(p, { true_class: optStr(t.true_class, `${where}.true_class`), given_class: optStr(t.given_class, `${where}.given_class`) });
    }
  }
  if (raw.flipped !== undefined) {
    if (!Array.isArray(raw.flipped)) throw new BadRequestError(`reference ${name}: "flipped" must be a list of {path, true_class, labelled_class}`);
    raw.flipped.forEach((t: unknown, i) => {
      const where = `reference ${name}: flipped[${i}]`;
      if (!isObject(t)) throw new BadRequestError(`${where}: expected {"path", "true_class", "labelled_class"}`);
      ref.mislabeled.set(nonEmptyString(t.path, `${where}.path`), {
        true_class: optStr(t.true_class, `${where}.true_class`),
        given_class: optStr(t.labelled_class ?? t.given_class, `${where}.labelled_class`),
      });
    });
  }
  if (raw.lighting !== undefined) {
    if (!isObject(raw.lighting)) throw new BadRequestError(`reference ${name}: "lighting" must map paths to "dark" or "bright"`);
    for (const [p, v] of Object.entries(raw.lighting)) ref.lighting.set(p, nonEmptyString(v, `reference ${name}: lighting[${JSON.stringify(p)}]`));
  }
  for (const [field, word] of [
    ['darkened', 'dark'],
    ['brightened', 'bright'],
  ] as const) {
    const list = raw[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new BadRequestError(`reference ${name}: "${field}" must be a list of paths`);
    list.forEach((p: unknown, i) => ref.lighting.set(nonEmptyString(p, `reference ${name}: ${field}[${i}]`), word));
  }
  if (raw.files !== undefined) {
    if (typeof raw.files === 'number') {
      if (!Number.isInteger(raw.files) || raw.files < 0) throw new BadRequestError(`reference ${name}: "files" must be a whole number >= 0 or a list of paths`);
      ref.fileCount = raw.files;
    } else if (Array.isArray(raw.files)) {
      ref.files = raw.files.map((p: unknown, i) => nonEmptyString(p, `reference ${name}: files[${i}]`));
      ref.fileCount = new Set(ref.files).size;
    } else {
      throw new BadRequestError(`reference ${name}: "files" must be a whole number or a list of paths`);
    }
  }
  return ref;
}

function segments(p: string): string[] {
  return p.replace(/\\/g, '/').split('/').filter((s) => s !== '' && s !== '.');
}

/**
 * Maps result file keys to reference paths by whole trailing segments: a key matches a reference
 * path when one ends with the other. A key matching several reference paths is ambiguous.
 */
export class PathMatcher {
  private readonly full = new Map<string, string>();
  /** Every trailing sub-path of a reference path → the reference paths ending so. */
  private readonly suffixes = new Map<string, string[]>();

  constructor(paths: Iterable<string>) {
    for (const p of paths) {
      const segs = segments(p);
      this.full.set(segs.join('/'), p);
      for (let i = 0; i < segs.length; i++) {
        const s = segs.slice(i).join('/');
        const list = this.suffixes.get(s) ?? [];
        if (!list.includes(p)) list.push(p);
        this.suffixes.set(s, list);
      }
    }
  }

  /** The reference path `key` stands for, `undefined` if none, or `ambiguous` listing candidates. */
  match(key: string): { path?: string; ambiguous?: string[] } {
    const segs = segments(key);
    // the key is as long as or longer than a reference path: the longest trailing match wins
    for (let i = 0; i < segs.length; i++) {
      const hit = this.full.get(segs.slice(i).join('/'));
      if (hit !== undefined) return { path: hit };
    }
    // the key is shorter (e.g. without the node folder): it must end exactly one reference path
    const candidates = this.suffixes.get(segs.join('/')) ?? [];
    if (candidates.length === 1) return { path: candidates[0] };
    if (candidates.length > 1) return { ambiguous: candidates };
    return {};
  }
}
