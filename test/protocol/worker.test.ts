/**
 * `flame worker` as a real child process over pipes: every packet type, every error code with its
 * exact message, ack/progress sequences, training on images made with sharp and inferring on a
 * file and a folder, interleaved requests, and that nothing but packets reaches stdout.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { jest } from '@jest/globals';
import path from 'node:path';
import type { WorkerClient } from '../../apps/protocol/client.js';
import { GraphBuilder, attr, encodeModel } from '../../src/ml/onnx-writer.js';
import type { Packet, PacketOf } from '../../apps/protocol/packets.js';
import { seeded, spawnWorker, stderrWhen, tempDir, writeCorruptPng, writeFlat, writeStripeSet } from './worker-harness.js';

jest.setTimeout(60_000);

let dir: string;
let train: { h: string; v: string };
let held: { h: string; v: string };
let worker: WorkerClient;

const isError = (p: Packet): p is PacketOf<'error'> => p.type === 'error';

/** Sends a raw line and returns the next `error` the worker sends. */
async function errorFor(line: string): Promise<PacketOf<'error'>> {
  const from = worker.received.length;
  worker.sendLine(line);
  return (await worker.waitFor(isError, 10_000, from)) as PacketOf<'error'>;
}

/** Whether the worker sends nothing for `line`: a ping right after gets the very next packet. */
async function silentFor(line: string): Promise<boolean> {
  const from = worker.received.length;
  worker.sendLine(line);
  const pong = await worker.request('ping', { message: 'after' });
  return worker.received.indexOf(pong.packets.find((p) => p.type === 'pong') as Packet) === from;
}

/** Number of "trained on" lines the worker logged so far. */
function trainings(w: WorkerClient): number {
  return w.stderr.split('\n').filter((l) => l.includes('trained on')).length;
}

beforeAll(async () => {
  dir = await tempDir('flame-worker-test-');
  train = await writeStripeSet(path.join(dir, 'train'), 12, 1);
  held = await writeStripeSet(path.join(dir, 'test'), 15, 2);
  worker = spawnWorker(['--classes', 'h,v', '--chunk-size', '4', '--ping', 'hello', '--ping', 'world']);
});

afterAll(async () => {
  if (worker) {
    expect(await worker.close()).toBe(0);
    expect(worker.strayLines).toEqual([]);
  }
  await rm(dir, { recursive: true, force: true });
});

describe('shared packets', () => {
  test('ping gets a pong with the same message and the pong waits for an ack', async () => {
    worker.autoAck = false;
    try {
      const out = await worker.request('ping', { message: 'héllo wörld' });
      const pong = out.packets.find((p) => p.type === 'pong') as PacketOf<'pong'>;
      expect(pong.data).toEqual({ id: out.id, message: 'héllo wörld' });
      expect(await silentFor(JSON.stringify({ type: 'ack', id: 900, data: { id: pong.id } }))).toBe(true);
      // A second ack of the same pong: nothing waits for it any more.
      const e = await errorFor(JSON.stringify({ type: 'ack', id: 901, data: { id: pong.id } }));
      expect(e.data).toEqual({ id: 901, code: 'no-such-id', etc: `Received a ack for invalid packet with id ${pong.id}.` });
    } finally {
      worker.autoAck = true;
    }
  });

  test('the worker pings on start; a right pong is acked, a wrong one is wrong-pong', async () => {
    const pings = worker.received.filter((p): p is PacketOf<'ping'> => p.type === 'ping');
    expect(pings.map((p) => p.data.message)).toEqual(['hello', 'world']);
    const ok = await worker.request('pong', { id: pings[0].id, message: 'hello' });
    expect(ok.packets.map((p) => p.type)).toEqual(['ack']);
    const wrong = await worker.request('pong', { id: pings[1].id, message: 'bye' });
    expect(wrong.error?.data).toEqual({
      id: wrong.id,
      code: 'wrong-pong',
      etc: 'Received a pong with the wrong message. Expected: "world", not "bye".',
    });
    // Both pings are answered now: another pong for them refers to nothing.
    const again = await worker.request('pong', { id: pings[0].id, message: 'hello' });
    expect(again.error?.data.etc).toBe(`Received a pong for invalid packet with id ${pings[0].id}.`);
    expect(await stderrWhen(worker, 'pong received for "hello"')).toContain('pong received for "hello"');
  });

  test('errors wait for an ack; an error from the other side is acked', async () => {
    worker.autoAck = false;
    try {
      const e = await errorFor('{');
      expect(await silentFor(JSON.stringify({ type: 'ack', id: 902, data: { id: e.id } }))).toBe(true);
      const reply = await worker.request('error', { id: e.id, code: 'bad-packet-json', etc: 'just testing' });
      expect(reply.packets.map((p) => p.type)).toEqual(['ack']);
      const unknown = await worker.request('error', { id: 1_000_000_000, code: 'bug' });
      expect(unknown.error?.data).toEqual({
        id: unknown.id,
        code: 'no-such-id',
        etc: 'Received a error for invalid packet with id 1000000000.',
      });
      // -1 means "a packet of yours I could not read": acked.
      expect((await worker.request('error', { id: -1, code: 'bad-packet-json' })).packets.map((p) => p.type)).toEqual(['ack']);
    } finally {
      worker.autoAck = true;
    }
  });

  test('a progress from the other side refers to no task of the worker', async () => {
    const out = await worker.request('progress', { id: 5, completeness: 0.5 });
    expect(out.error?.data).toEqual({ id: out.id, code: 'no-such-id', etc: 'Received a progress for invalid packet with id 5.' });
  });
});

describe('every error code, with the message of the table', () => {
  const cases: [string, string, string, string, number][] = [
    ['invalid JSON', '{"type": "ping", "id": 1', 'bad-packet-json', 'Received packet that is invalid JSON.', -1],
    ['an empty line', '', 'bad-packet-json', 'Received packet that is invalid JSON.', -1],
    ['null', 'null', 'null-packet', 'Received a null packet.', -1],
    ['an unknown type', '{"type":"dance","id":7}', 'no-such-packet', 'Received packet with invalid type: "dance".', 7],
    ['an inference-result sent to the worker', '{"type":"inference-result","id":8,"data":{"label":"h"}}', 'no-such-packet', 'Received packet with invalid type: "inference-result".', 8],
    ['an ack of an id never sent', '{"type":"ack","id":9,"data":{"id":987654}}', 'no-such-id', 'Received a ack for invalid packet with id 987654.', 9],
    ['no type', '{"id":10,"data":{}}', 'missing-protocol-field', 'Received a packet without the required protocol field type.', 10],
    ['no id', '{"type":"ping","data":{"message":"x"}}', 'missing-protocol-field', 'Received a ping without the required protocol field id.', -1],
    ['a ping without message', '{"type":"ping","id":11}', 'missing-body-field', 'Received a ping without the required body field message.', 11],
    ['a load-samples without label', '{"type":"load-samples","id":12,"data":{"path":"/tmp"}}', 'missing-body-field', 'Received a load-samples without the required body field label.', 12],
    ['an infer without output_path', '{"type":"infer","id":13,"data":{"input_path":"/tmp"}}', 'missing-body-field', 'Received a infer without the required body field output_path.', 13],
    ['completeness above 1', '{"type":"progress","id":14,"data":{"id":1,"completeness":1.5}}', 'field-out-of-range', 'Field completeness is unexpectedly not in range [0, 1].', 14],
    ['a negative id', '{"type":"ping","id":-5,"data":{"message":"x"}}', 'field-out-of-range', 'Field id is unexpectedly not in range [0, 9007199254740991].', -1],
    ['an id beyond 2^53', '{"type":"ping","id":1e300,"data":{"message":"x"}}', 'field-out-of-range', 'Field id is unexpectedly not in range [0, 9007199254740991].', -1],
    ['a string id', '{"type":"ping","id":"1","data":{"message":"x"}}', 'field-of-wrong-type', 'Field id is of invalid type, expected a int.', -1],
    ['a fractional id', '{"type":"ping","id":1.5,"data":{"message":"x"}}', 'field-of-wrong-type', 'Field id is of invalid type, expected a int.', -1],
    ['a numeric type', '{"type":3,"id":15}', 'field-of-wrong-type', 'Field type is of invalid type, expected a string.', 15],
    ['a packet that is an array', '[1,2]', 'field-of-wrong-type', 'Field packet is of invalid type, expected a object.', -1],
    ['data that is a string', '{"type":"ping","id":16,"data":"x"}', 'field-of-wrong-type', 'Field data is of invalid type, expected a object.', 16],
    ['a numeric path', '{"type":"load-samples","id":17,"data":{"path":5,"label":"h"}}', 'field-of-wrong-type', 'Field path is of invalid type, expected a string.', 17],
    ['a string completeness', '{"type":"progress","id":18,"data":{"id":1,"completeness":"1"}}', 'field-of-wrong-type', 'Field completeness is of invalid type, expected a double.', 18],
    ['an empty label', '{"type":"load-samples","id":19,"data":{"path":"/tmp","label":""}}', 'unexpected-empty-string', 'Field label is unexpectedly empty.', 19],
    ['an empty input_path', '{"type":"infer","id":20,"data":{"input_path":"","output_path":""}}', 'unexpected-empty-string', 'Field input_path is unexpectedly empty.', 20],
    ['an unknown class', '{"type":"load-samples","id":21,"data":{"path":"/tmp","label":"cat"}}', 'unexpected-class', '"cat" is not one of previously specified classes.', 21],
    ['a missing path', '{"type":"load-samples","id":22,"data":{"path":"/no/such/path","label":"h"}}', 'path-does-not-exist', '/no/such/path unexpectedly does not exist.', 22],
    ['a device as samples', '{"type":"load-samples","id":23,"data":{"path":"/dev/null","label":"h"}}', 'unexpected-not-file-or-directory', '/dev/null unexpectedly is not a file or a directory.', 23],
    ['a device to infer on', '{"type":"infer","id":24,"data":{"input_path":"/dev/null","output_path":""}}', 'unexpected-not-file-or-directory', '/dev/null unexpectedly is not a file or a directory.', 24],
  ];
  test.each(cases)('%s', async (_name, line, code, etc, ref) => {
    const e = await errorFor(line);
    expect(e.data).toEqual({ id: ref, code, etc });
  });

  test('infer paths: folder to a packet, output that is a folder, output under a file, output in a missing folder', async () => {
    const file = path.join(train.h, 'h000.png');
    const cases: [Record<string, string>, string, string][] = [
      [{ input_path: train.h, output_path: '' }, 'unexpected-not-file', `${train.h} unexpectedly is not a file.`],
      [{ input_path: file, output_path: dir }, 'unexpected-not-file', `${dir} unexpectedly is not a file.`],
      [{ input_path: file, output_path: path.join(file, 'out.json') }, 'unexpected-not-directory', `${file} unexpectedly is not a directory.`],
      [{ input_path: file, output_path: path.join(dir, 'nope', 'out.json') }, 'path-does-not-exist', `${path.join(dir, 'nope')} unexpectedly does not exist.`],
      [{ input_path: path.join(dir, 'nope.png'), output_path: '' }, 'path-does-not-exist', `${path.join(dir, 'nope.png')} unexpectedly does not exist.`],
    ];
    for (const [data, code, etc] of cases) {
      const out = await worker.request('infer', data);
      // Rejected before any work: an error and no ack.
      expect(out.packets.map((p) => p.type)).toEqual(['error']);
      expect(out.error?.data).toEqual({ id: out.id, code, etc });
    }
  });

  test('bug: an image that cannot be decoded fails after the ack, with the details on stderr', async () => {
    const bad = path.join(dir, 'bad');
    await mkdir(bad);
    await writeCorruptPng(path.join(bad, 'broken.png'));
    const single = await worker.request('load-samples', { path: path.join(bad, 'broken.png'), label: 'h' });
    expect(single.packets.map((p) => p.type)).toEqual(['ack', 'error']);
    expect(single.error?.data).toEqual({ id: single.id, code: 'bug', etc: 'Something went wrong on the receiving side. This is a bug.' });
    expect(await stderrWhen(worker, 'broken.png')).toContain('broken.png');
  });
});

describe('load-samples and infer', () => {
  test('load-samples: ack first, then rising progress ending at exactly 1', async () => {
    for (const label of ['h', 'v'] as const) {
      const out = await worker.request('load-samples', { path: train[label], label });
      expect(out.error).toBeUndefined();
      expect(out.packets[0].type).toBe('ack');
      // 12 files, 4 per step: 1/3, 2/3, then 1.
      expect(out.progress).toEqual([1 / 3, 2 / 3, 1]);
      expect(out.packets.slice(1).every((p) => p.type === 'progress')).toBe(true);
    }
    expect(await stderrWhen(worker, '(24 in total)')).toContain('(24 in total)');
  });

  test('a failed folder load keeps the earlier samples and adds none of its own', async () => {
    const mixed = path.join(dir, 'mixed');
    await mkdir(mixed);
    await writeStripeSet(mixed, 3, 9);
    await writeCorruptPng(path.join(mixed, 'h', 'zzz.png'));
    const out = await worker.request('load-samples', { path: mixed, label: 'h' });
    expect(out.packets[0].type).toBe('ack');
    expect(out.error?.data.code).toBe('bug');
    // The next training still sees the 24 samples of the test above.
    const before = trainings(worker);
    const res = await worker.request('infer', { input_path: path.join(held.v, 'v000.png'), output_path: '' });
    expect(res.label).toBe('v');
    expect(trainings(worker)).toBe(before + 1);
    expect(await stderrWhen(worker, /trained on 24 samples \(12\/12 per class\)/)).toMatch(/trained on 24 samples \(12\/12 per class\)/);
  });

  test('infer on a file answers with an inference-result before the final progress', async () => {
    const out = await worker.request('infer', { input_path: path.join(held.h, 'h003.png'), output_path: '' });
    expect(out.packets.map((p) => p.type)).toEqual(['ack', 'inference-result', 'progress']);
    expect(out.label).toBe('h');
    expect(out.progress).toEqual([1]);
  });

  test('infer on a folder writes {path: label} for every image; accuracy on unseen images', async () => {
    const output = path.join(dir, 'out.json');
    await writeFile(output, 'old content is replaced');
    const before = trainings(worker);
    const out = await worker.request('infer', { input_path: path.join(dir, 'test'), output_path: output });
    expect(out.error).toBeUndefined();
    expect(out.packets[0].type).toBe('ack');
    expect(out.progress.at(-1)).toBe(1);
    expect(out.progress.length).toBe(Math.ceil(30 / 4));
    expect(out.progress).toEqual([...out.progress].sort((a, b) => a - b));
    const result = JSON.parse(await readFile(output, 'utf8')) as Record<string, string>;
    const keys = Object.keys(result);
    expect(keys).toHaveLength(30);
    let correct = 0;
    for (const [file, label] of Object.entries(result)) {
      expect(path.isAbsolute(file)).toBe(true);
      if (label === path.basename(path.dirname(file))) correct++;
    }
    expect(correct / keys.length).toBeGreaterThanOrEqual(0.9);
    // No sample changed since the last infer: no retraining.
    expect(trainings(worker)).toBe(before);
  });

  test('loading more samples retrains once, on the next infer', async () => {
    const before = trainings(worker);
    const extra = await worker.request('load-samples', { path: path.join(held.h, 'h000.png'), label: 'h' });
    expect(extra.progress).toEqual([1]);
    await worker.request('infer', { input_path: path.join(held.v, 'v001.png'), output_path: '' });
    await worker.request('infer', { input_path: path.join(held.v, 'v002.png'), output_path: '' });
    expect(trainings(worker)).toBe(before + 1);
    expect(await stderrWhen(worker, /trained on 25 samples \(13\/12 per class\)/)).toMatch(/trained on 25 samples \(13\/12 per class\)/);
  });

  test('an empty folder loads nothing and infers to {}', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    const load = await worker.request('load-samples', { path: empty, label: 'v' });
    expect(load.packets.map((p) => p.type)).toEqual(['ack', 'progress']);
    expect(load.progress).toEqual([1]);
    const output = path.join(dir, 'empty.json');
    const inf = await worker.request('infer', { input_path: empty, output_path: output });
    expect(inf.progress).toEqual([1]);
    expect(JSON.parse(await readFile(output, 'utf8'))).toEqual({});
  });

  test('interleaved requests: each gets its ack, its own progress and its answer', async () => {
    const from = worker.received.length;
    const ids = {
      loadH: worker.sendPacket('load-samples', { path: train.h, label: 'h' }),
      inferFolder: worker.sendPacket('infer', { input_path: held.v, output_path: path.join(dir, 'v.json') }),
      ping: worker.sendPacket('ping', { message: 'in between' }),
      loadV: worker.sendPacket('load-samples', { path: train.v, label: 'v' }),
      inferFile: worker.sendPacket('infer', { input_path: path.join(held.h, 'h010.png'), output_path: '' }),
      bad: worker.sendPacket('load-samples', { path: '/no/such', label: 'v' }),
    };
    const finished = (id: number) => (p: Packet) => p.type === 'progress' && p.data.id === id && p.data.completeness === 1;
    await Promise.all([ids.loadH, ids.inferFolder, ids.loadV, ids.inferFile].map((id) => worker.waitFor(finished(id), 30_000, from)));
    const mine = worker.received.slice(from);
    for (const id of [ids.loadH, ids.inferFolder, ids.loadV, ids.inferFile]) {
      const own = mine.filter((p) => 'id' in p.data && p.data.id === id);
      expect(own[0].type).toBe('ack');
      expect(own.at(-1)).toMatchObject({ type: 'progress', data: { completeness: 1 } });
      const progress = own.filter((p): p is PacketOf<'progress'> => p.type === 'progress').map((p) => p.data.completeness);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      expect(new Set(progress).size).toBe(progress.length);
    }
    expect(mine.find((p) => p.type === 'pong')?.data).toEqual({ id: ids.ping, message: 'in between' });
    expect(mine.find((p) => p.type === 'error')?.data).toMatchObject({ id: ids.bad, code: 'path-does-not-exist' });
    expect(mine.find((p) => p.type === 'inference-result')?.data).toEqual({ id: ids.inferFile, label: 'h' });
    const v = JSON.parse(await readFile(path.join(dir, 'v.json'), 'utf8')) as Record<string, string>;
    expect(Object.values(v).filter((l) => l === 'v').length).toBeGreaterThanOrEqual(14);
    // Each load of 12 files reports its own three steps (chunks of 4).
    const steps = mine.filter((p) => p.type === 'progress' && (p.data.id === ids.loadH || p.data.id === ids.loadV)).map((p) => referenced(p));
    expect(steps.filter((id) => id === ids.loadH)).toHaveLength(3);
    expect(steps.filter((id) => id === ids.loadV)).toHaveLength(3);
  });

  test('only packets on stdout, and every packet id of the worker is new', () => {
    expect(worker.strayLines).toEqual([]);
    const ids = worker.received.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    // Every ack the client sent for progress, pong, error and inference-result was accepted:
    // the only refused acks are the two the tests sent on purpose (packets 901 and 9).
    const refusedAcks = worker.received.filter((p) => p.type === 'error' && p.data.etc?.startsWith('Received a ack'));
    expect(refusedAcks.map((p) => referenced(p)).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([9, 901]);
    expect(worker.received.filter((p) => p.type === 'inference-result').length).toBeGreaterThan(3);
  });
});

function referenced(p: Packet): number | undefined {
  return 'id' in p.data ? p.data.id : undefined;
}

describe('flame worker options', () => {
  test('a user ONNX classifier with --model and --labels, without any samples', async () => {
    // scores = [0.5 − mean, mean − 0.5]: dark first, bright second.
    const g = new GraphBuilder('brightness');
    g.input('pixels', 'float32', ['batch', 1, 8, 8]);
    const mean = g.op('Flatten', [g.op('ReduceMean', ['pixels'], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(1) })], { axis: attr.int(1) });
    const centred = g.op('Sub', [mean, g.floats('half', [1], [0.5])]);
    g.op('Concat', [g.op('Neg', [centred]), centred], { axis: attr.int(1) }, 'scores');
    g.output('scores', 'float32', ['batch', 2]);
    const modelFile = path.join(dir, 'brightness.onnx');
    await writeFile(modelFile, encodeModel(g.build()));
    const labelsFile = path.join(dir, 'labels.txt');
    // a labels file's lines are taken whole: a class name may hold a comma
    await writeFile(labelsFile, 'dark, very\nbright\n');
    const flat = path.join(dir, 'flat');
    await mkdir(flat);
    const rand = seeded(5);
    await writeFlat(path.join(flat, 'a-dark.png'), 40, rand);
    await writeFlat(path.join(flat, 'b-bright.png'), 215, rand);

    const w = spawnWorker(['--model', modelFile, '--labels', labelsFile]);
    try {
      const one = await w.request('infer', { input_path: path.join(flat, 'b-bright.png'), output_path: '' });
      expect(one.label).toBe('bright');
      const out = path.join(dir, 'flat.json');
      await w.request('infer', { input_path: flat, output_path: out });
      expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ [path.join(flat, 'a-dark.png')]: 'dark, very', [path.join(flat, 'b-bright.png')]: 'bright' });
      const wrongClass = await w.request('load-samples', { path: flat, label: 'h' });
      expect(wrongClass.error?.data.etc).toBe('"h" is not one of previously specified classes.');
    } finally {
      expect(await w.close()).toBe(0);
    }
    expect(w.strayLines).toEqual([]);
  });

  test('dark vs bright with the built-in model, and an infer before any sample is a bug', async () => {
    const flat = path.join(dir, 'flat2');
    const rand = seeded(11);
    for (const [name, level] of [['dark', 45], ['bright', 205]] as const) {
      await mkdir(path.join(flat, name), { recursive: true });
      for (let i = 0; i < 6; i++) await writeFlat(path.join(flat, name, `${i}.png`), level + (rand() - 0.5) * 40, rand);
    }
    const w = spawnWorker(['--classes', 'dark,bright', '--image-size', '16', '--channels', '3']);
    try {
      const early = await w.request('infer', { input_path: path.join(flat, 'dark', '0.png'), output_path: '' });
      expect(early.packets.map((p) => p.type)).toEqual(['ack', 'error']);
      expect(early.error?.data.code).toBe('bug');
      expect(await stderrWhen(w, 'no samples loaded')).toContain('no samples loaded');
      await w.request('load-samples', { path: path.join(flat, 'dark'), label: 'dark' });
      await w.request('load-samples', { path: path.join(flat, 'bright'), label: 'bright' });
      const probe = path.join(dir, 'probe.png');
      await writeFlat(probe, 30, rand);
      expect((await w.request('infer', { input_path: probe, output_path: '' })).label).toBe('dark');
      await writeFlat(probe, 230, rand);
      expect((await w.request('infer', { input_path: probe, output_path: '' })).label).toBe('bright');
    } finally {
      expect(await w.close()).toBe(0);
    }
  });

  test('without classes the worker refuses to start, with a usage message and exit code 2', async () => {
    const w = spawnWorker([]);
    expect(await w.close()).toBe(2);
    expect(await stderrWhen(w, '--classes')).toContain('--classes');
    expect(w.received).toEqual([]);
    const both = spawnWorker(['--classes', 'a,a']);
    expect(await both.close()).toBe(2);
    expect(both.stderr).toContain('class "a" is given twice');
  });
});
