/**
 * A self-contained HTML report of a diagnosis run: the 2-D projection coloured by class with
 * outliers marked per task, thumbnails of flagged images, counts per class and per node, and a table
 * per task. How to read it: README.md beside this file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { DiagnosisResponse } from '../images/types.js';
import { renderReportHtml, type Thumbnail } from './html.js';
import { buildReportModel, type ReportModel } from './model.js';
import { THUMBNAIL_SIZE, thumbnails as makeThumbnails } from './thumbnails.js';

export { buildReportModel, parseDiagnosisResult, LOCAL_NODE, type CountRow, type ReportImage, type ReportModel } from './model.js';
export { renderReportHtml, classColour, commonFolder, escapeHtml, type RenderOptions, type Thumbnail } from './html.js';
export { thumbnailDataUri, THUMBNAIL_SIZE } from './thumbnails.js';

/** Default cap on thumbnails, so a run flagging thousands of images still gives a page a browser opens. */
export const MAX_THUMBNAILS = 500;

/** Options of {@link renderDiagnosisReport}. */
export interface ReportOptions {
  /** Page title (default `Diagnosis report`). */
  title?: string;
  /** Thumbnails of flagged images (default true). */
  thumbnails?: boolean;
  /** At most this many thumbnails (default {@link MAX_THUMBNAILS}); the rest get a placeholder. */
  maxThumbnails?: number;
  /** Longest side of a thumbnail in pixels (default {@link THUMBNAIL_SIZE}). */
  thumbnailSize?: number;
  /** Folder that relative file keys are read from (default the working directory). */
  baseDir?: string;
  /**
   * Folder of each node's files, for results whose keys are relative to a node's data source (what a
   * simulation over class-folder trees gives). Takes precedence over `baseDir` for the nodes it names.
   */
  nodeDirs?: Record<string, string>;
}

/** Options of {@link writeDiagnosisReport}: where to write, and {@link ReportOptions}. */
export interface WriteReportOptions extends ReportOptions {
  out: string;
}

/** What {@link writeDiagnosisReport} wrote. */
export interface ReportSummary {
  path: string;
  bytes: number;
  images: number;
  /** Images flagged by at least one task. */
  flagged: number;
  /** Images drawn in the projection (those with `projections["2d"]`). */
  plotted: number;
  /** Thumbnails made / flagged images left with a placeholder. */
  thumbnails: number;
  placeholders: number;
}

async function thumbnailsFor(model: ReportModel, options: ReportOptions): Promise<Map<string, Thumbnail> | undefined> {
  if (options.thumbnails === false) return undefined;
  const flagged = model.images.filter((i) => i.flagged_by.length > 0);
  const max = options.maxThumbnails ?? MAX_THUMBNAILS;
  const base = options.baseDir ?? process.cwd();
  const chosen = flagged.slice(0, max);
  const pathOf = (img: ReportModel['images'][number]) => (isAbsolute(img.path) ? img.path : resolve(options.nodeDirs?.[img.node] ?? base, img.path));
  const made = await makeThumbnails(chosen.map(pathOf), options.thumbnailSize ?? THUMBNAIL_SIZE);
  const out = new Map<string, Thumbnail>();
  for (const img of chosen) {
    const src = made.get(pathOf(img));
    out.set(img.uuid, src ? { src } : { missing: 'not readable here' });
  }
  for (const img of flagged.slice(max)) out.set(img.uuid, { missing: `beyond ${max} thumbnails` });
  return out;
}

/**
 * The report of a diagnosis result as an HTML string. Thumbnails are read from the files' keys
 * (paths) when this machine can read them — the run was local — else a placeholder names the node.
 * @throws BadRequestError naming the field when `response` is not a diagnosis result
 */
export async function renderDiagnosisReport(response: DiagnosisResponse | unknown, options: ReportOptions = {}): Promise<{ html: string; model: ReportModel; thumbnails?: Map<string, Thumbnail> }> {
  const model = buildReportModel(response);
  const thumbs = await thumbnailsFor(model, options);
  return { html: renderReportHtml(model, { title: options.title ?? 'Diagnosis report', thumbnails: thumbs }), model, thumbnails: thumbs };
}

/** Write the report of a diagnosis result to `options.out` (folders are created). */
export async function writeDiagnosisReport(response: DiagnosisResponse | unknown, options: WriteReportOptions): Promise<ReportSummary> {
  const { html, model, thumbnails } = await renderDiagnosisReport(response, options);
  const path = resolve(options.out);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, html);
  const thumbs = [...(thumbnails?.values() ?? [])];
  return {
    path,
    bytes: Buffer.byteLength(html),
    images: model.images.length,
    flagged: model.images.filter((i) => i.flagged_by.length > 0).length,
    plotted: model.images.filter((i) => i.xy).length,
    thumbnails: thumbs.filter((t) => 'src' in t).length,
    placeholders: thumbs.filter((t) => 'missing' in t).length,
  };
}
