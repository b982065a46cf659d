/**
 * Checks of the job requests (seed 000): the diagnosis request's are analyses/image-diagnosis'
 * (one validator for the job API, `diagnose()` and the CLI), the metadata request's and the job
 * arguments' are here. Files are checked for shape only; whether they exist is
 * {@link checkFiles}' business (a missing file is skipped and reported, it does not fail the job).
 */
import { stat } from 'node:fs/promises';
import { parseDiagnosisRequest, type DiagnosisJobRequest } from '../../analyses/image-diagnosis/index.js';
import { BadRequestError } from '../../src/errors.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { describeValue, isObject, nonEmptyString } from '../../src/validation.js';
import type { SkippedFile } from './events.js';

/** The user uuid a job is started for: a non-empty string. */
export function checkUser(userUuid: unknown): string {
  if (typeof userUuid !== 'string' || userUuid.trim() === '') throw new BadRequestError(`user uuid: expected a non-empty string, got ${describeValue(userUuid)}`);
  return userUuid;
}

/** The IPC socket address: a string, empty for none. */
export function checkSockAddr(sockAddr: unknown): string {
  if (sockAddr === undefined || sockAddr === null) return '';
  if (typeof sockAddr !== 'string') throw new BadRequestError(`sock_addr: expected a Unix socket path (a string), got ${describeValue(sockAddr)}`);
  return sockAddr;
}

/**
 * Checks a diagnosis request as the job API receives it (seed 000): `auto` and `dataset` required,
 * at most `options.maxClasses` classes (default `DEFAULT_LIMITS.maxClasses`). The checks themselves
 * are analyses/image-diagnosis' {@link parseDiagnosisRequest}, the same that `flame diagnose` runs.
 * @throws BadRequestError naming the first wrong field, or the cap
 */
export function checkDiagnosisRequest(v: unknown, options: { maxClasses?: number } = {}): DiagnosisJobRequest {
  return parseDiagnosisRequest(v, { needDataset: true, requireAuto: true, maxClasses: options.maxClasses ?? DEFAULT_LIMITS.maxClasses });
}

/** A `get_image_metadata` request: `{path}`. */
export interface MetadataJobRequest {
  /** Path of the image to read; non-empty. */
  path: string;
}

/** Checks a parsed metadata request: `path`, a non-empty string. */
export function checkMetadataRequest(v: unknown): MetadataJobRequest {
  if (!isObject(v)) throw new BadRequestError(`request: expected a JSON object {"path": ...}, got ${describeValue(v)}`);
  return { path: nonEmptyString(v.path, 'request.path', 'the path of an image file') };
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
