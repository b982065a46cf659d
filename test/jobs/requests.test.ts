/**
 * Bad job requests: each error is a BadRequestError (or NotFoundError) naming the field at fault
 * and what was expected, the job sends one `failed` event with that message, and no work starts.
 */
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { checkDiagnosisRequest, parseRequestJson, runCleaningJob, runImageMetadataJob, startDiagnosisJob } from '../../apps/jobs/index.js';
import { lineColumn } from '../../src/json-text.js';
import { listen } from './listener.js';

const file = { uuid: 'u1', width: 32, height: 32, channels: 3, mean: [0.3, 0.4, 0.1], std_dev: [0.1, 0.12, 0.03] };
const good = (): Record<string, unknown> => ({
  auto: false,
  dataset_uuid: 'ds',
  dataset: { classes: ['class1', 'class2'], mean: [0.3, 0.4, 0.1], std_dev: [0.1, 0.12, 0.03], class_files: { class1: { '/tmp/uuid1.png': { ...file } }, class2: {} } },
  tasks: [{ name: 'mislabeled_images' }, { name: 'lighting_conditions' }],
});

function withDataset(change: (ds: Record<string, unknown>) => void): Record<string, unknown> {
  const r = good();
  change(r.dataset as Record<string, unknown>);
  return r;
}

function firstFile(r: Record<string, unknown>): Record<string, unknown> {
  return ((r.dataset as { class_files: Record<string, Record<string, Record<string, unknown>>> }).class_files.class1)['/tmp/uuid1.png'];
}

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('JSON text', () => {
  test('invalid JSON names the position, line and column', () => {
    const e = errorOf(() => parseRequestJson('{\n  "auto": true,\n  "dataset_uuid" "x"\n}'));
    expect(e).toBeInstanceOf(BadRequestError);
    expect(e.message).toMatch(/^request is not valid JSON at position 35 \(line 3, column 18/);
  });

  test('truncated JSON names the end of the text', () => {
    const text = '{"auto": true, "tasks": [';
    expect(() => parseRequestJson(text)).toThrow(`request is not valid JSON at position ${text.length} (line 1, column ${text.length + 1}`);
    expect(() => parseRequestJson('  ')).toThrow('request is empty (expected a JSON object)');
  });

  test('line and column of a position', () => {
    expect(lineColumn('ab\ncd\nef', 0)).toEqual({ line: 1, column: 1 });
    expect(lineColumn('ab\ncd\nef', 4)).toEqual({ line: 2, column: 2 });
    expect(lineColumn('ab\ncd\nef', 6)).toEqual({ line: 3, column: 1 });
  });
});

describe('diagnosis request fields', () => {
  test('the seed example passes', () => {
    expect(checkDiagnosisRequest(good()).tasks.map((t) => t.name)).toEqual(['mislabeled_images', 'lighting_conditions']);
  });

  test.each<[string, () => unknown, string]>([
    ['not an object', () => [1], 'request: expected a JSON object {auto, dataset_uuid, dataset, tasks}, got an array'],
    ['auto missing', () => ({ ...good(), auto: undefined }), 'request.auto: missing (true or false)'],
    ['auto a string', () => ({ ...good(), auto: 'yes' }), 'request.auto: expected true or false, got string "yes"'],
    ['dataset_uuid missing', () => ({ ...good(), dataset_uuid: undefined }), 'request.dataset_uuid: missing (a non-empty string)'],
    ['dataset missing', () => ({ ...good(), dataset: undefined }), 'request.dataset: missing'],
    ['classes empty', () => withDataset((d) => (d.classes = [])), 'request.dataset.classes: expected a non-empty array of class names'],
    ['class twice', () => withDataset((d) => (d.classes = ['class1', 'class1'])), 'request.dataset.classes[1]: class "class1" is listed twice'],
    ['mean not numbers', () => withDataset((d) => (d.mean = ['a'])), 'request.dataset.mean: expected an array of numbers'],
    ['class_files missing', () => withDataset((d) => delete d.class_files), 'request.dataset.class_files: expected an object class → {path → file}, got nothing'],
    ['class not in classes', () => withDataset((d) => ((d.class_files as Record<string, unknown>).class3 = {})), 'request.dataset.class_files["class3"]: class "class3" is not in request.dataset.classes ("class1", "class2")'],
    ['files not an object', () => withDataset((d) => ((d.class_files as Record<string, unknown>).class2 = [])), 'request.dataset.class_files["class2"]: expected an object path → file, got an array'],
    ['uuid missing', () => { const r = good(); delete firstFile(r).uuid; return r; }, 'request.dataset.class_files["class1"]["/tmp/uuid1.png"].uuid: missing (a non-empty string)'],
    ['uuid a number', () => { const r = good(); firstFile(r).uuid = 7; return r; }, '["/tmp/uuid1.png"].uuid: expected a non-empty string, got number 7'],
    ['width zero', () => { const r = good(); firstFile(r).width = 0; return r; }, '["/tmp/uuid1.png"].width: expected an integer from 1, got number 0'],
    ['channels 5', () => { const r = good(); firstFile(r).channels = 5; return r; }, '["/tmp/uuid1.png"].channels: expected an integer from 1 to 4, got number 5'],
    ['mean per channel', () => { const r = good(); firstFile(r).mean = [0.1]; return r; }, '["/tmp/uuid1.png"].mean: expected 3 value(s) (one per channel), got 1'],
    ['uuid twice', () => withDataset((d) => ((d.class_files as Record<string, unknown>).class2 = { '/tmp/x.png': { ...file } })), 'request.dataset.class_files["class2"]["/tmp/x.png"].uuid: "u1" is also the uuid of request.dataset.class_files["class1"]["/tmp/uuid1.png"]'],
    ['tasks an object', () => ({ ...good(), tasks: { name: 'blurry' } }), 'request.tasks: expected an array of {"name": ...}, got an object'],
    ['task a string', () => ({ ...good(), tasks: ['blurry'] }), 'request.tasks[0]: expected an object {"name": ...}, got string "blurry"'],
    ['task name missing', () => ({ ...good(), tasks: [{}] }), 'request.tasks[0].name: missing (one of mislabeled_images, lighting_conditions'],
    ['task unknown', () => ({ ...good(), tasks: [{ name: 'sharpen' }] }), 'request.tasks[0].name: unknown task "sharpen" (known: mislabeled_images'],
    ['task twice', () => ({ ...good(), tasks: [{ name: 'blurry' }, { name: 'blurry' }] }), 'request.tasks[1].name: task "blurry" is listed twice'],
    ['no tasks without auto', () => ({ ...good(), tasks: [] }), 'request.tasks: missing or empty: list tasks, or set "auto": true to run every task'],
  ])('%s', (_name, make, message) => {
    const e = errorOf(() => checkDiagnosisRequest(make()));
    expect(e).toBeInstanceOf(BadRequestError);
    expect(e.message).toContain(message);
  });

  test('auto without tasks runs every task', () => {
    expect(checkDiagnosisRequest({ ...good(), auto: true, tasks: undefined }).tasks).toHaveLength(5);
  });
});

describe('a bad request fails the job with one failed event', () => {
  test('diagnosis: the error names the field, on the socket too', async () => {
    const listener = await listen();
    try {
      const bad = JSON.stringify({ ...good(), tasks: 'mislabeled_images' });
      await expect(startDiagnosisJob('user-1', bad, listener.path, { jobId: 'j' })).rejects.toThrow('request.tasks: expected an array of {"name": ...}, got string "mislabeled_images"');
      await listener.closed;
      expect(listener.events).toEqual([
        expect.objectContaining({ seq: 1, type: 'failed', job: 'j', user: 'user-1', kind: 'diagnosis', task: 'job', completeness: 0, error_kind: 'bad_request', error: expect.stringContaining('request.tasks') }),
      ]);
    } finally {
      await listener.stop();
    }
  });

  test('the user uuid and the socket address are checked', async () => {
    await expect(startDiagnosisJob('', JSON.stringify(good()), '')).rejects.toThrow('user uuid: expected a non-empty string, got string ""');
    await expect(startDiagnosisJob('u', JSON.stringify(good()), 5 as unknown as string)).rejects.toThrow('sock_addr: expected a Unix socket path (a string), got number 5');
  });

  test('cleaning: fields named as a path into the request', async () => {
    await expect(runCleaningJob('u', '{"auto": true, "dataset_uuid": "d"}', '')).rejects.toThrow('request.tasks: missing');
    await expect(runCleaningJob('u', '{"auto": true, "dataset_uuid": "d", "tasks": [{"name": "x"}]}', '')).rejects.toThrow('request.tasks[0].datasets: missing');
    await expect(runCleaningJob('u', '{"auto": true, "dataset_uuid": "d"', '')).rejects.toThrow(/request is not valid JSON at position 34 \(line 1, column 35/);
  });

  test('metadata: path missing, not a string, not existing, not an image', async () => {
    await expect(runImageMetadataJob('u', '{}', '')).rejects.toThrow('request.path: missing (the path of an image file)');
    await expect(runImageMetadataJob('u', '{"path": 3}', '')).rejects.toThrow('request.path: expected the path of an image file, got number 3');
    const missing = runImageMetadataJob('u', '{"path": "/nonexistent/x.png"}', '');
    await expect(missing).rejects.toThrow(NotFoundError);
    await expect(missing).rejects.toThrow('request.path: /nonexistent/x.png does not exist');
    await expect(runImageMetadataJob('u', JSON.stringify({ path: 'package.json' }), '')).rejects.toThrow(BadRequestError);
    await expect(runImageMetadataJob('u', JSON.stringify({ path: 'data' }), '')).rejects.toThrow('request.path: data is not a file');
  });
});
