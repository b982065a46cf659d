/**
 * Build the seed-000 `dataset` object (classes, pooled mean/std, files per class with uuid and
 * metadata) from the places images live: a local folder of class sub-folders, an IDX pair, a file
 * data source (S3 prefix or folder with class sub-prefixes) or a FHIR server.
 *
 * One module a source (`dataset-folder.ts`, `dataset-idx.ts`, `dataset-files.ts`, `dataset-fhir.ts`),
 * all ending in the assembly of `dataset-assembly.ts`; this module gathers them.
 */
export {
  assembleDataset,
  IMAGE_EXTENSIONS,
  type DatasetBuild,
  type DatasetEntry,
  type DatasetOptions,
  type SkipLogger,
  type SkippedFile,
} from './dataset-assembly.js';
export { datasetFromFolder } from './dataset-folder.js';
export { classFolderName, datasetFromIdx, IDX_PATH_SEPARATOR, parseIdxPath, type IdxDatasetSource } from './dataset-idx.js';
export { datasetFromFiles, type FileSourceDataset } from './dataset-files.js';
export { datasetFromFhir, defaultFhirLabel, fhirImageAttachment, type FhirSourceDataset } from './dataset-fhir.js';
