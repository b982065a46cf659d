/**
 * Thumbnails of flagged images for the report: small PNGs made with sharp from the image files,
 * inlined as `data:` URIs so the report needs no other file. A file that cannot be read here (it
 * lives on another node, or is gone) gets no thumbnail; the report shows a placeholder instead.
 */
import sharp from 'sharp';
import { mapConcurrent } from '../images/concurrency.js';

/** Default longest side of a thumbnail, in pixels. Smaller images are not enlarged (CSS scales them). */
export const THUMBNAIL_SIZE = 64;

/**
 * A PNG thumbnail of the image at `path` as a `data:image/png;base64,...` URI, or undefined when
 * it cannot be read or decoded.
 */
export async function thumbnailDataUri(path: string, size = THUMBNAIL_SIZE): Promise<string | undefined> {
  try {
    const png = await sharp(path, { failOn: 'truncated' })
      .resize(size, size, { fit: 'inside', withoutEnlargement: true })
      .png()
      .toBuffer();
    return `data:image/png;base64,${png.toString('base64')}`;
  } catch {
    return undefined;
  }
}

/** Thumbnails of many files (a few at a time): key → data URI, or undefined when unreadable. */
export async function thumbnails(paths: readonly string[], size = THUMBNAIL_SIZE, concurrency = 4): Promise<Map<string, string | undefined>> {
  const results = await mapConcurrent(paths, concurrency, (p) => thumbnailDataUri(p, size));
  return new Map(paths.map((p, i) => [p, results[i].ok ? results[i].value : undefined]));
}
