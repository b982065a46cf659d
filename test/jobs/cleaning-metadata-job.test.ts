/**
 * startCleaningJob and getImageMetadataJob with a real Unix socket listener: the seed-000 outputs
 * field for field, a listed file that does not exist skipped (not removed), and the events.
 */
import { getImageMetadata as imageMetadata, type Dataset, type DatasetFile } from '../../src/images/index.js';
import { getImageMetadata, runCleaningJob, startCleaningJob, type CleaningJobResult, type JobProgressEvent } from '../../apps/jobs/index.js';
import { sampleDataset } from './fixture.js';
import { listen } from './listener.js';

const MISSING = '/nonexistent/flame-job-test/gone.png';

let classes: string[];
let files: Array<{ path: string; cls: string; file: DatasetFile }>;
beforeAll(async () => {
  const ds = await sampleDataset(1);
  classes = ds.classes;
  files = ['Bag', 'Coat', 'Dress'].map((cls) => {
    const [path, file] = Object.entries(ds.class_files[cls])[0];
    return { path, cls, file };
  });
});

function dataset(entries: Array<[string, string, DatasetFile]>): Dataset {
  const class_files: Dataset['class_files'] = Object.fromEntries(classes.map((c) => [c, {}]));
  for (const [cls, path, file] of entries) class_files[cls][path] = file;
  return { classes, mean: [0.5], std_dev: [0.2], class_files };
}

/** Bag file: mislabeled, suggested Coat at 0.91; Coat file: too dark; Dress file: fine; the missing file: too bright. */
function cleaningRequest(): Record<string, unknown> {
  const [bag, coat, dress] = files;
  const vector = classes.map((c) => (c === 'Coat' ? 0.91 : 0.01));
  const missing: DatasetFile = { uuid: 'gone', width: 28, height: 28, channels: 1, mean: [0.9], std_dev: [0.1], original_class: 'Dress', current_class: 'Dress' };
  const as = (f: (typeof files)[number], current: string, extra: Partial<DatasetFile> = {}): DatasetFile => ({ ...f.file, original_class: f.cls, current_class: current, ...extra });
  return {
    auto: true,
    dataset_uuid: 'ds-clean',
    tasks: [
      {
        name: 'mislabeled_images',
        datasets: {
          outliers: dataset([['Coat', bag.path, as(bag, 'Coat', { confidence_vectors: [vector] })]]),
          inliers: dataset([['Coat', coat.path, as(coat, 'Coat')], ['Dress', dress.path, as(dress, 'Dress')], ['Dress', MISSING, missing]]),
        },
      },
      {
        name: 'lighting_conditions',
        datasets: {
          outliers: dataset([['Coat', coat.path, as(coat, 'Coat')], ['Dress', MISSING, missing]]),
          inliers: dataset([['Bag', bag.path, as(bag, 'Bag')], ['Dress', dress.path, as(dress, 'Dress')]]),
        },
      },
    ],
  };
}

describe('startCleaningJob', () => {
  let events: JobProgressEvent[];
  let output: CleaningJobResult;

  beforeAll(async () => {
    const listener = await listen();
    try {
      output = JSON.parse(await startCleaningJob('user-3', JSON.stringify(cleaningRequest()), listener.path)) as CleaningJobResult;
      await listener.closed;
      events = listener.events;
    } finally {
      await listener.stop();
    }
  });

  test('output: seed-000 {dataset_uuid, corrected, removed} plus skipped, field for field', () => {
    const [bag, coat] = files;
    expect(Object.keys(output).sort()).toEqual(['corrected', 'dataset_uuid', 'removed', 'skipped']);
    expect(output.dataset_uuid).toBe('ds-clean');
    for (const ds of [output.corrected, output.removed]) {
      expect(ds.classes).toEqual(classes);
      expect(Object.keys(ds.class_files).sort()).toEqual([...classes].sort());
    }
    // relabelled Bag → Coat; pooled stats of one file are its own
    expect(Object.keys(output.corrected.class_files.Coat)).toEqual([bag.path]);
    expect(output.corrected.class_files.Coat[bag.path]).toMatchObject({ uuid: bag.file.uuid, current_class: 'Coat', original_class: 'Bag', width: 28, height: 28, channels: 1 });
    expect(output.corrected.mean[0]).toBeCloseTo(bag.file.mean[0], 10);
    expect(output.corrected.std_dev[0]).toBeCloseTo(bag.file.std_dev[0], 10);
    // the dark Coat file is removed; the missing file is skipped, not removed
    const removed = Object.values(output.removed.class_files).flatMap((f) => Object.keys(f));
    expect(removed).toEqual([coat.path]);
    expect(output.removed.class_files.Coat[coat.path]).toMatchObject({ uuid: coat.file.uuid, current_class: 'Coat', original_class: 'Coat' });
    expect(output.skipped).toEqual([{ path: MISSING, uuid: 'gone', error: `${MISSING} does not exist` }]);
  });

  test('events: started, check-files progress, skipped, the cleaning result, finished', () => {
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    for (const e of events) expect(e).toMatchObject({ user: 'user-3', kind: 'cleaning', dataset_uuid: 'ds-clean' });
    expect(events[0]).toMatchObject({ type: 'started', tasks: ['cleaning'], completeness: 0 });
    expect(events.filter((e) => e.type !== 'progress').map((e) => `${e.type}:${e.task}`)).toEqual(['started:job', 'skipped:job', 'task_result:cleaning', 'finished:job']);
    expect(events.find((e) => e.type === 'skipped')!.file).toEqual(output.skipped[0]);
    for (const task of ['cleaning', 'job']) {
      const values = events.filter((e) => e.task === task).map((e) => e.completeness);
      for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
      expect(values[values.length - 1]).toBe(1);
    }
    expect(events.find((e) => e.type === 'task_result')!.result).toEqual(output);
    expect(events[events.length - 1].result).toEqual(output);
  });

  test('max_given_confidence in the request sets the bar on the given class; the option overrides it', async () => {
    const [bag, coat] = files;
    // The Bag file's given class has 0.01: acted on at the default bar (0.01), left for review below it.
    const below = JSON.parse(await startCleaningJob('u', JSON.stringify({ ...cleaningRequest(), max_given_confidence: 0.005 }), '')) as CleaningJobResult;
    expect(Object.values(below.corrected.class_files).flatMap((f) => Object.keys(f))).toEqual([]);
    expect(Object.values(below.removed.class_files).flatMap((f) => Object.keys(f))).toEqual([coat.path]);
    const at = await runCleaningJob('u', { ...cleaningRequest(), max_given_confidence: 0.01 }, '');
    expect(Object.keys(at.corrected.class_files.Coat)).toEqual([bag.path]);
    const overridden = await runCleaningJob('u', { ...cleaningRequest(), max_given_confidence: 0.005 }, '', { maxGivenConfidence: 1 });
    expect(Object.keys(overridden.corrected.class_files.Coat)).toEqual([bag.path]);
    const byOption = await runCleaningJob('u', cleaningRequest(), '', { maxGivenConfidence: 0 });
    expect(Object.values(byOption.corrected.class_files).flatMap((f) => Object.keys(f))).toEqual([]);
  });

  test.each([[1.5], [-0.1], ['0.5'], [null]])('max_given_confidence %p is refused, naming the field', async (bad) => {
    const text = JSON.stringify({ ...cleaningRequest(), max_given_confidence: bad });
    await expect(startCleaningJob('u', text, '')).rejects.toThrow(/^request\.max_given_confidence: expected a number in \[0, 1\]/);
  });

  test('checkFiles: false acts on the missing file too', async () => {
    const result = await runCleaningJob('u', cleaningRequest(), '', { checkFiles: false });
    expect(result.skipped).toEqual([]);
    expect(Object.keys(result.removed.class_files.Dress)).toEqual([MISSING]);
  });
});

describe('getImageMetadata (the job)', () => {
  test('the seed-000 object, as src/images measures it; events to the end', async () => {
    const listener = await listen();
    try {
      const { path } = files[0];
      const text = await getImageMetadata('user-9', JSON.stringify({ path }), listener.path, { jobId: 'm1' });
      await listener.closed;
      const out = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(out)).toEqual(['channels', 'height', 'width', 'mean', 'std_dev']);
      expect(out).toEqual({ ...(await imageMetadata(path)) });
      expect(out).toMatchObject({ channels: 1, height: 28, width: 28 });
      expect(listener.events.map((e) => `${e.type}:${e.task}:${e.completeness}`)).toEqual(['started:job:0', 'progress:metadata:0.5', 'task_result:metadata:1', 'finished:job:1']);
      expect(listener.events.every((e) => e.job === 'm1' && e.kind === 'metadata' && e.user === 'user-9')).toBe(true);
      expect(listener.events[3].result).toEqual(out);
    } finally {
      await listener.stop();
    }
  });
});
