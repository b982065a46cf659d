/**
 * Seed 000's `get_image_metadata(uuid, request, sock_addr)`: request `{"path": ...}`, output
 * `{channels, height, width, mean, std_dev}` (per-channel, 0–1 scale). One file, so a path that
 * does not exist, or an image over the `maxImagePixels` cap (read from its header, before decoding),
 * fails the job (NotFoundError / BadRequestError naming `request.path`) after a `failed` event.
 */
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { getImageMetadata as imageMetadata, type ImageMetadata } from '../../src/images/index.js';
import { parseRequestJson } from '../../src/json-text.js';
import { checkMetadataRequest, fileProblem } from './request.js';
import { jobLimits, runJob, type JobOptions } from './run.js';

/** The task name of the metadata job's events. */
export const METADATA_TASK = 'metadata';

/**
 * The metadata job, typed: `request` as JSON text or a parsed object; returns the seed-000 object.
 * @throws BadRequestError naming the request field; NotFoundError when `request.path` does not exist
 */
export function runImageMetadataJob(userUuid: string, request: unknown, sockAddr: string, options: JobOptions = {}): Promise<ImageMetadata> {
  return runJob('metadata', userUuid, sockAddr, options, async (reporter) => {
    const { maxImagePixels } = jobLimits(options);
    const req = checkMetadataRequest(parseRequestJson(request));
    reporter.started([METADATA_TASK]);
    const problem = await fileProblem(req.path);
    if (problem === 'does not exist') throw new NotFoundError(`request.path: ${req.path} does not exist`);
    if (problem) throw new BadRequestError(`request.path: ${req.path} ${problem}`);
    reporter.progress(METADATA_TASK, 0.5, 'decode');
    let meta: ImageMetadata;
    try {
      meta = await imageMetadata(req.path, undefined, { maxPixels: maxImagePixels });
    } catch (e) {
      if (e instanceof BadRequestError) throw new BadRequestError(`request.path: ${e.message}`, { cause: e });
      throw e;
    }
    const result: ImageMetadata = { channels: meta.channels, height: meta.height, width: meta.width, mean: meta.mean, std_dev: meta.std_dev };
    reporter.taskResult(METADATA_TASK, result);
    return result;
  });
}

/**
 * Seed 000's `get_image_metadata`: `request` is the JSON text `{"path": ...}`, the result the JSON
 * text of `{channels, height, width, mean, std_dev}`. Named so as not to clash with
 * src/images' `getImageMetadata(path)`; apps/jobs/index.ts also exports it as `getImageMetadata`.
 */
export async function getImageMetadataJob(userUuid: string, request: string, sockAddr: string, options: JobOptions = {}): Promise<string> {
  return JSON.stringify(await runImageMetadataJob(userUuid, request, sockAddr, options));
}
