/**
 * The job API of seed 000 (`start_diagnosis_job`, `start_cleaning_job`, `get_image_metadata`):
 * JSON request text in, JSON output text back, progress as line-delimited JSON on a Unix socket.
 * Each has a typed variant taking a request object (or text) and returning the output object.
 * See docs/jobs.md for the requests, outputs and the progress events.
 *
 * `getImageMetadata` here is the job (`(userUuid, request, sockAddr)`); the package root exports it
 * as `getImageMetadataJob` only, since src/images' `getImageMetadata(path)` has the plain name.
 *
 * @module flame-sdk/jobs
 */
export { startDiagnosisJob, runDiagnosisJob, LOCAL_NODE, type DiagnosisJobOptions, type DiagnosisJobResult, type DiagnosisSkippedFile } from './diagnosis.js';
export { startCleaningJob, runCleaningJob, CLEANING_TASK, type CleaningJobOptions, type CleaningJobResult } from './cleaning.js';
export { getImageMetadataJob, getImageMetadataJob as getImageMetadata, runImageMetadataJob, METADATA_TASK } from './metadata.js';
export { JobReporter, JOB_TASK, type JobEventSink, type JobEventType, type JobIdentity, type JobKind, type JobProgressEvent, type SkippedFile } from './events.js';
export { ProgressSocket } from './progress-socket.js';
export { runJob, type JobOptions } from './run.js';
export { checkDiagnosisRequest, checkMetadataRequest, type MetadataJobRequest } from './request.js';
export { parseRequestJson } from '../../src/json-text.js';
