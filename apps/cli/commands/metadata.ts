/**
 * `flame metadata IMAGE [--json]`: seed 000's `get_image_metadata` as a command — channels, height,
 * width and per-channel mean and std on a 0–1 scale. A missing file exits 3 (not found), a file
 * that is not a readable image or has more pixels than `--max-image-pixels` exits 2 (bad request).
 */
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { BadRequestError, NotFoundError } from '../../../src/errors.js';
import { getImageMetadata } from '../../../src/images/index.js';
import { addLimitOptions, commandLimits, type LimitOptions } from '../limit-options.js';
import { formatTable, printResult } from '../output.js';

function numbers(v: number[]): string {
  return v.map((x) => x.toFixed(6)).join(' ');
}

/** Registers `flame metadata`. */
export function registerMetadata(program: Command): void {
  const command = program
    .command('metadata')
    .description('size, channels and per-channel mean/std (0–1) of an image (seed 000 get_image_metadata)')
    .argument('<image>', 'image file (PNG, JPEG, WebP, TIFF, GIF, ...)')
    .option('--json', 'print the seed-000 JSON object {channels, height, width, mean, std_dev}');
  addLimitOptions(command, ['maxImagePixels']).action(async (image: string, opts: { json?: boolean } & LimitOptions) => {
    const info = await stat(image).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new NotFoundError(`Image ${image} does not exist`, { cause: e });
      throw new BadRequestError(`Image ${image} cannot be read: ${e.message}`, { cause: e });
    });
    if (!info.isFile()) throw new BadRequestError(`Image ${image} is not a file`);
    const meta = await getImageMetadata(image, undefined, { maxPixels: commandLimits(opts).maxImagePixels });
    if (opts.json || program.opts().json) return printResult(meta, true);
    const rows = [
      { field: 'channels', value: String(meta.channels) },
      { field: 'height', value: String(meta.height) },
      { field: 'width', value: String(meta.width) },
      { field: 'mean', value: numbers(meta.mean) },
      { field: 'std_dev', value: numbers(meta.std_dev) },
    ];
    process.stdout.write(`${formatTable(rows)}\n`);
  });
}
