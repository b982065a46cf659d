/**
 * Images: sharp-based decoding and statistics, exact pooling, the seed-000 dataset types, and
 * dataset builders for folders, IDX files, file data sources (S3, folders) and FHIR servers.
 *
 * @module flame-sdk/images
 */
export type * from './types.js';
export { decodeImage, imageOverPixelLimit, type DecodedImage, type DecodeOptions, type ImageSource } from './decode.js';
export {
  getImageMetadata,
  getImageMetadataFromBuffer,
  imageStats,
  imageStatsFromBuffer,
  imageStatsFromPixels,
  metadataFromStats,
} from './metadata.js';
export { emptySums, meanStd, mergeSums, pooledChannelCount, toChannelSums, widenSums } from './pooling.js';
export {
  assembleDataset,
  classFolderName,
  datasetFromFhir,
  datasetFromFiles,
  datasetFromFolder,
  datasetFromIdx,
  defaultFhirLabel,
  fhirImageAttachment,
  IDX_PATH_SEPARATOR,
  IMAGE_EXTENSIONS,
  parseIdxPath,
  type DatasetBuild,
  type DatasetEntry,
  type DatasetOptions,
  type FhirSourceDataset,
  type FileSourceDataset,
  type IdxDatasetSource,
  type SkipLogger,
  type SkippedFile,
} from './dataset.js';
export {
  encodeIdx,
  FASHION_MNIST_CLASSES,
  parseIdx,
  readIdx,
  readIdxImageSet,
  writeIdx,
  type IdxArray,
  type IdxData,
  type IdxImageSet,
  type IdxType,
} from './idx.js';
export { IMAGE_SIGNATURE_BYTES, sniffDimensions, sniffImageFormat, sniffSampleLayout, type ImageFormat, type SampleLayout } from './sniff.js';
export {
  datasetRoots,
  isInside,
  locateDatasetFile,
  maxImageFileBytes,
  readDatasetFile,
  realPathLoose,
  RefusedFileError,
  REFUSAL_TEXT,
  resolveInRoots,
  type DatasetFileContent,
  type DatasetFileLocation,
  type DatasetRoots,
  type RefusalReason,
  type RootLimits,
  type RootReadOptions,
} from './dataset-roots.js';
export { mapConcurrent, type Settled } from './concurrency.js';
export { fileUuid, FILE_UUID_NAMESPACE, uuidV5 } from './uuid.js';
