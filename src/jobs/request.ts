/**
 * Checks of the job requests (seed 000), stricter than the analyses' own: every field the seed
 * lists is checked, and every error names the field as a path into the request and says what was
 * expected, e.g. `request.dataset.class_files["Bag"]["/d/1.png"].uuid: missing (a non-empty string)`.
 * Files are checked for shape only here; whether they exist is {@link checkFiles}' business (a
 * missing file is skipped and reported, it does not fail the job).
 */
import { stat } from 'node:fs/promises';
import { parseDiagnosisRequest, DIAGNOSIS_TASKS, type DiagnosisJobRequest } from '../../analyses/image-diagnosis/index.js';
import { BadRequestError } from '../errors.js';
import type { SkippedFile } from './events.js';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(where: string, problem: string): never {
  throw new BadRequestError(`${where}: ${problem}`);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

function numberArray(v: unknown, where: string, length?: number): void {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) fail(where, `expected an array of numbers, got ${kindOf(v)}`);
  if (length !== undefined && v.length !== length) fail(where, `expected ${length} value(s) (one per channel), got ${v.length}`);
}

function positiveInt(v: unknown, where: string, max?: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || (max !== undefined && v > max)) {
    fail(where, `expected an integer from 1${max !== undefined ? ` to ${max}` : ''}, got ${kindOf(v)}`);
  }
  return v;
}

/** The user uuid a job is started for: a non-empty string. */
export function checkUser(userUuid: unknown): string {
  if (typeof userUuid !== 'string' || userUuid.trim() === '') throw new BadRequestError(`user uuid: expected a non-empty string, got ${kindOf(userUuid)}`);
  return userUuid;
}

/** The IPC socket address: a string, empty for none. */
export function checkSockAddr(sockAddr: unknown): string {
  if (sockAddr === undefined || sockAddr === null) return '';
  if (typeof sockAddr !== 'string') throw new BadRequestError(`sock_addr: expected a Unix socket path (a string), got ${kindOf(sockAddr)}`);
  return sockAddr;
}

function checkFile(f: unknown, where: string): void {
  if (!isObject(f)) fail(where, `expected a file object {uuid, width, height, channels, mean, std_dev}, got ${kindOf(f)}`);
  if (typeof f.uuid !== 'string' || f.uuid === '') fail(`${where}.uuid`, f.uuid === undefined ? 'missing (a non-empty string)' : `expected a non-empty string, got ${kindOf(f.uuid)}`);
  if (f.width !== undefined) positiveInt(f.width, `${where}.width`);
  if (f.height !== undefined) positiveInt(f.height, `${where}.height`);
  const channels = f.channels === undefined ? undefined : positiveInt(f.channels, `${where}.channels`, 4);
  if (f.mean !== undefined) numberArray(f.mean, `${where}.mean`, channels);
  if (f.std_dev !== undefined) numberArray(f.std_dev, `${where}.std_dev`, channels);
}

/** Checks a seed-000 `dataset` (classes, class_files keyed by known classes, one uuid per file). */
function checkDataset(ds: unknown, where: string): void {
  if (ds === undefined) fail(where, 'missing (an object {classes, mean, std_dev, class_files})');
  if (!isObject(ds)) fail(where, `expected an object {classes, mean, std_dev, class_files}, got ${kindOf(ds)}`);
  const { classes } = ds;
  if (!Array.isArray(classes) || classes.length === 0) fail(`${where}.classes`, `expected a non-empty array of class names, got ${classes === undefined ? 'nothing' : kindOf(classes)}`);
  classes.forEach((c, i) => {
    if (typeof c !== 'string' || c === '') fail(`${where}.classes[${i}]`, `expected a non-empty class name, got ${kindOf(c)}`);
    if (classes.indexOf(c) !== i) fail(`${where}.classes[${i}]`, `class ${JSON.stringify(c)} is listed twice`);
  });
  if (ds.mean !== undefined) numberArray(ds.mean, `${where}.mean`);
  if (ds.std_dev !== undefined) numberArray(ds.std_dev, `${where}.std_dev`);
  if (!isObject(ds.class_files)) fail(`${where}.class_files`, `expected an object class → {path → file}, got ${ds.class_files === undefined ? 'nothing' : kindOf(ds.class_files)}`);
  const uuids = new Map<string, string>();
  for (const [cls, files] of Object.entries(ds.class_files)) {
    const cw = `${where}.class_files[${JSON.stringify(cls)}]`;
    if (!classes.includes(cls)) fail(cw, `class ${JSON.stringify(cls)} is not in ${where}.classes (${classes.map((c) => JSON.stringify(c)).join(', ')})`);
    if (!isObject(files)) fail(cw, `expected an object path → file, got ${kindOf(files)}`);
    for (const [p, f] of Object.entries(files)) {
      const fw = `${cw}[${JSON.stringify(p)}]`;
      checkFile(f, fw);
      const uuid = (f as Json).uuid as string;
      const other = uuids.get(uuid);
      if (other !== undefined) fail(`${fw}.uuid`, `${JSON.stringify(uuid)} is also the uuid of ${other}`);
      uuids.set(uuid, fw);
    }
  }
}

/**
 * Checks a parsed diagnosis request field by field: `auto` (true or false), `dataset_uuid`,
 * `dataset` (required: the job runs on this machine's files), `tasks` (an array of `{name}` with
 * known names; may be left out or empty only with `auto: true`, meaning every task).
 * @throws BadRequestError naming the first wrong field
 */
export function checkDiagnosisRequest(v: unknown): DiagnosisJobRequest {
  if (!isObject(v)) fail('request', `expected a JSON object {auto, dataset_uuid, dataset, tasks}, got ${kindOf(v)}`);
  if (typeof v.auto !== 'boolean') fail('request.auto', v.auto === undefined ? 'missing (true or false)' : `expected true or false, got ${kindOf(v.auto)}`);
  if (typeof v.dataset_uuid !== 'string' || v.dataset_uuid === '') {
    fail('request.dataset_uuid', v.dataset_uuid === undefined ? 'missing (a non-empty string)' : `expected a non-empty string, got ${kindOf(v.dataset_uuid)}`);
  }
  checkDataset(v.dataset, 'request.dataset');
  if (v.tasks !== undefined) {
    if (!Array.isArray(v.tasks)) fail('request.tasks', `expected an array of {"name": ...}, got ${kindOf(v.tasks)}`);
    const seen = new Set<string>();
    v.tasks.forEach((t, i) => {
      const w = `request.tasks[${i}]`;
      if (!isObject(t)) fail(w, `expected an object {"name": ...}, got ${kindOf(t)}`);
      if (typeof t.name !== 'string') fail(`${w}.name`, t.name === undefined ? `missing (one of ${DIAGNOSIS_TASKS.join(', ')})` : `expected a task name, got ${kindOf(t.name)}`);
      if (!(DIAGNOSIS_TASKS as readonly string[]).includes(t.name)) fail(`${w}.name`, `unknown task ${JSON.stringify(t.name)} (known: ${DIAGNOSIS_TASKS.join(', ')})`);
      if (seen.has(t.name)) fail(`${w}.name`, `task ${JSON.stringify(t.name)} is listed twice`);
      seen.add(t.name);
    });
  }
  if (!v.auto && (!Array.isArray(v.tasks) || v.tasks.length === 0)) fail('request.tasks', 'missing or empty: list tasks, or set "auto": true to run every task');
  return parseDiagnosisRequest(v, { needDataset: true });
}

/** A `get_image_metadata` request: `{path}`. */
export interface MetadataJobRequest {
  path: string;
}

/** Checks a parsed metadata request: `path`, a non-empty string. */
export function checkMetadataRequest(v: unknown): MetadataJobRequest {
  if (!isObject(v)) fail('request', `expected a JSON object {"path": ...}, got ${kindOf(v)}`);
  if (typeof v.path !== 'string' || v.path === '') fail('request.path', v.path === undefined ? 'missing (the path of an image file)' : `expected the path of an image file, got ${kindOf(v.path)}`);
  return { path: v.path };
}

/** Why `path` cannot be read as an image file, or undefined when it is a file. */
export async function fileProblem(path: string): Promise<string | undefined> {
  if (path === '') return 'empty path';
  try {
    const info = await stat(path);
    return info.isFile() ? undefined : 'is not a file';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? (e as Error).message})`;
  }
}

/** A file listed in a request, for {@link checkFiles}. */
export interface ListedFile {
  path: string;
  uuid?: string;
  /** Where the request lists it (a class, a task), for the duplicate message. */
  where: string;
}

/**
 * Which listed files cannot be used: paths that do not exist or are not files, and a path listed
 * again (the first listing is kept). Checked `concurrency` at a time; `onChecked(done, total)`
 * after each.
 */
export async function checkFiles(
  files: readonly ListedFile[],
  options: { concurrency?: number; onChecked?: (done: number, total: number) => void } = {},
): Promise<Map<number, SkippedFile>> {
  const out = new Map<number, SkippedFile>();
  const first = new Map<string, ListedFile>();
  files.forEach((f, i) => {
    const prev = first.get(f.path);
    if (prev) out.set(i, { path: f.path, ...(f.uuid ? { uuid: f.uuid } : {}), error: `listed again in ${f.where} (first in ${prev.where}); kept the first` });
    else first.set(f.path, f);
  });
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const i = next++;
      if (!out.has(i)) {
        const problem = await fileProblem(files[i].path);
        if (problem) out.set(i, { path: files[i].path, ...(files[i].uuid ? { uuid: files[i].uuid } : {}), error: `${files[i].path} ${problem}` });
      }
      options.onChecked?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 16, files.length)) }, worker));
  return out;
}
