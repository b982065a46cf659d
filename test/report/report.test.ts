/**
 * The diagnosis report: the model's counts, and the page rendered in headless Chromium (no console
 * errors, no network, one point per image, thumbnails decoded, tables filled, task selector works;
 * a click on a point or a row opens the image and its record, filters hide rows, headings sort them,
 * a duplicate pair shows both images, a reference gives precision/recall per task). Screenshots are
 * saved in the temp folder (their paths are printed), or in REPORT_SHOTS when set, for a person to
 * look at.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildDataset } from '../../analyses/image-cleaning/pooled.js';
import { BadRequestError } from '../../src/errors.js';
import { parseReference } from '../../src/evaluation/reference.js';
import type { ClassFiles, DiagnosisResponse, DatasetFile, TaskName } from '../../src/images/types.js';
import { buildReportModel, commonFolder, renderDiagnosisReport, writeDiagnosisReport } from '../../src/report/index.js';
import { makeFixture, uuidKeyed, type Fixture } from '../cleaning/fixture.js';
import { tempDir } from '../images/helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let fx: Fixture;
let dir: string;
let cleanup: () => Promise<void>;
let diagnosis: DiagnosisResponse;
const REMOTE = '/nonexistent/node-c/cat/9.png';

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('flame-report-'));
  fx = await makeFixture(dir);
  diagnosis = structuredClone(fx.diagnosis);
  // a flagged image of another node: its file is not on this machine; no projection either
  const remote: DatasetFile & { node: string } = { ...fx.file['cat/1'], uuid: 'remote-1', current_class: 'bird', original_class: 'cat', confidence_vectors: [[0.2, 0.1, 0.7]], node: 'node-c' };
  diagnosis.tasks[0].datasets.outliers.class_files.cat[REMOTE] = remote;
});
afterAll(() => cleanup());

/** Self-confidence scores planted on the mislabeled outliers (name → score; the remote one: 0.3). */
const SCORES: Record<string, number> = { 'cat/2': 0.1, 'cat/3': 0.35, 'dog/2': 0.4, 'dog/3': 0.05, 'bird/3': 0.2 };

/**
 * `diagnosis` with scores on the mislabeled outliers and a duplicates task, as the analysis writes
 * it: bird/1 (local) an exact duplicate of cat/1 (node-a, kept: an inlier of the task), and dog/2 a
 * near duplicate of an image of node-c that the result does not hold.
 */
function richDiagnosis(): DiagnosisResponse {
  const d = structuredClone(diagnosis);
  for (const files of Object.values(d.tasks[0].datasets.outliers.class_files)) {
    for (const [key, f] of Object.entries(files)) {
      const name = Object.keys(fx.path).find((n) => fx.path[n] === key);
      Object.assign(f, { issue: 'mislabeled', score: name ? SCORES[name] : 0.3 });
    }
  }
  const dups: Record<string, Record<string, unknown>> = {
    'bird/1': { issue: 'exact_duplicate', score: 0, duplicate_of: fx.file['cat/1'].uuid, duplicate_of_node: 'node-a' },
    'dog/2': { issue: 'near_duplicate', score: 3, duplicate_of: null, duplicate_of_node: 'node-c' },
  };
  const out: Record<string, ClassFiles> = {};
  const inl: Record<string, ClassFiles> = {};
  for (const ds of Object.values(d.tasks[1].datasets)) {
    for (const [cls, files] of Object.entries(ds.class_files)) {
      for (const [key, f] of Object.entries(files)) {
        const name = Object.keys(fx.path).find((n) => fx.path[n] === key)!;
        const flag = dups[name];
        ((flag ? out : inl)[cls] ??= {})[key] = { ...f, ...(flag ?? {}) } as DatasetFile;
      }
    }
  }
  d.tasks.push({ name: 'duplicates' as TaskName, datasets: { outliers: buildDataset(d.tasks[1].datasets.outliers.classes, out), inliers: buildDataset(d.tasks[1].datasets.outliers.classes, inl) } });
  return d;
}

/** Ground truth over the fixture: cat/2 and dog/3 are mislabeled (found), bird/1 too (missed); dog/1 is dark. */
const REFERENCE = {
  mislabeled: { 'cat/2.png': { true_class: 'dog', given_class: 'cat' }, 'dog/3.png': { true_class: 'cat', given_class: 'dog' }, 'bird/1.png': { true_class: 'dog', given_class: 'bird' } },
  lighting: { 'dog/1.png': 'dark' },
};

describe('buildReportModel', () => {
  it('counts images per class and per node, and outliers per task', () => {
    const m = buildReportModel(diagnosis);
    expect(m.tasks).toEqual(['mislabeled_images', 'lighting_conditions', 'blurry']);
    expect(m.images).toHaveLength(10);
    const row = (rows: typeof m.per_class, name: string) => rows.find((r) => r.name === name);
    expect(row(m.per_class, 'cat')).toEqual({ name: 'cat', images: 4, outliers: { mislabeled_images: 3, lighting_conditions: 0, blurry: 0 }, flagged: 3 });
    expect(row(m.per_class, 'dog')).toEqual({ name: 'dog', images: 3, outliers: { mislabeled_images: 2, lighting_conditions: 2, blurry: 0 }, flagged: 3 });
    expect(m.per_node.map((r) => [r.name, r.images, r.flagged])).toEqual([
      ['local', 3, 2],
      ['node-a', 3, 2],
      ['node-b', 3, 3],
      ['node-c', 1, 1],
    ]);
    const remote = m.images.find((i) => i.uuid === 'remote-1')!;
    expect(remote).toMatchObject({ node: 'node-c', given_class: 'cat', suggested_class: 'bird', flagged_by: ['mislabeled_images'] });
    expect(remote.confidence).toBeCloseTo(0.7, 12);
    expect(m.images.find((i) => i.key === fx.path['dog/2'])!.suggested_class).toBeUndefined(); // suggestion == given
  });

  it('names the missing field of a malformed result', () => {
    expect(() => buildReportModel({ dataset_uuid: 'x' })).toThrow(BadRequestError);
    expect(() => buildReportModel({ dataset_uuid: 'x' })).toThrow(/^result\.tasks: missing/);
    expect(() => buildReportModel({ tasks: [{ name: 'a', datasets: {} }] })).toThrow(/^result\.tasks\[0\]\.datasets\.outliers: missing/);
  });
});

describe('the HTML', () => {
  it('is self-contained and escapes what it prints', async () => {
    const evil = structuredClone(diagnosis);
    evil.dataset_uuid = '<script>alert(1)</script>';
    const { html } = await renderDiagnosisReport(evil, { title: 'A & B <report>' });
    expect(html).toContain('<title>A &amp; B &lt;report&gt;</title>');
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/@import|url\(/);
  });

  it('shows paths relative to the folder all files share', async () => {
    expect(commonFolder(['/d/node-a/x/1.png', '/d/node-b/y/2.png', '/d/node-a/z.png'])).toBe('/d/');
    expect(commonFolder(['/d/a/1.png', '/e/a/1.png'])).toBe('');
    expect(commonFolder(['rel/a/1.png', 'rel/a/2.png'])).toBe('rel/a/');
    const { html } = await renderDiagnosisReport(fx.diagnosis, { thumbnails: false });
    expect(html).toContain(`relative to <code>${fx.root}/</code>`);
    expect(html).toContain('>dog/3.png</td>');
  });

  it('reads paths, issues and scores of a result keyed by uuid with a path field', async () => {
    const { html, model, thumbnails } = await renderDiagnosisReport(uuidKeyed(fx.diagnosis), { roots: [fx.root] });
    expect(model.images.find((i) => i.uuid === fx.file['dog/1'].uuid)).toMatchObject({ key: fx.file['dog/1'].uuid, path: fx.path['dog/1'], verdicts: { lighting_conditions: { issue: 'too_dark', score: 0.25 } } });
    expect([...thumbnails!.values()].filter((t) => 'src' in t)).toHaveLength(7);
    expect(html).toContain('>dog/1.png</td>');
    expect(html).toContain('<td>too_dark</td>');
  });

  it('leaves thumbnails out when asked', async () => {
    const { html } = await renderDiagnosisReport(diagnosis, { thumbnails: false });
    expect(html).not.toContain('class="thumb');
  });
});

describe('in headless Chromium', () => {
  let browser: Browser | undefined;
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 30000);
  afterAll(() => browser?.close());

  const shotsDir = () => process.env.REPORT_SHOTS ?? join(dir, 'shots');
  async function shot(page: Page, name: string, fullPage = false): Promise<void> {
    await mkdir(shotsDir(), { recursive: true });
    const file = join(shotsDir(), `${name}.png`);
    await page.screenshot({ path: file, fullPage });
    expect((await readFile(file)).subarray(1, 4).toString()).toBe('PNG');
    process.stdout.write(`report screenshot: ${file}\n`);
  }

  /** Opens `out` in a fresh page that records console errors, page errors and requests. */
  async function open(out: string, viewport = { width: 1280, height: 900 }) {
    const context = await browser!.newContext({ viewport });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`file://${out}`, { waitUntil: 'load' });
    const done = async () => {
      expect(problems).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('file://') && !u.startsWith('data:'))).toEqual([]);
      await context.close();
    };
    return { page, done };
  }

  let rich: { out: string; index: (name: string) => number } | undefined;
  /** The report of {@link richDiagnosis} with the reference, written once for the tests below. */
  async function richReport(): Promise<{ out: string; index: (name: string) => number }> {
    if (rich) return rich;
    const out = join(dir, 'out', 'rich.html');
    const d = richDiagnosis();
    const summary = await writeDiagnosisReport(d, { title: 'Fixture diagnosis with a reference', out, roots: [fx.root], reference: parseReference(REFERENCE, 'fixture truth') });
    // flagged images first, then the kept cat/1; cat/1 and bird/1 are flagged by nothing else
    expect(summary).toMatchObject({ images: 10, flagged: 9, thumbnails: 8, placeholders: 1, other_thumbnails: 1, refused: 1 });
    const model = buildReportModel(d);
    rich = { out, index: (name) => model.images.findIndex((i) => i.uuid === (name === 'remote' ? 'remote-1' : fx.file[name].uuid)) };
    return rich;
  }
  type Row = { cells: ArrayLike<{ textContent: string | null }> };
  const visibleTexts = (page: Page, table: string, col: number) =>
    page.locator(`${table} tbody tr:not([hidden])`).evaluateAll((rows, c) => rows.map((r) => (r as unknown as Row).cells[c].textContent), col);

  it('renders: points, thumbnails, placeholders, tables, task selector; no errors, no network', async () => {
    const out = join(dir, 'out', 'report.html');
    const summary = await writeDiagnosisReport(diagnosis, { title: 'Fixture diagnosis', out, thumbnails: true, roots: [fx.root] });
    // the remote image lies outside the root: refused unread
    expect(summary).toMatchObject({ path: out, images: 10, flagged: 8, plotted: 9, thumbnails: 7, placeholders: 1, refused: 1 });
    expect((await stat(out)).size).toBe(summary.bytes);

    const { page, done } = await open(out);

    expect(await page.title()).toBe('Fixture diagnosis');
    // one point per image with a projection; the remote image has none and is reported as such
    expect(await page.locator('svg#scatter circle').count()).toBe(9);
    expect(await page.locator('#unplotted').textContent()).toContain('1 image has no 2-D projection');
    // every point carries a class colour, outliers of any task are marked by default
    expect(await page.locator('svg#scatter circle.flag').count()).toBe(7);
    expect(await page.locator('#marked-count').textContent()).toBe('7 marked');
    await page.selectOption('#task-select', 'lighting_conditions');
    expect(await page.locator('svg#scatter circle.flag').count()).toBe(2);
    expect(await page.locator('svg#scatter circle.flag[data-class="dog"]').count()).toBe(2);
    await page.selectOption('#task-select', 'blurry');
    expect(await page.locator('svg#scatter circle.flag').count()).toBe(1);
    await page.selectOption('#task-select', '');
    expect(await page.locator('svg#scatter circle.flag').count()).toBe(0);
    await page.selectOption('#task-select', '*');

    // thumbnails: decoded images for readable files, a placeholder naming the node otherwise
    const imgs = page.locator('img.thumb');
    expect(await imgs.count()).toBe(7 + 1); // dog/3 is in two task tables
    type Img = { complete: boolean; naturalWidth: number };
    const decoded = await imgs.evaluateAll((els) => els.map((e) => (e as unknown as Img).complete && (e as unknown as Img).naturalWidth > 0));
    expect(decoded.every(Boolean)).toBe(true);
    const ph = page.locator('.thumb.ph');
    expect(await ph.count()).toBe(1);
    expect(await ph.textContent()).toContain('node-c');

    // tables filled
    expect(await page.locator('#per-class tbody tr').count()).toBe(3);
    expect(await page.locator('#per-node tbody tr').count()).toBe(4);
    expect(await page.locator('#per-class tfoot td').first().textContent()).toBe('10');
    expect(await page.locator('#task-mislabeled-images table.outliers tbody tr').count()).toBe(6);
    expect(await page.locator('#task-lighting-conditions table.outliers tbody tr').count()).toBe(2);
    expect(await page.locator('#task-blurry table.outliers tbody tr').count()).toBe(1);
    const remoteRow = page.locator('#task-mislabeled-images tr', { hasText: REMOTE });
    expect(await remoteRow.locator('td').allTextContents()).toEqual(expect.arrayContaining(['node-c', 'cat', 'bird', '0.70']));

    const shot = join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect((await readFile(shot)).subarray(1, 4).toString()).toBe('PNG');
    process.stdout.write(`report screenshot: ${shot}\n`);
    if (process.env.REPORT_SCREENSHOT) await page.screenshot({ path: process.env.REPORT_SCREENSHOT, fullPage: true });

    await done();
  }, 30000);

  it('a click on a point opens the image and its record; a click on another point switches; Esc closes', async () => {
    const { out, index } = await richReport();
    const { page, done } = await open(out);
    const panel = page.locator('#detail');
    expect(await panel.isVisible()).toBe(false);

    await page.locator(`svg#scatter circle[data-i="${index('cat/2')}"]`).click();
    expect(await panel.isVisible()).toBe(true);
    expect(await panel.locator('h3').textContent()).toBe('2.png');
    const record = async () => {
      const terms = await panel.locator('dt').allTextContents();
      const values = await panel.locator('dd').allTextContents();
      return Object.fromEntries(terms.map((t, k) => [t, values[k]]));
    };
    expect(await record()).toMatchObject({ file: fx.path['cat/2'], node: 'node-a', class: 'cat', suggested: 'dog (confidence 0.80)', size: '12×10×1', uuid: fx.file['cat/2'].uuid });
    const verdicts = await panel.locator('table.verdicts tr[data-task]').evaluateAll((rows) => rows.map((r) => Array.from((r as unknown as Row).cells, (c) => c.textContent)));
    expect(verdicts).toEqual([
      ['Mislabeled images', 'flagged', 'mislabeled', '0.1'],
      ['Lighting conditions', 'not flagged', '–', '–'],
      ['Blurry', 'not flagged', '–', '–'],
      ['Duplicates', 'not flagged', '–', '–'],
    ]);
    type Img = { complete: boolean; naturalWidth: number; src: string };
    const big = panel.locator('img.big');
    expect(await big.count()).toBe(1);
    expect(await big.evaluate((e) => (e as unknown as Img).complete && (e as unknown as Img).naturalWidth)).toBe(12);
    // the point is highlighted, and so are its rows in the task tables
    expect(await page.locator('svg#scatter circle.sel').getAttribute('data-i')).toBe(String(index('cat/2')));
    expect(await page.locator('table.outliers tr.sel').count()).toBe(1);
    await shot(page, 'point-clicked');

    // a point no task flags: its image comes from the page's records, not from a table
    await page.locator(`svg#scatter circle[data-i="${index('cat/1')}"]`).click();
    expect(await panel.locator('h3').textContent()).toBe('1.png');
    expect(await panel.locator('figcaption').allTextContents()).toEqual(['this image (not flagged)', 'a duplicate of it']);
    expect(await panel.locator('img.big').evaluateAll((els) => els.map((e) => (e as unknown as Img).naturalWidth))).toEqual([8, 8]);
    expect(await record()).toMatchObject({ node: 'node-a', 'duplicated by': `${fx.path['bird/1']} (local)` });

    // the remote image has no projection: its row opens it, with the placeholder naming why
    await page.locator('#task-mislabeled-images tr', { hasText: REMOTE }).locator('td.file').click();
    expect(await panel.locator('.big.ph').textContent()).toBe('not readable here');
    expect(await record()).toMatchObject({ file: REMOTE, node: 'node-c', suggested: 'bird (confidence 0.70)' });

    await page.keyboard.press('Escape');
    expect(await panel.isVisible()).toBe(false);
    expect(await page.locator('svg#scatter circle.sel').count()).toBe(0);
    await done();
  }, 30000);

  it('a filter hides rows, by task, class, node, score and file; Clear shows them again', async () => {
    const { out } = await richReport();
    const { page, done } = await open(out);
    const mis = '#task-mislabeled-images table.outliers';
    const shownRows = () => page.locator(`${mis} tbody tr:not([hidden])`).count();
    expect(await shownRows()).toBe(6);
    expect(await page.locator('#f-count').textContent()).toBe('11 of 11 rows shown'); // 6 + 2 + 1 + 2

    await page.selectOption('#f-class', 'dog');
    expect(await visibleTexts(page, mis, 3)).toEqual(['dog', 'dog']);
    expect(await page.locator(`${mis} tbody tr[hidden]`).count()).toBe(4);
    expect(await page.locator('#task-mislabeled-images .shown').textContent()).toBe('2 of 6 shown.');
    expect(await page.locator('#task-blurry tbody tr:not([hidden])').count()).toBe(0);
    expect(await page.locator('#task-blurry tr.nomatch').isVisible()).toBe(true);

    await page.selectOption('#f-class', '');
    await page.fill('#f-min', '0.2');
    await page.fill('#f-max', '0.35');
    expect((await visibleTexts(page, mis, 7)).sort()).toEqual(['0.200', '0.300', '0.350']);
    // rows of tasks without a score in range are hidden too: lighting has none, duplicates 0 and 3
    expect(await page.locator('#task-lighting-conditions tbody tr:not([hidden])').count()).toBe(0);
    expect(await page.locator('#task-duplicates tbody tr:not([hidden])').count()).toBe(0);
    await page.locator('#task-mislabeled-images').scrollIntoViewIfNeeded();
    await shot(page, 'filtered-by-score');

    await page.locator('#filters button[type=reset]').click();
    // A locator wait: waitForFunction's polling evaluates a string in the page, which the report's
    // CSP (no 'unsafe-eval') refuses whenever the first check does not already pass.
    await page.locator('table.outliers tbody tr[hidden]').first().waitFor({ state: 'detached' });
    await page.selectOption('#f-node', 'node-b');
    expect(await visibleTexts(page, mis, 2)).toEqual(['node-b', 'node-b']);
    await page.selectOption('#f-node', '');
    await page.fill('#f-text', 'bird/');
    expect(await visibleTexts(page, mis, 1)).toEqual([fx.path['bird/3']]);
    await page.fill('#f-text', '');

    // the task filter hides the other tasks' sections
    await page.selectOption('#f-task', 'lighting_conditions');
    expect(await page.locator('#task-mislabeled-images').isVisible()).toBe(false);
    expect(await page.locator('#task-lighting-conditions').isVisible()).toBe(true);
    expect(await page.locator('#f-count').textContent()).toBe('2 of 2 rows shown');
    await done();
  }, 30000);

  it('a column heading sorts its table, again reverses it; rows without a value go last', async () => {
    const { out } = await richReport();
    const { page, done } = await open(out);
    const mis = '#task-mislabeled-images table.outliers';
    const files = () => visibleTexts(page, mis, 1);
    // by class (cat, dog, bird), then path (shown whole: the remote file shares no folder with the others)
    expect(await files()).toEqual([REMOTE, fx.path['cat/2'], fx.path['cat/3'], fx.path['dog/2'], fx.path['dog/3'], fx.path['bird/3']]);
    const score = page.locator(`${mis} th[data-sort="score"] button`);
    await score.click();
    expect(await visibleTexts(page, mis, 7)).toEqual(['0.050', '0.100', '0.200', '0.300', '0.350', '0.400']);
    expect(await page.locator(`${mis} th[data-sort="score"]`).getAttribute('aria-sort')).toBe('ascending');
    await score.click();
    expect(await visibleTexts(page, mis, 7)).toEqual(['0.400', '0.350', '0.300', '0.200', '0.100', '0.050']);
    expect(await files()).toEqual([fx.path['dog/2'], fx.path['cat/3'], REMOTE, fx.path['bird/3'], fx.path['cat/2'], fx.path['dog/3']]);
    await shot(page, 'sorted-by-score-desc');
    // confidence: dog/2 (no better class) and bird/3 (no vectors) have none and stay last either way
    const conf = page.locator(`${mis} th[data-sort="confidence"] button`);
    await conf.click();
    expect(await visibleTexts(page, mis, 5)).toEqual(['0.40', '0.70', '0.80', '0.90', '–', '–']);
    await conf.click();
    expect(await visibleTexts(page, mis, 5)).toEqual(['0.90', '0.80', '0.70', '0.40', '–', '–']);
    // sorting and filtering together: the filter still applies to the reordered rows
    await page.selectOption('#f-class', 'cat');
    expect(await visibleTexts(page, mis, 5)).toEqual(['0.80', '0.70', '0.40']);
    await done();
  }, 30000);

  it('a duplicate pair shows both images side by side, in its row and when its point is clicked', async () => {
    const { out, index } = await richReport();
    const { page, done } = await open(out);
    const row = page.locator(`#task-duplicates tr[data-i="${index('bird/1')}"]`);
    type Img = { complete: boolean; naturalWidth: number };
    const pair = row.locator('.pair img.thumb');
    expect(await pair.count()).toBe(2);
    expect(await pair.evaluateAll((els) => els.map((e) => (e as unknown as Img).complete && (e as unknown as Img).naturalWidth > 0))).toEqual([true, true]);
    // the kept image is cat/1's: the same thumbnail the panel shows for cat/1's point
    expect(await pair.nth(1).getAttribute('data-i')).toBe(String(index('cat/1')));
    expect(await row.locator('td.file').nth(1).textContent()).toBe(`${fx.path['cat/1']} (node-a)`);
    expect(await row.locator('td').allTextContents()).toEqual(expect.arrayContaining(['exact_duplicate', '0']));
    // a duplicate of an image the result does not hold: its own image and a placeholder naming the node
    const other = page.locator(`#task-duplicates tr[data-i="${index('dog/2')}"]`);
    expect(await other.locator('.pair img.thumb').count()).toBe(1);
    expect(await other.locator('.pair .thumb.ph').textContent()).toBe('kept image not in this resultnode-c');
    await row.scrollIntoViewIfNeeded();
    await shot(page, 'duplicate-pair-row');

    await page.locator(`svg#scatter circle[data-i="${index('bird/1')}"]`).click();
    const panel = page.locator('#detail');
    expect(await panel.locator('figcaption').allTextContents()).toEqual(['this image', 'the image it duplicates']);
    expect(await panel.locator('img.big').evaluateAll((els) => els.map((e) => (e as unknown as Img).naturalWidth))).toEqual([8, 8]);
    expect(await panel.locator('dd').allTextContents()).toContain(`${fx.path['cat/1']} (node-a)`);
    await shot(page, 'duplicate-pair-panel');
    await done();
  }, 30000);

  it('shows precision and recall per task against a reference, as flame check computes them', async () => {
    const { out } = await richReport();
    const { page, done } = await open(out);
    const cells = (task: string) => page.locator(`#check tr[data-task="${task}"] td`).allTextContents();
    // mislabeled: 6 flagged of 10, faults cat/2, dog/3 (found, both relabelled right) and bird/1 (missed)
    expect(await cells('mislabeled_images')).toEqual(['10', '6', '3', '2', '4', '1', '3', '0.333', '0.667', '0.444', '0.500', '1.000']);
    // lighting (9 files: the remote one is in the mislabeled task only): dog/1 found, dog/3 a false alarm
    expect(await cells('lighting_conditions')).toEqual(['9', '2', '1', '1', '1', '0', '7', '0.500', '1.000', '0.667', '0.889', '–']);
    expect(await page.locator('#check tbody tr').count()).toBe(2);
    expect(await page.locator('#reference ul.warnings li').allTextContents()).toEqual(['task blurry: no reference for it, skipped', 'task duplicates: no reference for it, skipped']);
    expect(await page.locator('#summary .card', { hasText: 'Mislabeled images' }).textContent()).toContain('precision 0.333 · recall 0.667');
    expect(await page.locator('#task-lighting-conditions .vs-ref').textContent()).toBe('Against the reference: precision 0.500, recall 1.000, F1 0.667 (1 of 1 faults found, 1 false alarm).');
    await page.locator('#reference').scrollIntoViewIfNeeded();
    await shot(page, 'reference');
    await shot(page, 'full-page', true);
    await done();
  }, 30000);

  it('prints what the result says as text only: hostile paths, classes and nodes stay inert in the page and the panel', async () => {
    const evil = structuredClone(diagnosis);
    const bad = '</script><img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
    const file = evil.tasks[0].datasets.outliers.class_files.cat[fx.path['cat/2']] as DatasetFile & { node?: string; path?: string };
    Object.assign(file, { node: `node-<b>x</b>\u2028`, path: bad });
    for (const t of evil.tasks) for (const ds of Object.values(t.datasets)) for (const files of Object.values(ds.class_files)) if (files[fx.path['cat/2']]) Object.assign(files[fx.path['cat/2']], { path: bad });
    const out = join(dir, 'out', 'evil.html');
    await writeDiagnosisReport(evil, { out, roots: [fx.root] });
    const { page, done } = await open(out);
    const i = buildReportModel(evil).images.findIndex((im) => im.uuid === fx.file['cat/2'].uuid);
    await page.locator(`svg#scatter circle[data-i="${i}"]`).click();
    expect(await page.locator('#detail dd').first().textContent()).toBe(bad);
    expect(await page.locator('#detail b').count()).toBe(0);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
    await done();
  }, 30000);

  it('has no path of this machine or of the sources in its footer', async () => {
    const { out } = await richReport();
    const { page, done } = await open(out);
    const footer = (await page.locator('footer').textContent())!;
    expect(footer).toContain('flame-sdk');
    expect(footer).not.toMatch(/\/|\\|\.(ts|js|md)\b/);
    const html = await readFile(out, 'utf8');
    expect(html).not.toContain(process.cwd());
    expect(html).not.toMatch(/src\/report|README\.md/);
    await done();
  }, 30000);
});
