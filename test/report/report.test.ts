/**
 * The diagnosis report: the model's counts, and the page rendered in headless Chromium (no console
 * errors, no network, one point per image, thumbnails decoded, tables filled, task selector works).
 * A screenshot is saved in the temp folder (its path is printed) for a person to look at.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { BadRequestError } from '../../src/errors.js';
import type { DiagnosisResponse, DatasetFile } from '../../src/images/types.js';
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
    const { html, model, thumbnails } = await renderDiagnosisReport(uuidKeyed(fx.diagnosis));
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

  it('renders: points, thumbnails, placeholders, tables, task selector; no errors, no network', async () => {
    const out = join(dir, 'out', 'report.html');
    const summary = await writeDiagnosisReport(diagnosis, { title: 'Fixture diagnosis', out, thumbnails: true });
    expect(summary).toMatchObject({ path: out, images: 10, flagged: 8, plotted: 9, thumbnails: 7, placeholders: 1 });
    expect((await stat(out)).size).toBe(summary.bytes);

    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`file://${out}`, { waitUntil: 'load' });

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

    expect(problems).toEqual([]);
    expect(requests.filter((u) => !u.startsWith('file://') && !u.startsWith('data:'))).toEqual([]);
    await context.close();
  }, 30000);
});
