/**
 * A self-contained HTML report of a diagnosis run: the 2-D projection coloured by class with
 * outliers marked per task, thumbnails of flagged images, counts per class and per node, and a table
 * per task. How to read it: README.md beside this file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { datasetRoots, REFUSAL_TEXT, type RefusalReason, type RefusedFileError, type RootLimits } from '../images/dataset-roots.js';
import type { DiagnosisResponse } from '../images/types.js';
import { renderReportHtml, type Thumbnail } from './html.js';
import { buildReportModel, type ReportImage, type ReportModel } from './model.js';
import { checkResult, type CheckReport } from '../evaluation/check.js';
import type { Reference } from '../evaluation/reference.js';
import { THUMBNAIL_SIZE, thumbnails as makeThumbnails } from './thumbnails.js';

export { buildReportModel, parseDiagnosisResult, LOCAL_NODE, type CountRow, type ReportImage, type ReportModel } from './model.js';
export { renderReportHtml, classColour, commonFolder, escapeHtml, type RenderOptions, type Thumbnail } from './html.js';
export { thumbnailDataUri, THUMBNAIL_SIZE, type ThumbnailOptions, type ThumbnailOutcome } from './thumbnails.js';

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
  /** Folder that relative file keys are resolved from (default the working directory); not a root. */
  baseDir?: string;
  /**
   * Folder of each node's files, for results whose keys are relative to a node's data source (what a
   * simulation over class-folder trees gives). Takes precedence over `baseDir` for the nodes it names.
   * Each is also a dataset root.
   */
  nodeDirs?: Record<string, string>;
  /**
   * The dataset folders thumbnails may be read from, given by the operator (never by the result).
   * Files elsewhere, and files that are not images, are not read: they get a placeholder and are
   * counted as refused. Default none: without `roots` or `nodeDirs` no file is read.
   */
  roots?: readonly string[];
  /** `maxImagePixels` checked before a thumbnail is decoded (default src/limits.ts' default). */
  limits?: RootLimits;
  /**
   * A ground truth (`parseReference` of src/evaluation): the page then shows precision, recall, F1
   * and accuracy per task, computed by `checkResult` as `flame check` prints them.
   */
  reference?: Reference;
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
  /** Thumbnails of flagged images made / flagged images left with a placeholder. */
  thumbnails: number;
  placeholders: number;
  /** Thumbnails of images no task flags (the images flagged duplicates copy, other points), within the cap. */
  other_thumbnails: number;
  /** Placeholders whose file was refused unread (outside the roots, not an image, ...), by reason. */
  refused: number;
  refusals: Partial<Record<RefusalReason, number>>;
  /** The check against the reference, when one was given (what the page shows in its table). */
  check?: CheckReport;
}

/** What {@link renderDiagnosisReport} gives. */
export interface RenderedReport {
  html: string;
  model: ReportModel;
  /** uuid → thumbnail of each flagged image; undefined when thumbnails were left out. */
  thumbnails?: Map<string, Thumbnail>;
  /** uuid → thumbnail of the other images given one (shown when their point is clicked). */
  otherThumbnails?: Map<string, Thumbnail>;
  /** The flagged files refused for thumbnails, each naming its path and why. */
  refused: RefusedFileError[];
  /** The check against `options.reference`, when one was given. */
  check?: CheckReport;
}

/**
 * Which images get a thumbnail, in order, while the cap allows: the flagged images (their tables),
 * then the images flagged ones duplicate (shown beside them), then the other points of the
 * projection (shown when a point is clicked).
 */
function thumbnailOrder(model: ReportModel): ReportImage[] {
  const flagged = model.images.filter((i) => i.flagged_by.length > 0);
  const byUuid = new Map(model.images.map((i) => [i.uuid, i]));
  const chosen = new Set(flagged);
  for (const img of flagged) {
    const kept = img.duplicate_of?.uuid === undefined ? undefined : byUuid.get(img.duplicate_of.uuid);
    if (kept) chosen.add(kept);
  }
  for (const img of model.images) if (img.xy) chosen.add(img);
  return [...chosen];
}

async function thumbnailsFor(model: ReportModel, options: ReportOptions): Promise<{ thumbs?: Map<string, Thumbnail>; refused: RefusedFileError[] }> {
  if (options.thumbnails === false) return { refused: [] };
  const roots = await datasetRoots([...(options.roots ?? []), ...Object.values(options.nodeDirs ?? {})], 'report root');
  const order = thumbnailOrder(model);
  const max = options.maxThumbnails ?? MAX_THUMBNAILS;
  const base = options.baseDir ?? process.cwd();
  const chosen = order.slice(0, max);
  const pathOf = (img: ReportImage) => resolve(Object.hasOwn(options.nodeDirs ?? {}, img.node) ? options.nodeDirs![img.node] : base, img.path);
  const made = await makeThumbnails(roots, chosen.map(pathOf), { size: options.thumbnailSize ?? THUMBNAIL_SIZE, limits: options.limits });
  const out = new Map<string, Thumbnail>();
  // only flagged images' refusals are reported: the others are shown on request, their absence is no finding
  const refused: RefusedFileError[] = [];
  for (const img of chosen) {
    const t = made.get(pathOf(img))!;
    if ('refused' in t && img.flagged_by.length > 0) refused.push(t.refused);
    out.set(img.uuid, 'src' in t ? { src: t.src } : { missing: 'not readable here' });
  }
  for (const img of order.slice(max)) out.set(img.uuid, { missing: `beyond ${max} thumbnails` });
  return { thumbs: out, refused };
}

function countRefusals(refused: readonly RefusedFileError[]): Partial<Record<RefusalReason, number>> {
  const out: Partial<Record<RefusalReason, number>> = {};
  for (const r of refused) out[r.reason] = (out[r.reason] ?? 0) + 1;
  return out;
}

/**
 * The report of a diagnosis result as an HTML string. Thumbnails are made from the files the result
 * names only when they are images inside `options.roots` / `options.nodeDirs` (the run was local);
 * any other file gets a placeholder naming its node, and the page says how many were refused.
 * @throws BadRequestError naming the field when `response` is not a diagnosis result; NotFoundError
 *   or BadRequestError when a root is missing or not a folder
 */
export async function renderDiagnosisReport(response: DiagnosisResponse | unknown, options: ReportOptions = {}): Promise<RenderedReport> {
  const model = buildReportModel(response);
  const { thumbs, refused } = await thumbnailsFor(model, options);
  const check = options.reference ? checkResult(response, options.reference) : undefined;
  const html = renderReportHtml(model, { title: options.title ?? 'Diagnosis report', thumbnails: thumbs, refused: countRefusals(refused), ...(check ? { check } : {}) });
  const flagged = new Set(model.images.filter((i) => i.flagged_by.length > 0).map((i) => i.uuid));
  const part = (want: boolean) => (thumbs ? new Map([...thumbs].filter(([uuid]) => flagged.has(uuid) === want)) : undefined);
  return { html, model, thumbnails: part(true), otherThumbnails: part(false), refused, ...(check ? { check } : {}) };
}

/** Write the report of a diagnosis result to `options.out` (folders are created). */
export async function writeDiagnosisReport(response: DiagnosisResponse | unknown, options: WriteReportOptions): Promise<ReportSummary> {
  const { html, model, thumbnails, otherThumbnails, refused, check } = await renderDiagnosisReport(response, options);
  const path = resolve(options.out);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, html);
  const thumbs = [...(thumbnails?.values() ?? [])];
  const others = [...(otherThumbnails?.values() ?? [])].filter((t) => 'src' in t).length;
  return {
    path,
    bytes: Buffer.byteLength(html),
    images: model.images.length,
    flagged: model.images.filter((i) => i.flagged_by.length > 0).length,
    plotted: model.images.filter((i) => i.xy).length,
    thumbnails: thumbs.filter((t) => 'src' in t).length,
    placeholders: thumbs.filter((t) => 'missing' in t).length,
    other_thumbnails: others,
    refused: refused.length,
    refusals: countRefusals(refused),
    ...(check ? { check } : {}),
  };
}

/**
 * The line a command prints about thumbnails refused in a report, or '' when none was: how many,
 * why, and `hint` (the flag or folders that name the dataset, e.g. `pass --root DIR`).
 */
export function refusedThumbnailsLine(command: string, summary: Pick<ReportSummary, 'refused' | 'refusals'>, hint: string): string {
  if (summary.refused === 0) return '';
  const why = (Object.entries(summary.refusals) as Array<[RefusalReason, number]>).map(([r, n]) => `${n} ${REFUSAL_TEXT[r]}`).join(', ');
  return `${command}: ${summary.refused} thumbnails refused, files not read (${why}); thumbnails are made only from images inside the dataset folders: ${hint}\n`;
}
