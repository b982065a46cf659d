/**
 * The pixel cap in every format: width and height read from the header (PNG, JPEG, WebP, GIF) match
 * what sharp reports, and decodeImage refuses an image over `maxPixels` naming it and the cap, also
 * for formats whose size only sharp's header parse knows (TIFF, AVIF), and decodes one at the cap.
 */
import sharp from 'sharp';
import { decodeImage, sniffDimensions } from '../../src/images/index.js';

const W = 37;
const H = 23;

async function encoded(format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'avif', options: { channels?: 3 | 4; lossless?: boolean } = {}): Promise<Buffer> {
  const channels = options.channels ?? 3;
  const px = Buffer.alloc(W * H * channels);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) & 0xff;
  const img = sharp(px, { raw: { width: W, height: H, channels } });
  if (format === 'webp') return img.webp({ lossless: options.lossless ?? false }).toBuffer();
  return img.toFormat(format).toBuffer();
}

const CASES: Array<[string, () => Promise<Buffer>, boolean]> = [
  ['PNG', () => encoded('png'), true],
  ['JPEG', () => encoded('jpeg'), true],
  ['WebP lossy', () => encoded('webp'), true],
  ['WebP lossless', () => encoded('webp', { lossless: true }), true],
  ['WebP with alpha (extended)', () => encoded('webp', { channels: 4 }), true],
  ['GIF', () => encoded('gif'), true],
  ['TIFF', () => encoded('tiff'), false],
  ['AVIF', () => encoded('avif'), false],
];

describe.each(CASES)('%s', (name, make, sniffed) => {
  test(sniffed ? 'the header gives the size sharp reports' : 'the header is left to sharp', async () => {
    const bytes = await make();
    const meta = await sharp(bytes).metadata();
    expect({ width: meta.width, height: meta.height }).toEqual({ width: W, height: H });
    expect(sniffDimensions(bytes)).toEqual(sniffed ? { width: W, height: H } : undefined);
  });

  test('over the cap it is refused before decoding, at the cap it decodes', async () => {
    const bytes = await make();
    await expect(decodeImage(bytes, `x.${name}`, { maxPixels: W * H - 1 })).rejects.toThrow(
      `Image x.${name} (${W}x${H}): ${W * H} pixels is over the limit of ${W * H - 1} (maxImagePixels; raise it with --max-image-pixels or FLAME_MAX_IMAGE_PIXELS)`,
    );
    const img = await decodeImage(bytes, `x.${name}`, { maxPixels: W * H });
    expect([img.width, img.height]).toEqual([W, H]);
  });
});
