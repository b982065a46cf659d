/**
 * Thumbnails of flagged images for the report: small PNGs made with sharp from the image files,
 * inlined as `data:` URIs so the report needs no other file. A result names the files, and a result
 * is untrusted: only images inside the dataset roots the operator gave are read
 * (src/images/dataset-roots.ts), from the bytes that were checked. Any other file is refused unread;
 * a file that cannot be read here (it lives on another node, or is gone) gets no thumbnail either.
 * The report shows a placeholder for both.
 */
import sharp from 'sharp';
import { mapConcurrent } from '../images/concurrency.js';
import { readDatasetFile, RefusedFileError, type DatasetRoots, type RootLimits } from '../images/dataset-roots.js';
import { DEFAULT_LIMITS } from '../limits.js';

/** Default longest side of a thumbnail, in pixels. Smaller images are not enlarged (CSS scales them). */
export const THUMBNAIL_SIZE = 64;

/** A thumbnail as a `data:image/png;base64,...` URI, or why there is none. */
export type ThumbnailOutcome = { src: string } | { refused: RefusedFileError } | { unreadable: string };

/** Options of {@link thumbnailDataUri}. */
export interface ThumbnailOptions {
  /** Longest side in pixels (default {@link THUMBNAIL_SIZE}). */
  size?: number;
  /** `maxImagePixels` checked before decoding (default src/limits.ts' default). */
  limits?: RootLimits;
}

/**
 * A PNG thumbnail of the image `path` names (a file, or an IDX virtual path `images.idx#3`), when
 * it is an image inside `roots`; else the refusal (outside the roots, not a file, not an image, over
 * the pixel cap) or why it could not be read (missing here).
 */
export async function thumbnailDataUri(roots: DatasetRoots, path: string, options: ThumbnailOptions = {}): Promise<ThumbnailOutcome> {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const size = options.size ?? THUMBNAIL_SIZE;
  try {
    const content = await readDatasetFile(roots, path, { limits });
    const image =
      content.kind === 'file'
        ? sharp(content.bytes, { failOn: 'truncated', limitInputPixels: limits.maxImagePixels })
        : sharp(content.pixels, { raw: { width: content.width, height: content.height, channels: 1 } });
    const png = await image.resize(size, size, { fit: 'inside', withoutEnlargement: true }).png().toBuffer();
    return { src: `data:image/png;base64,${png.toString('base64')}` };
  } catch (e) {
    if (e instanceof RefusedFileError) return { refused: e };
    return { unreadable: e instanceof Error ? e.message : String(e) };
  }
}

/** Thumbnails of many files (a few at a time): path → {@link ThumbnailOutcome}. */
export async function thumbnails(roots: DatasetRoots, paths: readonly string[], options: ThumbnailOptions & { concurrency?: number } = {}): Promise<Map<string, ThumbnailOutcome>> {
  const results = await mapConcurrent(paths, options.concurrency ?? 4, (p) => thumbnailDataUri(roots, p, options));
  return new Map(paths.map((p, i) => [p, results[i].ok ? results[i].value : { unreadable: String(results[i].error) }]));
}
