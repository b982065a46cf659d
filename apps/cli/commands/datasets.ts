/**
 * `flame datasets upload|progress|list|get|delete`: datasets in the hub's S3 storage (FLAME_HUB_S3_*).
 * Uploads are resumable: run the same upload again after an interruption (Ctrl-C included) and it
 * continues from what S3 already holds. What the S3 API lacks (ListParts, multipart) is said once
 * on stderr, with how the upload copes.
 */
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { resolveConfig } from '../../../src/config.js';
import { intOption } from '../../../src/validation.js';
import type { PartEvent } from '../../../src/datasets/multipart.js';
import { planDataset } from '../../../src/datasets/sources.js';
import { DatasetStore, type DatasetManifest } from '../../../src/datasets/store.js';
import { humanBytes, Interrupted, printResult } from '../output.js';

function openStore(): DatasetStore {
  return DatasetStore.fromConfig(resolveConfig());
}

function summary(m: DatasetManifest): Record<string, unknown> {
  return { id: m.id, name: m.name, kind: m.kind, status: m.status, size: m.size, created: m.created };
}

type UploadEvent = PartEvent & { file: string; unit: 'parts' | 'objects' };

/** Shows progress by part (one object) or by object (an image folder): a bar on a TTY, plain lines otherwise, nothing with --json. */
function progressReporter(json: boolean): { onPart(e: UploadEvent): void; stop(): void } {
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
            { format: `${e.file} [{bar}] {percentage}% | {value}/{total} ${e.unit} | {stored} of {size}`, hideCursor: true },
            cliProgress.Presets.shades_classic,
          );
          bar.start(e.parts, 0, { stored: humanBytes(0), size: humanBytes(e.totalBytes) });
        }
        bar.update(e.partNumber, { stored: humanBytes(e.storedBytes), size: humanBytes(e.totalBytes) });
      },
      stop: () => {
        bar?.stop();
        bar = undefined;
      },
    };
  }
  // without a TTY: every part, but for many small objects one line per 5 % (and the last)
  let shown = -1;
  return {
    onPart(e) {
      if (e.unit === 'objects') {
        const step = Math.floor((20 * e.partNumber) / e.parts);
        if (step === shown && e.partNumber < e.parts) return;
        shown = step;
        process.stdout.write(`${e.file}: ${e.partNumber}/${e.parts} objects stored (${humanBytes(e.storedBytes)} of ${humanBytes(e.totalBytes)})\n`);
        return;
      }
      process.stdout.write(`${e.file}: part ${e.partNumber}/${e.parts} ${e.sent ? 'sent' : 'already stored'} (${humanBytes(e.storedBytes)} of ${humanBytes(e.totalBytes)})\n`);
    },
    stop: () => undefined,
  };
}

/** Registers `flame datasets …`. */
export function registerDatasets(program: Command): void {
  const datasets = program.command('datasets').description('datasets in the hub\'s S3 storage (FLAME_HUB_S3_*): resumable upload, progress, list, get, delete');
  const json = () => Boolean(program.opts().json);

  datasets
    .command('upload')
    .description('upload an image folder (one sub-folder per class; one object per image, which an S3 data source reads), an IDX pair (--labels) or a CSV file; run again to resume an interrupted upload')
    .argument('<path>', 'image folder, IDX images file, or .csv file')
    .requiredOption('--name <name>', 'dataset name (an unfinished upload of this name from the same source is resumed)')
    .option('--labels <file>', 'IDX labels file (makes PATH the IDX images file)')
    .option('--part-size-mib <n>', 'multipart part size in MiB for a new upload (min 5)', intOption('--part-size-mib', { min: 5 }), 8)
    .addOption(new Option('--stop-after-parts <n>', 'stop after sending N parts (to try resuming)').argParser(intOption('--stop-after-parts')).hideHelp())
    .action(async (source: string, opts: { name: string; labels?: string; partSizeMib: number; stopAfterParts?: number }) => {
      const store = openStore();
      const plan = await planDataset(source, { labels: opts.labels });
      const controller = new AbortController();
      let interrupted = false;
      const onSigint = () => {
        interrupted = true;
        reporter.stop();
        process.stderr.write('\nstopping after the current part…\n');
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
            if (!json()) process.stdout.write(`${resumed ? 'resuming' : 'uploading'} dataset ${m.id} (${m.name}, ${m.kind}, ${humanBytes(m.size)})\n`);
          },
          onNotice: (message) => {
            reporter.stop();
            process.stderr.write(`note: ${message}\n`);
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
      } catch (e) {
        // Ctrl-C: what is stored stays stored; say how to go on, and exit as an interrupted command.
        if (interrupted) throw new Interrupted(`upload of "${opts.name}" stopped (${(e as Error).message}); run the same command again to resume`);
        throw e;
      } finally {
        reporter.stop();
        process.removeListener('SIGINT', onSigint);
      }
    });

  datasets
    .command('progress')
    .description('bytes and parts of a dataset stored so far (from S3\'s multipart state)')
    .argument('<dataset>', 'dataset id or name')
    .action(async (ref: string) => {
      const store = openStore();
      const p = await store.progress((await store.find(ref)).id);
      const percent = p.bytes_total === 0 ? 100 : Math.floor((1000 * p.bytes_stored) / p.bytes_total) / 10;
      printResult({ ...p, percent }, json());
    });

  datasets
    .command('list')
    .description('list datasets (finished and unfinished uploads)')
    .action(async () => {
      const list = await openStore().list();
      printResult(json() ? list : list.map((m) => ({ ...summary(m), size: humanBytes(m.size) })), json());
    });

  datasets
    .command('get')
    .description('show a dataset\'s manifest; for an image folder also the S3 data source that reads it (data_source)')
    .argument('<dataset>', 'dataset id or name')
    .action(async (ref: string) => {
      const store = openStore();
      const m = await store.find(ref);
      const where = store.imagesLocation(m);
      printResult(where ? { ...m, data_source: where } : m, json());
    });

  datasets
    .command('delete')
    .description('delete a dataset: its objects, its unfinished upload parts and its manifest')
    .argument('<dataset>', 'dataset id or name')
    .action(async (ref: string) => {
      const store = openStore();
      const m = await store.delete((await store.find(ref)).id);
      if (m.uploadsLeft) {
        process.stderr.write(`note: the S3 API does not implement AbortMultipartUpload: ${m.uploadsLeft} unfinished upload(s) keep their parts on the server\n`);
      }
      if (json()) printResult({ deleted: m.id, name: m.name }, true);
      else process.stdout.write(`deleted dataset ${m.id} (${m.name})\n`);
    });
}
