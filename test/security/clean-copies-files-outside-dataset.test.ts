/**
 * Attack (issue 8, item 8): a crafted diagnosis result run through `flame clean --auto --apply OUT`
 * names files outside the dataset — the node's private key and an SSH host key by absolute and `../`
 * paths, an image and an IDX file elsewhere on the disk, symbolic links inside the dataset that lead
 * out, and a non-image inside the dataset. Before the fix every one of them was copied into OUT.
 * Now only images inside the operator's `--root` are read: OUT holds exactly the dataset's cleaned
 * copy, byte for byte, no byte of a secret appears in it (not in a copy, not in decoded pixels, not
 * in the manifest), and every refusal is listed in the manifest and named on stderr.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_FILE, type CleaningManifest } from '../../analyses/image-cleaning/index.js';
import { runCli, type CliRun } from '../cli/run-cli.js';
import { tempDir } from '../images/helpers.js';
import { makeOutsideFixture, readTree, secretsIn, secretsInFile, type OutsideFixture } from './outside-dataset-fixture.js';

let dir: string;
/** Outputs go to a folder of their own, away from the secrets' folders. */
let outs: string;
let cleanup: () => Promise<void>;
let cleanupOuts: () => Promise<void>;
let ofx: OutsideFixture;
let requestFile: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('flame-sec-clean-'));
  ({ dir: outs, cleanup: cleanupOuts } = await tempDir('flame-sec-clean-out-'));
  ofx = await makeOutsideFixture(dir);
  requestFile = join(dir, 'crafted-result.json');
  await writeFile(requestFile, JSON.stringify(ofx.result));
});
afterAll(() => Promise.all([cleanup(), cleanupOuts()]));

/** Every secret needle found in the files of `out` or in their decoded pixels. */
async function leaks(out: Map<string, Buffer>): Promise<string[]> {
  const hits: string[] = [];
  for (const [name, bytes] of out) {
    hits.push(...(await secretsInFile(name, bytes, ofx.secrets)));
  }
  return hits;
}

describe('flame clean --auto --apply with a crafted result', () => {
  let run: CliRun;
  let out: string;
  let tree: Map<string, Buffer>;
  beforeAll(async () => {
    out = join(outs, 'cleaned');
    // run where a relative `../` path leads out of the dataset
    run = await runCli(['clean', '--request', requestFile, '--auto', '--max-given-confidence', '1', '--out', join(outs, 'response.json'), '--root', ofx.root, '--apply', out], {}, ofx.root);
    tree = await readTree(out).catch(() => new Map());
  }, 60_000);

  it('copies exactly the dataset files the cleaning keeps, byte for byte, and nothing else', async () => {
    expect({ code: run.code, stderr: run.code === 0 ? 'ok' : run.stderr }).toEqual({ code: 0, stderr: 'ok' });
    const source = await readTree(ofx.root);
    // the fixture's cleaning: cat/2 relabelled to dog; cat/1 and bird/1 kept; the rest removed
    expect([...tree.keys()].sort()).toEqual(['bird/1.png', 'cat/1.png', 'dog/2.png', MANIFEST_FILE].sort());
    expect(tree.get('cat/1.png')!.equals(source.get('cat/1.png')!)).toBe(true);
    expect(tree.get('bird/1.png')!.equals(source.get('bird/1.png')!)).toBe(true);
    expect(tree.get('dog/2.png')!.equals(source.get('cat/2.png')!)).toBe(true);
  });

  it('puts no byte of a secret in the output folder or the manifest', async () => {
    expect(tree.size).toBeGreaterThan(0);
    expect(await leaks(tree)).toEqual([]);
    expect(secretsIn('stdout', Buffer.from(run.stdout), ofx.secrets)).toEqual([]);
    expect(secretsIn('stderr', Buffer.from(run.stderr), ofx.secrets)).toEqual([]);
  });

  it('lists every refused file in the manifest with its reason and names it on stderr', async () => {
    const manifest = JSON.parse(tree.get(MANIFEST_FILE)!.toString('utf8')) as CleaningManifest;
    const refused = [...manifest.refused].sort((a, b) => (a.uuid < b.uuid ? -1 : 1));
    const want = [...ofx.crafted].sort((a, b) => (a.uuid < b.uuid ? -1 : 1));
    expect(refused.map((r) => [r.uuid, r.source, r.reason])).toEqual(want.map((c) => [c.uuid, c.path, c.reason]));
    expect(manifest.counts).toMatchObject({ kept: 2, corrected: 1, refused: ofx.crafted.length });
    expect(manifest.files.map((f) => f.uuid)).not.toEqual(expect.arrayContaining([expect.stringMatching(/^evil-/)]));
    for (const c of ofx.crafted) {
      const line = run.stderr.split('\n').find((l) => l.includes(c.path) && l.includes('refused'));
      expect({ path: c.path, line: line ?? 'no stderr line names it' }).toEqual({ path: c.path, line: expect.stringContaining(c.reason === 'outside_roots' ? 'outside the dataset roots' : 'not an image') });
    }
    expect(run.stdout).toMatch(new RegExp(`^refused\\s+${ofx.crafted.length}$`, 'm'));
  });
});

describe('flame clean --apply needs the dataset roots from the operator', () => {
  it('without --source or --root: a one-line usage error naming the flags, nothing written', async () => {
    const out = join(outs, 'no-root');
    const r = await runCli(['clean', '--request', requestFile, '--auto', '--max-given-confidence', '1', '--out', join(outs, 'r2.json'), '--apply', out], {}, ofx.root);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--apply needs .*--root DIR.*--source DIR/);
    expect(await readTree(out).catch(() => 'absent')).toBe('absent');
  });
});
