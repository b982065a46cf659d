/** `flame clean`, `flame report` and `flame metadata` run as a user would, in a child process. */
import { createHash } from 'node:crypto';
import { jest } from '@jest/globals';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clean } from '../../analyses/image-cleaning/index.js';
import { getImageMetadata } from '../../src/images/index.js';
import { makeFixture, SEED_RULES, uuidKeyed, type Fixture } from '../cleaning/fixture.js';
import { tempDir } from '../images/helpers.js';
import { runCli } from './run-cli.js';

// Each test starts several CLI processes (each loads tsx); on a loaded 2-core machine two of them
// took over jest's default 30 s.
jest.setTimeout(120_000);

let fx: Fixture;
let dir: string;
let cleanup: () => Promise<void>;
let requestFile: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('flame-cli-clean-'));
  fx = await makeFixture(dir);
  // a diagnosis result (keyed by uuid, path fields): no "auto"
  requestFile = join(dir, 'result.json');
  await writeFile(requestFile, JSON.stringify(uuidKeyed(fx.diagnosis)));
});
afterAll(() => cleanup());

async function hashes(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const c of await readdir(root)) for (const f of await readdir(join(root, c))) out.push(`${c}/${f}:${createHash('sha256').update(await readFile(join(root, c, f))).digest('hex')}`);
  return out.sort();
}

describe('flame metadata', () => {
  it('prints the seed-000 metadata, as a table or JSON; exit codes name the failure', async () => {
    const [table, json, missing, corrupt] = await Promise.all([
      runCli(['metadata', fx.path['dog/1']]),
      runCli(['metadata', fx.path['dog/1'], '--json']),
      runCli(['metadata', join(dir, 'nope.png')]),
      (async () => {
        await writeFile(join(dir, 'bad.png'), (await readFile(fx.path['dog/1'])).subarray(0, 40));
        return runCli(['metadata', join(dir, 'bad.png')]);
      })(),
    ]);
    const want = await getImageMetadata(fx.path['dog/1']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(want);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^channels\s+3$/m);
    expect(table.stdout).toMatch(/^height\s+8$/m);
    expect(table.stdout).toMatch(/^width\s+16$/m);
    expect(table.stdout).toContain(`mean      ${want.mean.map((v) => v.toFixed(6)).join(' ')}`);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`flame: not found: Image ${join(dir, 'nope.png')} does not exist`);
    expect(corrupt.code).toBe(2);
    expect(corrupt.stderr).toMatch(/^flame: bad request: .*bad\.png/m);
  });
});

describe('flame clean', () => {
  it('asks for "auto" when the request lacks it; writes the response and a cleaned copy; sources untouched', async () => {
    const before = await hashes(fx.root);
    const out = join(dir, 'clean.json');
    const copy = join(dir, 'cleaned');
    const [noAuto, applied, toStdout, conservative] = await Promise.all([
      runCli(['clean', '--request', requestFile]),
      // seed 000's rules (act on every outlier): the fixture exercises each of them
      runCli(['clean', '--request', requestFile, '--auto', '--max-given-confidence', '1', '--out', out, '--apply', copy, '--root', fx.root]),
      runCli(['clean', '--request', requestFile, '--reviewed']),
      runCli(['clean', '--request', requestFile, '--auto']),
    ]);
    expect(noAuto.code).toBe(2);
    expect(noAuto.stderr).toContain('"auto" is missing; set it in the JSON or pass --auto or --reviewed');

    expect(applied.code).toBe(0);
    const request = { ...(JSON.parse(await readFile(requestFile, 'utf8')) as object), auto: true };
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual(clean(request, SEED_RULES));
    expect(applied.stdout).toMatch(/^corrected\s+1$/m);
    expect(applied.stdout).toMatch(/^removed\s+6$/m);
    expect(applied.stdout).toMatch(/^kept\s+2$/m);
    expect((await readdir(copy)).sort()).toEqual(['bird', 'cat', 'dog', 'manifest.json']);
    expect(await readdir(join(copy, 'dog'))).toEqual(['2.png']);
    expect(await hashes(fx.root)).toEqual(before);

    // --reviewed without --out: the response on stdout, the summary on stderr
    expect(toStdout.code).toBe(0);
    expect(JSON.parse(toStdout.stdout)).toEqual(clean({ ...request, auto: false }));
    expect(toStdout.stderr).toMatch(/^corrected\s+3$/m);

    // the default --auto: no mislabeled outlier of the fixture has its own class below 1 %, so they
    // are left for review; the lighting and blurry outliers are removed
    expect(conservative.code).toBe(0);
    expect(JSON.parse(conservative.stdout)).toEqual(clean(request));
    expect(conservative.stderr).toMatch(/^corrected\s+0$/m);
    expect(conservative.stderr).toMatch(/^removed\s+3$/m);
    expect(conservative.stderr).toMatch(/^left_for_review\s+4$/m);
  });

  it('refuses --apply into the source folder and a malformed request, naming the field', async () => {
    const bad = join(dir, 'bad-request.json');
    const req = uuidKeyed(fx.diagnosis) as unknown as { tasks: Array<{ datasets: { outliers: { classes: string[] } } }> };
    req.tasks[1].datasets.outliers.classes = 'cat' as unknown as string[];
    await writeFile(bad, JSON.stringify(req));
    const [inside, malformed] = await Promise.all([
      runCli(['clean', '--request', requestFile, '--auto', '--apply', join(fx.root, 'clean'), '--root', fx.root]),
      runCli(['clean', '--request', bad, '--auto']),
    ]);
    expect(inside.code).toBe(2);
    expect(inside.stderr).toContain('is inside the source folder');
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('flame: bad request: request.tasks[1].datasets.outliers.classes: missing');
  });
});

describe('flame report', () => {
  it('writes the HTML report and prints what it holds; a missing result exits 3', async () => {
    const html = join(dir, 'report.html');
    const [ok, missing] = await Promise.all([
      runCli(['--json', 'report', '--result', requestFile, '--out', html, '--title', 'CLI report', '--root', fx.root]),
      runCli(['report', '--result', join(dir, 'none.json'), '--out', join(dir, 'x.html')]),
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ path: html, images: 9, flagged: 7, plotted: 9, thumbnails: 7, placeholders: 0 });
    const page = await readFile(html, 'utf8');
    expect(page).toContain('<title>CLI report</title>');
    expect(page.match(/<circle /g)).toHaveLength(9);
    expect(page.match(/<img class="thumb"/g)).toHaveLength(8);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('--result');
  });
  it('with --reference, the page and the terminal show precision and recall per task; a bad reference is refused', async () => {
    // keyed by path, as the diagnosis writes results: what a reference is matched against
    const resultFile = join(dir, 'by-path.json');
    await writeFile(resultFile, JSON.stringify(fx.diagnosis));
    const truth = join(dir, 'truth.json');
    await writeFile(truth, JSON.stringify({ mislabeled: { 'cat/2.png': { true_class: 'dog' }, 'bird/1.png': { true_class: 'dog' } }, lighting: { 'dog/1.png': 'dark', 'dog/3.png': 'bright' } }));
    const badTruth = join(dir, 'bad-truth.json');
    await writeFile(badTruth, JSON.stringify({ lighting: ['dog/1.png'] }));
    const html = join(dir, 'checked.html');
    const [ok, bad, missing] = await Promise.all([
      runCli(['report', '--result', resultFile, '--out', html, '--reference', truth, '--no-thumbnails']),
      runCli(['report', '--result', resultFile, '--out', join(dir, 'y.html'), '-r', badTruth]),
      runCli(['report', '--result', resultFile, '--out', join(dir, 'z.html'), '--reference', join(dir, 'no-truth.json')]),
    ]);
    expect(ok.code).toBe(0);
    // task files flagged faults tp fp fn tn precision recall f1 accuracy relabel, as flame check prints them
    expect(ok.stdout).toMatch(/mislabeled_images\s+9\s+5\s+2\s+1\s+4\s+1\s+3\s+0\.200\s+0\.500\s+0\.286\s+0\.444\s+1\.000/);
    expect(ok.stdout).toMatch(/lighting_conditions\s+9\s+2\s+2\s+2\s+0\s+0\s+7\s+1\.000\s+1\.000\s+1\.000\s+1\.000/);
    expect(ok.stderr).toContain('warning: task blurry: no reference for it, skipped');
    const page = await readFile(html, 'utf8');
    expect(page).toContain('<table id="check"');
    expect(page).toContain('Against the reference: precision <b>0.200</b>, recall <b>0.500</b>');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`reference ${badTruth}: "lighting" must map paths`);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('--reference');
  });
});
