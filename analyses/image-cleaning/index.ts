/**
 * The cleaning analysis (seed 000's `start_cleaning_job`): turn a diagnosis result into the files to
 * relabel (`corrected`) and to drop (`removed`), and write a cleaned copy of the dataset. The rules
 * are in README.md beside this file.
 *
 * @module flame-sdk/image-cleaning
 */
export {
  clean,
  planCleaning,
  requestSource,
  sourcePath,
  responseOf,
  DEFAULT_MIN_CONFIDENCE,
  DEFAULT_MAX_GIVEN_CONFIDENCE,
  MISLABELED_TASK,
  type CleaningDecision,
  type CleaningOptions,
  type CleaningPlan,
  type DeferredFile,
} from './clean.js';
export { applyCleaning, MANIFEST_FILE, type ApplyOptions, type ApplyResult, type CleaningManifest, type ManifestFile, type RefusedFile } from './apply.js';
export { parseCleaningRequest, validateDataset, type CleaningTask, type ValidCleaningRequest } from './request.js';
export { buildDataset, fileSums, pooledStats } from './pooled.js';
