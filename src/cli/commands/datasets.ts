/**
 * `flame datasets upload|progress|list|get|delete`: datasets in the hub's S3 storage (FLAME_HUB_S3_*).
 * Uploads are resumable: run the same upload again after an interruption (Ctrl-C included) and it
 * continues from the parts S3 already holds.
 */
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { resolveConfig } from '../../config.js';
import { BadRequestError } from '../../errors.js';
import type { PartEvent } from '../../datasets/multipart.js';
import { planDataset } from '../../datasets/sources.js';
import { DatasetStore, type DatasetManifest } from '../../datasets/store.js';
import { printResult } from '../output.js';

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function openStore(): DatasetStore {
  return DatasetStore.fromConfig(resolveConfig());
}

function summary(m: DatasetManifest): Record<string, unknown> {
  return { id: m.id, name: m.name, kind: m.kind, status: m.status, size: m.size, created: m.created };
}

/** Shows part progress: a bar on a TTY, one line per part otherwise, nothing with --json. */
function progressReporter(json: boolean): { onPart(e: PartEvent & { file: string }): void; stop(): void } {
  if (json) return { onPart: () => undefined, stop: () => undefined };
  if (process.stdout.isTTY) {
    let bar: cliProgress.SingleBar | undefined;
    let file = '';
    return {
      onPart(e) {
        if (!bar || file !== e.file) {
          bar?.stop();
          file = e.file;
          bar = new cliProgress.SingleBar(
            { format: `${e.file} [{bar}] {percentage}% | {value}/{total} parts | {stored} of {size}`, hideCursor: true },
            cliProgress.Presets.shades_classic,
          );
          bar.start(e.parts, 0, { stored: mib(0), size: mib(e.totalBytes) });
        }
        bar.update(e.partNumber, { stored: mib(e.storedBytes), size: mib(e.totalBytes) });
      },
      stop: () => bar?.stop(),
    };
  }
  return {
    onPart(e) {
      process.stdout.write(`${e.file}: part ${e.partNumber}/${e.parts} ${e.sent ? 'sent' : 'already stored'} (${mib(e.storedBytes)} of ${mib(e.totalBytes)})\n`);
    },
    stop: () => undefined,
  };
}

function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new BadRequestError(`${flag}: expected a whole number >= 1, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** Registers `flame datasets …`. */
export function registerDatasets(program: Command): void {
  const datasets = program.command('datasets').description('datasets in the hub\'s S3 storage (FLAME_HUB_S3_*): resumable upload, progress, list, get, delete');
  const json = () => Boolean(program.opts().json);

  datasets
    .command('upload')
    .description('upload an image folder (one sub-folder per class), an IDX pair (--labels) or a CSV file; run again to resume an interrupted upload')
    .argument('<path>', 'image folder, IDX images file, or .csv file')
    .requiredOption('--name <name>', 'dataset name (an unfinished upload of this name from the same source is resumed)')
    .option('--labels <file>', 'IDX labels file (makes PATH the IDX images file)')
    .option('--part-size-mib <n>', 'multipart part size in MiB for a new upload (min 5)', positiveInt('--part-size-mib'), 8)
    .addOption(new Option('--stop-after-parts <n>', 'stop after sending N parts (to try resuming)').argParser(positiveInt('--stop-after-parts')).hideHelp())
    .action(async (source: string, opts: { name: string; labels?: string; partSizeMib: number; stopAfterParts?: number }) => {
      const store = openStore();
      const plan = await planDataset(source, { labels: opts.labels });
      const controller = new AbortController();
      const onSigint = () => {
        process.stderr.write('\nstopping after the current part; run the same command again to resume\n');
        controller.abort();
      };
      process.once('SIGINT', onSigint);
      const reporter = progressReporter(json());
      let sentNow = 0;
      try {
        const result = await store.upload(plan, {
          name: opts.name,
          partSize: opts.partSizeMib * 1024 * 1024,
          signal: controller.signal,
          onStart: (m, resumed) => {
            if (!json()) process.stdout.write(`${resumed ? 'resuming' : 'uploading'} dataset ${m.id} (${m.name}, ${m.kind}, ${mib(m.size)})\n`);
          },
          onPart: (e) => {
            reporter.onPart(e);
            if (e.sent) sentNow++;
            if (opts.stopAfterParts !== undefined && sentNow >= opts.stopAfterParts) controller.abort();
          },
        });
        reporter.stop();
        const m = result.manifest;
        printResult(
          { ...summary(m), resumed: result.resumed, parts_sent: result.partsSent, parts_reused: result.partsReused, files: m.files.map((f) => f.name) },
          json(),
        );
      } finally {
        reporter.stop();
        process.removeListener('SIGINT', onSigint);
      }
    });

  datasets
    .command('progress')
    .description('bytes and parts of a dataset stored so far (from S3\'s multipart state)')
    .argument('<id>', 'dataset id')
    .action(async (id: string) => {
      const p = await openStore().progress(id);
      const percent = p.bytes_total === 0 ? 100 : Math.floor((1000 * p.bytes_stored) / p.bytes_total) / 10;
      printResult({ ...p, percent }, json());
    });

  datasets
    .command('list')
    .description('list datasets (finished and unfinished uploads)')
    .action(async () => {
      const list = await openStore().list();
      printResult(json() ? list : list.map(summary), json());
    });

  datasets
    .command('get')
    .description('show a dataset\'s manifest')
    .argument('<id>', 'dataset id')
    .action(async (id: string) => printResult(await openStore().get(id), json()));

  datasets
    .command('delete')
    .description('delete a dataset: its objects, its unfinished upload parts and its manifest')
    .argument('<id>', 'dataset id')
    .action(async (id: string) => {
      const m = await openStore().delete(id);
      if (json()) printResult({ deleted: m.id, name: m.name }, true);
      else process.stdout.write(`deleted dataset ${m.id} (${m.name})\n`);
    });
}
