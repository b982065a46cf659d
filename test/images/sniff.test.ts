import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { getImageMetadata } from '../../src/images/metadata.js';
import { IMAGE_SIGNATURE_BYTES, sniffImageFormat, sniffSampleLayout, type SampleLayout } from '../../src/images/sniff.js';
import { pixels16, pixels8, rawImage } from './helpers.js';

/** What sharp's own header parse says, in the same terms. */
async function layoutFromSharp(bytes: Buffer): Promise<SampleLayout> {
  const m = await sharp(bytes).metadata();
  const grey = (m.channels ?? 3) <= 2;
  return { grey, alpha: grey && m.channels === 2, sixteenBit: m.depth === 'ushort' };
}

/** Insert a chunk into a PNG right after IHDR (length, type, data, CRC of type+data). */
function withChunk(png: Buffer, type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  body.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(body), 8 + data.length);
  return Buffer.concat([png.subarray(0, 33), chunk, png.subarray(33)]);
}

const g = (x: number, y: number, c: number) => (x * 40 + y * 9 + c * 70) % 256;
const cases: Array<[string, () => Promise<Buffer>]> = [
  ['grey PNG', () => rawImage(pixels8(6, 5, 1, g), 6, 5, 1).png().toBuffer()],
  ['grey+alpha PNG', () => rawImage(pixels8(6, 5, 2, g), 6, 5, 2).png().toBuffer()],
  ['RGB PNG', () => rawImage(pixels8(6, 5, 3, g), 6, 5, 3).png().toBuffer()],
  ['RGBA PNG', () => rawImage(pixels8(6, 5, 4, g), 6, 5, 4).png().toBuffer()],
  ['palette PNG', () => rawImage(pixels8(6, 5, 3, g), 6, 5, 3).png({ palette: true }).toBuffer()],
  ['16-bit grey PNG', () => rawImage(pixels16(6, 5, 1, (x) => x * 9000), 6, 5, 1).png().toBuffer()],
  ['16-bit RGBA PNG', () => rawImage(pixels16(6, 5, 4, (x, _y, c) => x * 9000 + c), 6, 5, 4).png().toBuffer()],
  ['grey JPEG', () => rawImage(pixels8(16, 8, 1, g), 16, 8, 1).jpeg().toBuffer()],
  ['RGB JPEG', () => rawImage(pixels8(16, 8, 3, g), 16, 8, 3).jpeg().toBuffer()],
  ['progressive JPEG', () => rawImage(pixels8(16, 8, 3, g), 16, 8, 3).jpeg({ progressive: true }).toBuffer()],
  ['JPEG with EXIF', () => rawImage(pixels8(16, 8, 3, g), 16, 8, 3).jpeg().withMetadata({ exif: { IFD0: { Copyright: 'flame' } } }).toBuffer()],
  ['RGBA WebP', () => rawImage(pixels8(6, 5, 4, g), 6, 5, 4).webp({ lossless: true }).toBuffer()],
  ['GIF', () => rawImage(pixels8(6, 5, 3, g), 6, 5, 3).gif().toBuffer()],
  [
    'grey PNG with a tRNS chunk',
    async () => withChunk(await rawImage(pixels8(6, 5, 1, g), 6, 5, 1).png().toBuffer(), 'tRNS', Buffer.from([0, 40])),
  ],
];

describe('sniffSampleLayout', () => {
  test.each(cases)('%s: same layout as sharp’s metadata, same decoded channels', async (_name, make) => {
    const bytes = await make();
    const sniffed = sniffSampleLayout(bytes);
    expect(sniffed).toBeDefined();
    const fromSharp = await layoutFromSharp(bytes);
    expect(sniffed!.grey).toBe(fromSharp.grey);
    expect(sniffed!.sixteenBit).toBe(fromSharp.sixteenBit);
    if (sniffed!.grey) expect(sniffed!.alpha).toBe(fromSharp.alpha);
    const meta = await getImageMetadata(bytes, _name);
    expect(meta.channels).toBe((await sharp(bytes).metadata()).channels);
  });

  test('grey+tRNS decodes to grey+alpha with the transparent grey at alpha 0', async () => {
    const px = pixels8(6, 5, 1, g);
    const bytes = withChunk(await rawImage(px, 6, 5, 1).png().toBuffer(), 'tRNS', Buffer.from([0, 40]));
    const meta = await getImageMetadata(bytes, 'trns.png');
    const transparent = Array.from(px).filter((v) => v === 40).length;
    expect(meta.channels).toBe(2);
    expect(meta.mean[1]).toBeCloseTo(1 - transparent / px.length, 12);
  });

  test('unknown formats and cut headers give undefined (sharp decides)', async () => {
    const tiff = await rawImage(pixels8(6, 5, 3, g), 6, 5, 3).tiff().toBuffer();
    expect(sniffSampleLayout(tiff)).toBeUndefined();
    const png = await rawImage(pixels8(6, 5, 1, g), 6, 5, 1).png().toBuffer();
    expect(sniffSampleLayout(png.subarray(0, 20))).toBeUndefined();
    const jpeg = await rawImage(pixels8(16, 8, 3, g), 16, 8, 3).jpeg().toBuffer();
    expect(sniffSampleLayout(jpeg.subarray(0, 6))).toBeUndefined();
    expect(sniffSampleLayout(Buffer.from('plain text'))).toBeUndefined();
  });
});

describe('sniffImageFormat', () => {
  it('names the format of every image kind sharp writes from its first bytes, as sharp names it', async () => {
    const img = () => rawImage(pixels8(6, 5, 3, g), 6, 5, 3);
    const encoded = await Promise.all([img().png().toBuffer(), img().jpeg().toBuffer(), img().webp().toBuffer(), img().gif().toBuffer(), img().tiff().toBuffer(), img().avif().toBuffer()]);
    for (const bytes of encoded) {
      const { format } = await sharp(bytes).metadata();
      expect(sniffImageFormat(bytes.subarray(0, IMAGE_SIGNATURE_BYTES))).toBe(format);
    }
  });

  it('names no format for text, keys, SVG, PDF, archives or too few bytes', () => {
    const texts = ['-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEI', 'ssh-ed25519 AAAAC3Nza', '<svg xmlns="http://www.w3.org/2000/svg"/>', '%PDF-1.7', 'PK\u0003\u0004', ''];
    for (const t of texts) expect(sniffImageFormat(Buffer.from(t, 'latin1'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from([0x89, 0x50, 0x4e]))).toBeUndefined();
  });
});
