/**
 * Attack (issue 8, "nothing outside the dataset"): `flame report` makes thumbnails from whatever
 * file a result names. A crafted result flags files outside the dataset (absolute and `../` paths,
 * links inside the dataset that lead out) — among them an image whose pixels are the node's raw
 * private key, which the report inlined as a lossless PNG thumbnail before the fix. Now thumbnails
 * are made only from images inside the operator's `--root`: the page embeds no byte of a secret
 * (searched in the HTML as raw text, base64 and hex, and in the decoded pixels of every thumbnail),
 * the refused files get the placeholder, and the report says how many were refused.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../cli/run-cli.js';
import { tempDir } from '../images/helpers.js';
import { makeOutsideFixture, secretsIn, secretsInFile, type OutsideFixture } from './outside-dataset-fixture.js';

let dir: string;
let cleanup: () => Promise<void>;
let ofx: OutsideFixture;
let resultFile: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('flame-sec-report-'));
  ofx = await makeOutsideFixture(dir);
  resultFile = join(dir, 'crafted-result.json');
  await writeFile(resultFile, JSON.stringify(ofx.result));
});
afterAll(() => cleanup());

/** The thumbnails of the page: the PNG of each `data:` URI. */
function thumbnailPngs(html: string): Buffer[] {
  // in <img src> (flagged images) and in the page's records (the other points' images)
  return [...html.matchAll(/(?:src="|"thumb":")data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1], 'base64'));
}

// the fixture flags 7 of its own images; the crafted result flags its 4 "corrected" entries
const OWN_FLAGGED = 7;

it('embeds no byte of a file outside --root; the refused get placeholders and are counted', async () => {
  const out = join(dir, 'report.html');
  const run = await runCli(['--json', 'report', '--result', resultFile, '--out', out, '--root', ofx.root], {}, ofx.root);
  expect({ code: run.code, stderr: run.code === 0 ? 'ok' : run.stderr }).toEqual({ code: 0, stderr: 'ok' });
  const html = await readFile(out);
  const flaggedCrafted = ofx.crafted.filter((c) => c.as === 'corrected');

  expect(secretsIn('report.html', html, ofx.secrets)).toEqual([]);
  const pngs = thumbnailPngs(html.toString('utf8'));
  expect(pngs.length).toBeGreaterThan(0);
  const hits = await Promise.all(pngs.map((png, i) => secretsInFile(`thumbnail ${i}`, png, ofx.secrets)));
  expect(hits.flat()).toEqual([]);

  const summary = JSON.parse(run.stdout) as Record<string, unknown>;
  expect(summary).toMatchObject({ flagged: OWN_FLAGGED + flaggedCrafted.length, thumbnails: OWN_FLAGGED, refused: flaggedCrafted.length });
  // the page says how many were refused, and each refused file has the placeholder
  const page = html.toString('utf8');
  expect(page).toMatch(new RegExp(`id="refused"[^>]*>${flaggedCrafted.length} flagged images got no thumbnail`));
  for (const c of flaggedCrafted) {
    const row = page.match(new RegExp(`<tr id="mislabeled-images-${c.uuid}">(.*?)</tr>`))?.[1] ?? '';
    expect({ uuid: c.uuid, placeholder: row.includes('class="thumb ph"'), img: row.includes('<img') }).toEqual({ uuid: c.uuid, placeholder: true, img: false });
  }
  expect(run.stderr).toContain(`${flaggedCrafted.length} thumbnails refused`);
}, 60_000);

it('without --root no file is read: every thumbnail is a placeholder and stderr names the flag', async () => {
  const out = join(dir, 'no-root.html');
  const run = await runCli(['--json', 'report', '--result', resultFile, '--out', out], {}, ofx.root);
  expect(run.code).toBe(0);
  const html = await readFile(out);
  expect(secretsIn('no-root.html', html, ofx.secrets)).toEqual([]);
  expect(thumbnailPngs(html.toString('utf8'))).toEqual([]);
  expect(JSON.parse(run.stdout)).toMatchObject({ thumbnails: 0, refused: OWN_FLAGGED + ofx.crafted.filter((c) => c.as === 'corrected').length });
  expect(run.stderr).toMatch(/pass --root DIR/);
}, 60_000);
