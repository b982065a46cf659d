/** @jest-environment ./test/helpers/onnx-environment.cjs */
/**
 * startDiagnosisJob on 20 real images of data/sample (plus a path that does not exist), with a real
 * Unix socket listener: the sequence of progress events, the seed-000 response field for field,
 * files skipped per file, and a dead or dying socket that does not fail the job.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Dataset } from '../../src/images/index.js';
import { JOB_TASK, LOCAL_NODE, runDiagnosisJob, startDiagnosisJob, type DiagnosisJobResult, type JobProgressEvent } from '../../apps/jobs/index.js';
import { filesOf, sampleDataset } from './fixture.js';
import { listen } from './listener.js';

const TASKS = ['mislabeled_images', 'lighting_conditions'];
const MISSING = '/nonexistent/flame-job-test/missing.png';

let dataset: Dataset;
beforeAll(async () => {
  dataset = await sampleDataset(2);
});

/** The request with one extra file (in class Bag) that does not exist. */
function requestWithMissing(tasks: string[] = TASKS): Record<string, unknown> {
  const class_files = { ...dataset.class_files, Bag: { ...dataset.class_files.Bag, [MISSING]: { uuid: 'missing-uuid', width: 28, height: 28, channels: 1, mean: [0.5], std_dev: [0.1] } } };
  return { auto: false, dataset_uuid: 'ds-1', dataset: { ...dataset, class_files }, tasks: tasks.map((name) => ({ name })) };
}

function byTask(events: JobProgressEvent[], task: string): JobProgressEvent[] {
  return events.filter((e) => e.task === task);
}

describe('startDiagnosisJob', () => {
  let events: JobProgressEvent[];
  let output: DiagnosisJobResult;
  let text: string;

  beforeAll(async () => {
    const listener = await listen();
    try {
      // Disclosure control off (minimum count 1): the shape checks below expect every task to flag something on this small slice.
      text = await startDiagnosisJob('user-7', JSON.stringify(requestWithMissing()), listener.path, { jobId: 'job-42', disclosure: { minCount: 1 } });
      await listener.closed;
      events = listener.events;
    } finally {
      await listener.stop();
    }
    output = JSON.parse(text) as DiagnosisJobResult;
  });

  test('events: numbered, stamped, started first and finished last with the output', () => {
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    for (const e of events) {
      expect(e).toMatchObject({ job: 'job-42', user: 'user-7', kind: 'diagnosis', dataset_uuid: 'ds-1' });
      expect(Number.isNaN(Date.parse(e.time))).toBe(false);
    }
    expect(events[0]).toMatchObject({ type: 'started', task: JOB_TASK, completeness: 0, tasks: TASKS });
    const last = events[events.length - 1];
    expect(last).toMatchObject({ type: 'finished', task: JOB_TASK, completeness: 1 });
    expect(last.result).toEqual(output);
    expect(events.filter((e) => e.type === 'finished' || e.type === 'failed')).toHaveLength(1);
  });

  test('per task: completeness never decreases, one task_result ends the task with its result', () => {
    for (const task of [...TASKS, JOB_TASK]) {
      const seq = byTask(events, task);
      const values = seq.map((e) => e.completeness);
      for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
      expect(values[values.length - 1]).toBe(1);
      expect(values.slice(0, -1).every((v) => v < 1)).toBe(true);
    }
    for (const task of TASKS) {
      const seq = byTask(events, task);
      expect(seq.filter((e) => e.type === 'progress').length).toBeGreaterThan(1);
      const results = seq.filter((e) => e.type === 'task_result');
      expect(results).toHaveLength(1);
      expect(seq[seq.length - 1]).toBe(results[0]);
      expect(results[0].result).toEqual(output.tasks.find((t) => t.name === task));
    }
    // the mislabeled task goes through training, reported by phase
    expect(byTask(events, 'mislabeled_images').some((e) => e.phase === 'train')).toBe(true);
    // task results come before the job's end
    const finished = events.findIndex((e) => e.type === 'finished');
    expect(events.findIndex((e) => e.type === 'task_result')).toBeLessThan(finished);
  });

  test('the missing file: a skipped event and an entry of skipped, in no task', () => {
    const skippedEvents = events.filter((e) => e.type === 'skipped');
    expect(skippedEvents).toHaveLength(1);
    expect(skippedEvents[0].file).toEqual({ node: LOCAL_NODE, path: MISSING, uuid: 'missing-uuid', error: `${MISSING} does not exist` });
    expect(output.skipped).toEqual([skippedEvents[0].file]);
    for (const t of output.tasks) for (const ds of Object.values(t.datasets)) for (const files of Object.values(ds.class_files)) expect(Object.keys(files)).not.toContain(MISSING);
  });

  test('output: the seed-000 shape, field for field', () => {
    expect(Object.keys(output).sort()).toEqual(['dataset_uuid', 'skipped', 'tasks']);
    expect(output.dataset_uuid).toBe('ds-1');
    expect(output.tasks.map((t) => t.name)).toEqual(TASKS);
    const files = filesOf(dataset);
    for (const task of output.tasks) {
      expect(Object.keys(task).sort()).toEqual(['datasets', 'name']);
      expect(Object.keys(task.datasets).sort()).toEqual(['inliers', 'outliers']);
      const seen = new Map<string, string>();
      for (const ds of [task.datasets.outliers, task.datasets.inliers]) {
        expect(ds.classes).toEqual(dataset.classes);
        expect(Object.keys(ds.class_files).sort()).toEqual([...dataset.classes].sort());
        for (const key of ['mean', 'std_dev'] as const) {
          expect(ds[key]).toHaveLength(1); // grey PNGs
          for (const v of ds[key]) expect(v).toBeGreaterThanOrEqual(0);
        }
        for (const [cls, classFiles] of Object.entries(ds.class_files)) {
          for (const [p, f] of Object.entries(classFiles)) {
            expect(seen.has(p)).toBe(false);
            seen.set(p, cls);
            const given = files.find((x) => x.path === p)!;
            expect(given).toBeDefined();
            expect(f.uuid).toBe(given.uuid);
            expect(f.original_class).toBe(given.cls);
            expect(f.current_class).toBe(cls);
            expect(dataset.classes).toContain(f.current_class);
            expect([f.width, f.height, f.channels]).toEqual([28, 28, 1]);
            expect(f.mean).toHaveLength(1);
            expect(f.std_dev).toHaveLength(1);
            expect(typeof f.projections).toBe('object');
            expect(Array.isArray(f.confidence_vectors)).toBe(true);
            if (task.name === 'mislabeled_images') {
              expect(f.confidence_vectors![0]).toHaveLength(dataset.classes.length);
              expect(f.projections!['2d']).toHaveLength(2);
            }
            if (task.name === 'lighting_conditions') expect(f.current_class).toBe(f.original_class);
          }
        }
      }
      // every readable file of the request, once per task
      expect([...seen.keys()].sort()).toEqual(files.map((f) => f.path).sort());
    }
  });
});

describe('neither the socket nor a bad file fails the job', () => {
  const request = (): string => JSON.stringify(requestWithMissing(['lighting_conditions']));

  test('no listener at the socket path: the result, and one warning', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flame-job-dead-'));
    const warnings: string[] = [];
    const result = await runDiagnosisJob('u', request(), path.join(dir, 'nobody.sock'), { warn: (m) => warnings.push(m) });
    expect(result.tasks.map((t) => t.name)).toEqual(['lighting_conditions']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/nobody\.sock/);
  });

  test('a regular file as the socket path: the result', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flame-job-file-'));
    const file = path.join(dir, 'not-a-socket');
    await writeFile(file, 'x');
    const warnings: string[] = [];
    const result = await runDiagnosisJob('u', request(), file, { warn: (m) => warnings.push(m) });
    expect(result.skipped.map((s) => s.path)).toEqual([MISSING]);
    expect(warnings).toHaveLength(1);
  });

  test('a listener that hangs up after 2 events: the result, the 2 events received', async () => {
    const listener = await listen({ hangUpAfter: 2 });
    const warnings: string[] = [];
    try {
      const result = await runDiagnosisJob('u', request(), listener.path, { warn: (m) => warnings.push(m) });
      const full = await runDiagnosisJob('u', request(), '', {});
      expect(result.tasks).toEqual(full.tasks);
      await listener.closed;
      expect(listener.events.map((e) => e.type)).toEqual(['started', 'progress']);
      expect(warnings.length).toBeLessThanOrEqual(1);
    } finally {
      await listener.stop();
    }
  });

  test('a file that cannot be decoded: skipped by the run, sent as a skipped event', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flame-job-corrupt-'));
    const corrupt = path.join(dir, 'corrupt.png');
    await writeFile(corrupt, 'not a png at all');
    const req = requestWithMissing(['lighting_conditions']) as { dataset: Dataset };
    req.dataset.class_files.Coat = { ...req.dataset.class_files.Coat, [corrupt]: { uuid: 'corrupt-uuid', width: 28, height: 28, channels: 1, mean: [0.5], std_dev: [0.1] } };
    const listener = await listen();
    try {
      const result = await runDiagnosisJob('u', req, listener.path);
      await listener.closed;
      expect(result.skipped.map((s) => s.path)).toEqual([MISSING, corrupt]);
      expect(result.skipped[1]).toMatchObject({ node: LOCAL_NODE, path: corrupt });
      expect(result.skipped[1].error).toMatch(/corrupt\.png/);
      const skippedEvents = listener.events.filter((e) => e.type === 'skipped');
      expect(skippedEvents.map((e) => e.file)).toEqual(result.skipped);
      expect(listener.events[listener.events.length - 1].type).toBe('finished');
    } finally {
      await listener.stop();
    }
  });

  test('every file missing: every file in skipped, tasks with empty datasets', async () => {
    const listener = await listen();
    try {
      const ds = { classes: ['a', 'b'], class_files: { a: { '/no/1.png': { uuid: 'u1' } }, b: { '/no/2.png': { uuid: 'u2' } } } };
      const result = await runDiagnosisJob('u', { auto: true, dataset_uuid: 'd', dataset: ds, tasks: [{ name: 'blurry' }] }, listener.path);
      await listener.closed;
      expect(result.skipped.map((s) => s.path)).toEqual(['/no/1.png', '/no/2.png']);
      expect(result.tasks).toEqual([
        {
          name: 'blurry',
          datasets: {
            outliers: { classes: ['a', 'b'], mean: [], std_dev: [], class_files: { a: {}, b: {} } },
            inliers: { classes: ['a', 'b'], mean: [], std_dev: [], class_files: { a: {}, b: {} } },
          },
        },
      ]);
      const types = listener.events.map((e) => e.type);
      expect(types.filter((t) => t !== 'progress')).toEqual(['started', 'skipped', 'skipped', 'task_result', 'finished']);
      expect(listener.events.filter((e) => e.type === 'progress').map((e) => e.phase)).toEqual(['check-files', 'check-files']);
    } finally {
      await listener.stop();
    }
  });
});
