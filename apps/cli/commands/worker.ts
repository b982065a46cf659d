/**
 * `flame worker`: the seed-004 stdio worker. Packets on stdin/stdout, one JSON object per line;
 * diagnostics on stderr only (console output is redirected there while it runs).
 */
import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { BadRequestError } from '../../../src/errors.js';
import { intOption } from '../../../src/validation.js';
import { DEFAULT_LIMITS, overLimit } from '../../../src/limits.js';
import { CONV_SOFTMAX_DEFAULTS, ConvSoftmaxModel, OnnxClassifierModel, type SampleModel } from '../../protocol/model.js';
import { lineWriter, readLines } from '../../protocol/stdio.js';
import { ProtocolWorker } from '../../protocol/worker.js';
import { addLimitOptions, commandLimits, type LimitOptions } from '../limit-options.js';

/** Options of `flame worker`. */
export interface WorkerCommandOptions extends LimitOptions {
  classes?: string;
  model?: string;
  labels?: string;
  imageSize: number;
  channels: number;
  epochs: number;
  concurrency: number;
  chunkSize: number;
  ping: string[];
  quiet?: boolean;
}

/**
 * Refuses more than `maxClasses` names (counted first), empty and duplicate names; `what` names the
 * option (and file) in the error.
 */
function checkClassNames(names: string[], what: string, maxClasses: number): string[] {
  if (names.length > maxClasses) throw overLimit(`${what} declares too many classes`, names.length, 'maxClasses', maxClasses);
  if (names.some((n) => n === '')) throw new BadRequestError(`${what}: empty class name in "${names.join(',')}"`);
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new BadRequestError(`${what}: class "${n}" is given twice`);
    seen.add(n);
  }
  return names;
}

/** Splits a comma list into class names; refuses more than `maxClasses`, empty and duplicate names. */
export function parseClassList(list: string, what: string, maxClasses: number = DEFAULT_LIMITS.maxClasses): string[] {
  return checkClassNames(list.split(',').map((s) => s.trim()), what, maxClasses);
}

/**
 * `--labels` is a comma list, or the path of a file with one label per line if such a file exists.
 * A file's lines are taken whole, so a class name may contain a comma.
 */
async function readLabels(value: string, maxClasses: number): Promise<string[]> {
  const isFile = await stat(value).then((s) => s.isFile(), () => false);
  if (!isFile) return parseClassList(value, '--labels', maxClasses);
  const lines = (await readFile(value, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  return checkClassNames(lines, `--labels ${value}`, maxClasses);
}

/**
 * The model the options ask for: a user classifier (`--model` + `--labels`) or the built-in one
 * (`--classes`). The classes are counted against `maxClasses` before any model is opened or built.
 */
export async function createWorkerModel(o: WorkerCommandOptions, maxClasses: number = commandLimits(o).maxClasses): Promise<SampleModel> {
  if (o.model !== undefined) {
    if (o.classes !== undefined) throw new BadRequestError('give either --classes or --model with --labels, not both');
    if (o.labels === undefined) throw new BadRequestError('--model needs --labels: the class name of each model output, in order');
    const labels = await readLabels(o.labels, maxClasses);
    return OnnxClassifierModel.fromFile(o.model, labels);
  }
  if (o.labels !== undefined) throw new BadRequestError('--labels goes with --model; use --classes for the built-in model');
  if (o.classes === undefined) throw new BadRequestError('flame worker needs the classes: --classes a,b,c (or --model FILE.onnx --labels a,b,c)');
  if (o.channels !== 1 && o.channels !== 3) throw new BadRequestError(`--channels must be 1 or 3, got ${o.channels}`);
  return ConvSoftmaxModel.create({
    classes: parseClassList(o.classes, '--classes', maxClasses),
    input: { channels: o.channels, height: o.imageSize, width: o.imageSize },
    epochs: o.epochs,
  });
}

/** Runs the worker on stdin/stdout until stdin ends and every request has finished. */
export async function runStdioWorker(o: WorkerCommandOptions): Promise<void> {
  // stdout carries packets only: anything a library prints goes to stderr.
  console.log = console.error;
  console.info = console.error;
  console.debug = console.error;
  const log = o.quiet ? () => undefined : (m: string) => process.stderr.write(`flame worker: ${m}\n`);
  const limits = commandLimits(o);
  const model = await createWorkerModel(o, limits.maxClasses);
  const worker = new ProtocolWorker({
    model,
    send: lineWriter(process.stdout),
    log,
    concurrency: o.concurrency,
    chunkSize: o.chunkSize,
    maxClasses: limits.maxClasses,
    maxImagePixels: limits.maxImagePixels,
  });
  // A reader that went away cannot be answered any more.
  process.stdout.on('error', (e) => {
    log(`stdout failed (${e.message}); exiting`);
    process.exit(1);
  });
  log(`ready: classes ${model.classes.map((c) => JSON.stringify(c)).join(', ')}${model.trainable ? '' : ` (fixed model ${o.model})`}`);
  for (const message of o.ping) {
    worker.ping(message).then(
      () => log(`pong received for "${message}"`),
      (e: Error) => log(`ping "${message}" failed: ${e.message}`),
    );
  }
  await readLines(process.stdin, (line) => worker.handleLine(line), {
    maxLineBytes: limits.maxLineBytes,
    onOverlong: (max) => worker.rejectOverlongLine(max),
  });
  await worker.idle();
  await worker.close();
}

/** Registers `flame worker`. */
export function registerWorker(program: Command): void {
  const worker = program
    .command('worker')
    .description('seed-004 ML worker: JSON packets on stdin/stdout (one per line), logs on stderr')
    .option('--classes <list>', 'comma-separated class names that load-samples accepts (built-in model)')
    .option('--model <file>', 'a user ONNX classifier (N×C×H×W pixels 0–1 → N×K scores) instead of training')
    .option('--labels <list|file>', 'with --model: the K class names, comma-separated or one per line in a file')
    .option('--image-size <n>', 'built-in model: side images are resized to', intOption('--image-size'), CONV_SOFTMAX_DEFAULTS.input.width)
    .option('--channels <n>', 'built-in model: 1 (grey) or 3 (colour)', intOption('--channels'), 1)
    .option('--epochs <n>', 'built-in model: passes over the samples per training', intOption('--epochs'), CONV_SOFTMAX_DEFAULTS.epochs)
    .option('--concurrency <n>', 'images decoded at once per request', intOption('--concurrency'), 4)
    .option('--chunk-size <n>', 'files per batch and per progress packet', intOption('--chunk-size'), 256)
    .option('--ping <message>', 'ping the other side at start, once per --ping (a wrong pong is reported as wrong-pong)', (v: string, all: string[]) => [...all, v], [])
    .option('--quiet', 'no diagnostics on stderr');
  addLimitOptions(worker, ['maxClasses', 'maxImagePixels', 'maxLineBytes'], { maxClasses: 'most class names --classes or --labels may give' }).action((opts: WorkerCommandOptions) => runStdioWorker(opts));
}
