/**
 * The HTML of a diagnosis report: one self-contained page (inline CSS, inline SVG, inline script,
 * thumbnails as data: URIs; no external asset, no network). How to read it: src/report/README.md.
 */
import { createHash } from 'node:crypto';
import type { CheckReport, CheckRow } from '../evaluation/check.js';
import { REFUSAL_TEXT, type RefusalReason } from '../images/dataset-roots.js';
import type { CountRow, ReportImage, ReportModel } from './model.js';
import { REPORT_SCRIPT } from './script.js';

/** A thumbnail cell: an image, or why there is none. */
export type Thumbnail = { src: string } | { missing: string };

/** What {@link renderReportHtml} needs besides the model. */
export interface RenderOptions {
  title: string;
  /** uuid → thumbnail; when undefined, no thumbnail column is shown. */
  thumbnails?: Map<string, Thumbnail>;
  /** Flagged images whose file was refused for a thumbnail, by reason; the page says how many. */
  refused?: Partial<Record<RefusalReason, number>>;
  /** The result checked against a reference (`checkResult` of src/evaluation): shown per task. */
  check?: CheckReport;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** A distinct colour per class index: the ten of the usual categorical palette, then golden-angle hues. */
export function classColour(i: number): string {
  return i < PALETTE.length ? PALETTE[i] : `hsl(${Math.round((i * 137.508) % 360)}, 62%, 45%)`;
}

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const TASK_LABELS: Record<string, string> = {
  mislabeled_images: 'Mislabeled images',
  lighting_conditions: 'Lighting conditions',
};

function taskLabel(t: string): string {
  return TASK_LABELS[t] ?? t.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'x';
}

function formatScore(v: number): string {
  return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toFixed(3);
}

function pct(n: number, of: number): string {
  return of === 0 ? '–' : `${((100 * n) / of).toFixed(1)} %`;
}

/** One line on the result's disclosure control: minimum counts, values suppressed, noise; '' without a record. */
function disclosureNote(model: ReportModel): string {
  const d = model.disclosure;
  if (!d) return '';
  const mins = [...new Set(Object.values(d.min_count))].sort((a, b) => a - b);
  const byNode = Object.entries(d.suppressed_by_node).map(([node, k]) => `${escapeHtml(node)} ${k}`).join(', ');
  const noise = d.noise ? `Laplace noise of scale ${d.noise.scale} was added to ${d.noise.values} dataset statistics (mean, std_dev).` : 'No noise was added.';
  return (
    `<p class="note" id="disclosure">Disclosure control: minimum count ${mins.join(' / ') || '–'} per node; ` +
    `${d.suppressed_total} shared value${d.suppressed_total === 1 ? ' was' : 's were'} suppressed or merged into a neighbour${byNode ? ` (${byNode})` : ''}. ${noise}</p>`
  );
}

const W = 760;
const H = 500;
const PAD = 18;

function scatter(model: ReportModel, colourOf: Map<string, string>, indexOf: Map<string, number>): { svg: string; plotted: number } {
  const pts = model.images.filter((i) => i.xy);
  if (pts.length === 0) {
    return { svg: '<p class="note" id="no-projection">No image carries <code>projections["2d"]</code>: nothing to plot.</p>', plotted: 0 };
  }
  const xs = pts.map((p) => p.xy![0]);
  const ys = pts.map((p) => p.xy![1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x1 - x0 < 1e-12) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 - y0 < 1e-12) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number) => PAD + ((x - x0) / (x1 - x0)) * (W - 2 * PAD);
  const sy = (y: number) => H - PAD - ((y - y0) / (y1 - y0)) * (H - 2 * PAD);
  // flagged points last, so they are drawn on top
  const ordered = [...pts.filter((p) => p.flagged_by.length === 0), ...pts.filter((p) => p.flagged_by.length > 0)];
  const circles = ordered.map((p) => {
    const tip = [
      p.path,
      `class: ${p.given_class}${p.suggested_class ? ` → suggested ${p.suggested_class}` : ''}`,
      `node: ${p.node}`,
      p.flagged_by.length ? `flagged by: ${p.flagged_by.join(', ')}` : 'not flagged',
    ].join('\n');
    return (
      `<circle class="pt${p.flagged_by.length ? ' flag' : ''}" data-i="${indexOf.get(p.uuid)}" tabindex="0" cx="${sx(p.xy![0]).toFixed(1)}" cy="${sy(p.xy![1]).toFixed(1)}" r="4" ` +
      `fill="${colourOf.get(p.given_class)}" data-class="${escapeHtml(p.given_class)}" data-node="${escapeHtml(p.node)}" ` +
      `data-tasks="${escapeHtml(p.flagged_by.join(' '))}"><title>${escapeHtml(tip)}</title></circle>`
    );
  });
  const svg =
    `<svg id="scatter" class="marking" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="2-D projection of ${pts.length} images">` +
    `<rect class="frame" x="0.5" y="0.5" width="${W - 1}" height="${H - 1}"/>` +
    circles.join('') +
    '</svg>';
  return { svg, plotted: pts.length };
}

function countTable(id: string, head: string, rows: CountRow[], tasks: string[], swatch?: Map<string, string>): string {
  const max = Math.max(1, ...rows.map((r) => r.images));
  const total = rows.reduce((a, r) => a + r.images, 0);
  const body = rows
    .map((r) => {
      const name = swatch ? `<span class="sw" style="background:${swatch.get(r.name)}"></span>${escapeHtml(r.name)}` : escapeHtml(r.name);
      const cells = tasks.map((t) => `<td class="num${r.outliers[t] ? ' hit' : ''}">${r.outliers[t]}</td>`).join('');
      return (
        `<tr><th scope="row">${name}</th><td class="num">${r.images}</td>` +
        `<td class="bar"><span style="width:${((100 * r.images) / max).toFixed(1)}%"></span></td>${cells}` +
        `<td class="num">${r.flagged}</td><td class="num">${pct(r.flagged, r.images)}</td></tr>`
      );
    })
    .join('');
  const taskHeads = tasks.map((t) => `<th scope="col" class="num">${escapeHtml(taskLabel(t))}</th>`).join('');
  const totals = tasks.map((t) => `<td class="num">${rows.reduce((a, r) => a + r.outliers[t], 0)}</td>`).join('');
  const flagged = rows.reduce((a, r) => a + r.flagged, 0);
  return (
    `<table id="${id}" class="counts"><thead><tr><th scope="col">${head}</th><th scope="col" class="num">images</th><th></th>${taskHeads}` +
    `<th scope="col" class="num">flagged</th><th scope="col" class="num">share</th></tr></thead><tbody>${body}</tbody>` +
    `<tfoot><tr><th scope="row">all</th><td class="num">${total}</td><td></td>${totals}<td class="num">${flagged}</td><td class="num">${pct(flagged, total)}</td></tr></tfoot></table>`
  );
}

/** The note saying how many files were refused for thumbnails and why, or '' when none was. */
function refusedNote(refused: Partial<Record<RefusalReason, number>> | undefined): string {
  const entries = Object.entries(refused ?? {}).filter(([, n]) => n > 0) as Array<[RefusalReason, number]>;
  const total = entries.reduce((a, [, n]) => a + n, 0);
  if (total === 0) return '';
  const why = entries.map(([r, n]) => `${n} ${escapeHtml(REFUSAL_TEXT[r])}`).join(', ');
  return (
    `<p class="note" id="refused">${total} flagged image${total === 1 ? '' : 's'} got no thumbnail: ${total === 1 ? 'its file was' : 'their files were'} refused unread (${why}). ` +
    'Thumbnails are made only from images inside the dataset folders given to the report (<code>--root</code>, or the nodes\' folders of a local run); files of other nodes, or files a result names elsewhere, are never read.</p>'
  );
}

/** A thumbnail (`img.thumb`, tagged with the image's index for the detail panel) or its placeholder. */
function thumbBox(img: ReportImage, i: number | undefined, thumbs: Map<string, Thumbnail>): string {
  const t = thumbs.get(img.uuid) ?? { missing: 'no thumbnail' };
  if ('src' in t) return `<img class="thumb" data-i="${i ?? ''}" src="${t.src}" alt="${escapeHtml(img.path)}" width="64" height="64">`;
  return `<div class="thumb ph" title="${escapeHtml(img.path)}">${escapeHtml(t.missing)}<br><b>${escapeHtml(img.node)}</b></div>`;
}

/** What a table row needs of the other images: their index, and each image by uuid. */
interface Lookup {
  indexOf: Map<string, number>;
  byUuid: Map<string, ReportImage>;
}

/** The kept image a flagged duplicate copies, when the result has it. */
function keptImage(img: ReportImage, look: Lookup): ReportImage | undefined {
  return img.duplicate_of?.uuid === undefined ? undefined : look.byUuid.get(img.duplicate_of.uuid);
}

/** The image cell of a duplicate: the copy and the image it duplicates, side by side. */
function pairCell(img: ReportImage, look: Lookup, thumbs: Map<string, Thumbnail>): string {
  const kept = keptImage(img, look);
  const keptBox = kept
    ? thumbBox(kept, look.indexOf.get(kept.uuid), thumbs)
    : `<div class="thumb ph">kept image not in this result<br><b>${escapeHtml(img.duplicate_of?.node ?? '')}</b></div>`;
  return (
    `<td class="th"><div class="pair"><figure>${thumbBox(img, look.indexOf.get(img.uuid), thumbs)}<figcaption>this</figcaption></figure>` +
    `<figure>${keptBox}<figcaption>kept</figcaption></figure></div></td>`
  );
}

/** A column heading that sorts its table by `key` (a row's `data-KEY`) when clicked. */
function sortHead(label: string, key: string, numeric = false): string {
  return `<th scope="col"${numeric ? ' class="num"' : ''} data-sort="${key}"${numeric ? ' data-type="num"' : ''} aria-sort="none"><button type="button" class="sort">${label}</button></th>`;
}

function fixed3(v: number | null): string {
  return v === null ? '–' : v.toFixed(3);
}

/** The line under a task's heading on how it fares against the reference, or '' without one. */
function checkLine(row: CheckRow | undefined): string {
  if (!row) return '';
  return ` <span class="vs-ref">Against the reference: precision <b>${fixed3(row.precision)}</b>, recall <b>${fixed3(row.recall)}</b>, F1 ${fixed3(row.f1)} (${row.tp} of ${row.faults} faults found, ${row.fp} false alarm${row.fp === 1 ? '' : 's'}).</span>`;
}

/** The folder every key starts with (ending in `/`), or '' when they share none. */
export function commonFolder(keys: readonly string[]): string {
  if (keys.length === 0) return '';
  let prefix = keys[0].slice(0, keys[0].lastIndexOf('/') + 1);
  for (const k of keys) {
    while (prefix && !k.startsWith(prefix)) prefix = prefix.slice(0, prefix.slice(0, -1).lastIndexOf('/') + 1);
  }
  return prefix.length > 1 ? prefix : '';
}

function taskSection(task: string, model: ReportModel, colourOf: Map<string, string>, thumbs: Map<string, Thumbnail> | undefined, folder: string, look: Lookup, check?: CheckReport): string {
  const flagged = model.images
    .filter((i) => i.flagged_by.includes(task))
    .sort((a, b) => model.classes.indexOf(a.given_class) - model.classes.indexOf(b.given_class) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const total = model.images.length;
  const mislabeled = task === 'mislabeled_images';
  const duplicates = task === 'duplicates';
  const hasIssue = flagged.some((i) => i.verdicts[task]?.issue !== undefined);
  const hasScore = flagged.some((i) => i.verdicts[task]?.score !== undefined);
  const head =
    (thumbs ? `<th scope="col">${duplicates ? 'image and its original' : 'image'}</th>` : '') +
    sortHead('file', 'file') +
    sortHead('node', 'node') +
    sortHead('class', 'class') +
    (mislabeled ? sortHead('suggested', 'suggested') + sortHead('confidence', 'confidence', true) : '') +
    (duplicates ? sortHead('duplicate of', 'original') : '') +
    (hasIssue ? sortHead('issue', 'issue') : '') +
    (hasScore ? sortHead('score', 'score', true) : '') +
    sortHead('brightness', 'brightness', true) +
    sortHead('size', 'size', true) +
    '<th scope="col">also flagged by</th>';
  const short = (p: string) => (p.startsWith(folder) ? p.slice(folder.length) : p);
  const rows = flagged
    .map((i) => {
      const others = i.flagged_by.filter((t) => t !== task).map(taskLabel).join(', ');
      const v = i.verdicts[task] ?? {};
      const kept = duplicates ? keptImage(i, look) : undefined;
      const original = duplicates ? (kept ? short(kept.path) : i.duplicate_of?.node ? `an image of ${i.duplicate_of.node}` : undefined) : undefined;
      return (
        // only the id: the script finds the row's image (and the values it sorts and filters by) through it
        `<tr id="${slug(task)}-${escapeHtml(i.uuid)}">` +
        (thumbs ? (duplicates ? pairCell(i, look, thumbs) : `<td class="th">${thumbBox(i, look.indexOf.get(i.uuid), thumbs)}</td>`) : '') +
        `<td class="file" title="${escapeHtml(i.path)}">${escapeHtml(short(i.path))}</td><td>${escapeHtml(i.node)}</td>` +
        `<td><span class="sw" style="background:${colourOf.get(i.given_class)}"></span>${escapeHtml(i.given_class)}</td>` +
        (mislabeled
          ? `<td>${i.suggested_class ? `<span class="sw" style="background:${colourOf.get(i.suggested_class) ?? '#999'}"></span>${escapeHtml(i.suggested_class)}` : '<span class="muted">none</span>'}</td>` +
            `<td class="num">${i.confidence === undefined ? '–' : i.confidence.toFixed(2)}</td>`
          : '') +
        (duplicates
          ? `<td class="file"${kept ? ` title="${escapeHtml(kept.path)}"` : ''}>${original === undefined ? '<span class="muted">–</span>' : escapeHtml(original)}${kept && kept.node !== i.node ? ` <span class="muted">(${escapeHtml(kept.node)})</span>` : ''}</td>`
          : '') +
        (hasIssue ? `<td>${escapeHtml(v.issue ?? '–')}</td>` : '') +
        (hasScore ? `<td class="num">${v.score === undefined ? '–' : formatScore(v.score)}</td>` : '') +
        `<td class="num">${i.brightness.toFixed(3)}</td><td class="num">${i.width}×${i.height}×${i.channels}</td>` +
        `<td>${others ? escapeHtml(others) : '<span class="muted">–</span>'}</td></tr>`
      );
    })
    .join('');
  const empty = flagged.length === 0 ? `<tr class="none"><td colspan="20">No outliers.</td></tr>` : '';
  const nomatch = flagged.length === 0 ? '' : '<tfoot><tr class="nomatch" hidden><td colspan="20">No row matches the filter.</td></tr></tfoot>';
  const row = check?.rows.find((r) => r.task === task);
  return (
    `<section class="task" id="task-${slug(task)}" data-task="${escapeHtml(task)}"><h2>${escapeHtml(taskLabel(task))} <code>${escapeHtml(task)}</code></h2>` +
    `<p class="note">${flagged.length} outlier${flagged.length === 1 ? '' : 's'} of ${total} images (${pct(flagged.length, total)}).${checkLine(row)} <span class="shown"></span></p>` +
    `<div class="wide"><table class="outliers"><thead><tr>${head}</tr></thead><tbody>${rows}${empty}</tbody>${nomatch}</table></div></section>`
  );
}

/** The table of `flame check`: per task, counts and metrics against the reference. */
function checkSection(check: CheckReport | undefined): string {
  if (!check) return '';
  const cols = ['task', 'files', 'flagged', 'faults', 'tp', 'fp', 'fn', 'tn', 'precision', 'recall', 'F1', 'accuracy', 'relabel'];
  const head = cols.map((c, k) => `<th scope="col"${k ? ' class="num"' : ''}>${c}</th>`).join('');
  const body = check.rows
    .map((r) => {
      const cells = [r.files ?? '–', r.flagged, r.faults, r.tp, r.fp, r.fn, r.tn ?? '–'].map((v) => `<td class="num">${v}</td>`).join('');
      const metrics = [r.precision, r.recall, r.f1, r.accuracy, r.relabel_accuracy].map((v) => `<td class="num">${fixed3(v)}</td>`).join('');
      return `<tr data-task="${escapeHtml(r.task)}"><th scope="row">${escapeHtml(taskLabel(r.task))}</th>${cells}${metrics}</tr>`;
    })
    .join('');
  const warnings = check.warnings.length ? `<ul class="warnings">${check.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>` : '';
  return (
    '<section id="reference"><h2>Against the reference</h2>' +
    '<p class="note">The flagged files of each task compared with the faults the reference (ground truth) names, as <code>flame check</code> computes them: ' +
    'tp flagged and faulty, fp flagged but fine, fn faulty but not flagged, tn neither; precision = tp / (tp + fp), recall = tp / (tp + fn), ' +
    'F1 = 2tp / (2tp + fp + fn), accuracy = (tp + tn) / files; relabel = share of the found mislabeled files whose suggested class is the true one. ' +
    '– where a ratio is 0/0 or the number of files is unknown.</p>' +
    (check.rows.length ? `<table id="check" class="counts"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>` : '<p class="note">No task of the result has a reference.</p>') +
    warnings +
    '</section>'
  );
}

/** The filters and the hint above the task tables. */
function filterBar(model: ReportModel): string {
  const opts = (values: readonly string[], label: (v: string) => string = (v) => v) => values.map((v) => `<option value="${escapeHtml(v)}">${escapeHtml(label(v))}</option>`).join('');
  return (
    '<form class="filters" id="filters" autocomplete="off">' +
    `<label>Task <select id="f-task"><option value="">all tasks</option>${opts(model.tasks, taskLabel)}</select></label>` +
    `<label>Class <select id="f-class"><option value="">any class</option>${opts(model.classes)}</select></label>` +
    `<label>Node <select id="f-node"><option value="">any node</option>${opts(model.per_node.map((r) => r.name))}</select></label>` +
    '<label>Score from <input id="f-min" type="number" step="any" size="6"></label>' +
    '<label>to <input id="f-max" type="number" step="any" size="6"></label>' +
    '<label>File contains <input id="f-text" type="search" size="14"></label>' +
    '<button type="reset">Clear</button> <span class="muted" id="f-count"></span></form>' +
    '<p class="note">A filter hides the rows that do not match it (class: the class an image is filed under; score: the task\'s own score, rows without one are hidden while a bound is set). ' +
    'Click a column heading to sort its table (again to reverse); click a row, or a point of the projection, to see the image and its record.</p>'
  );
}

/** Every image's record for the detail panel, as JSON safe inside a `<script>` element. */
function pageData(model: ReportModel, look: Lookup, thumbs: Map<string, Thumbnail> | undefined): string {
  const images = model.images.map((img) => {
    const t = thumbs?.get(img.uuid);
    const kept = keptImage(img, look);
    return {
      uuid: img.uuid,
      path: img.path,
      node: img.node,
      class: img.given_class,
      ...(img.suggested_class !== undefined ? { suggested: img.suggested_class } : {}),
      ...(img.confidence !== undefined ? { confidence: img.confidence } : {}),
      brightness: img.brightness,
      size: `${img.width}×${img.height}×${img.channels}`,
      ...(img.xy ? { xy: img.xy } : {}),
      flagged_by: img.flagged_by,
      verdicts: img.verdicts,
      pixels: img.width * img.height,
      ...(img.duplicate_of ? { duplicate_of: { ...img.duplicate_of, ...(kept ? { i: look.indexOf.get(kept.uuid) } : {}) } } : {}),
      // flagged images' thumbnails are in their tables already: the panel takes them from there
      ...(t && 'src' in t && img.flagged_by.length === 0 ? { thumb: t.src } : {}),
      ...(t && 'missing' in t ? { missing: t.missing } : !t ? { missing: thumbs ? 'no thumbnail' : 'thumbnails left out' } : {}),
    };
  });
  const tasks = model.tasks.map((name) => ({ name, label: taskLabel(name), slug: slug(name) }));
  return JSON.stringify({ tasks, images }).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const CSS = `
:root{--fg:#1d232b;--muted:#6b7480;--line:#d9dee4;--bg:#fff;--panel:#f6f8fa;--hit:#b42318}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main{max-width:1180px;margin:0 auto;padding:0 24px}
header{padding-top:20px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 8px}
h2 code{font-size:12px;color:var(--muted);font-weight:normal;margin-left:6px}
.sub,.note,.muted{color:var(--muted)}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:22px}
.card span{color:var(--muted);font-size:12px}
.plot{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
#scatter{max-width:100%;height:auto;background:#fff}
#scatter .frame{fill:none;stroke:var(--line)}
.pt{stroke:#fff;stroke-width:.8;r:4.5px}
#scatter.marking .pt:not(.flag){opacity:.55}
.pt.flag{stroke:#111;stroke-width:2.2;r:6.5px}
.legend{list-style:none;margin:0;padding:0;min-width:180px}
.legend li{margin:3px 0;white-space:nowrap}
.legend .ring{display:inline-block;width:12px;height:12px;border:2.2px solid #111;border-radius:50%;margin-right:6px;vertical-align:-2px}
.controls{margin:6px 0 10px}
select{font:inherit;padding:2px 6px}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.tables{display:flex;flex-wrap:wrap;gap:24px}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{border-bottom:1px solid var(--line);padding:4px 9px;text-align:left;vertical-align:middle;white-space:nowrap}
thead th{font-size:12px;color:var(--muted);font-weight:600;border-bottom:2px solid var(--line)}
tfoot th,tfoot td{font-weight:600;border-bottom:none}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.hit{color:var(--hit);font-weight:600}
td.bar{width:90px}
td.bar span{display:block;height:8px;background:#9fb3c8;border-radius:2px}
td.file{max-width:380px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-family:ui-monospace,Menlo,monospace;font-size:12px}
.thumb{width:64px;height:64px;object-fit:contain;image-rendering:pixelated;background:#222;border-radius:4px;display:block}
.thumb.ph{background:repeating-linear-gradient(45deg,#eef1f4,#eef1f4 6px,#e2e6ea 6px,#e2e6ea 12px);color:var(--muted);font-size:10px;line-height:1.2;padding:8px 4px;text-align:center;overflow:hidden}
footer{max-width:1180px;margin:30px auto;padding:0 24px;color:var(--muted);font-size:12px}
.pt{cursor:pointer}
.pt:focus{outline:none;stroke:#111;stroke-width:2}
#scatter .pt.sel{stroke:#e8590c;stroke-width:3.5;r:8px;opacity:1}
.filters{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:8px 12px}
input,button{font:inherit}
input{padding:2px 6px;border:1px solid var(--line);border-radius:4px}
button{padding:2px 10px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
th button.sort{border:none;background:none;padding:0;font:inherit;color:inherit;font-weight:600;cursor:pointer}
th[aria-sort="ascending"] button.sort::after{content:" ▲"}
th[aria-sort="descending"] button.sort::after{content:" ▼"}
table.outliers tbody tr[data-i]{cursor:pointer}
table.outliers tbody tr[data-i]:hover{background:var(--panel)}
table.outliers tbody tr.sel{background:#fff4e6}
.pair{display:flex;gap:6px}
.pair figure,.pics figure{margin:0;text-align:center}
.pair figcaption{font-size:10px;color:var(--muted)}
.vs-ref{color:var(--fg)}
ul.warnings{color:var(--muted);margin:4px 0 0;padding-left:18px}
#detail{position:fixed;top:12px;right:12px;width:380px;max-height:calc(100vh - 24px);overflow:auto;background:#fff;border:1px solid var(--line);border-radius:10px;box-shadow:0 8px 28px rgba(0,0,0,.18);padding:12px 14px;z-index:10}
#detail[hidden]{display:none}
#detail .dhead{display:flex;justify-content:space-between;align-items:center;gap:8px}
#detail h3{margin:0;font-size:15px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
#detail .close{font-size:18px;line-height:1;padding:2px 8px}
#detail .pics{display:flex;gap:10px;margin:10px 0}
#detail .big{width:160px;height:160px;object-fit:contain;image-rendering:pixelated;background:#222;border-radius:6px;display:block}
#detail .big.ph{background:repeating-linear-gradient(45deg,#eef1f4,#eef1f4 8px,#e2e6ea 8px,#e2e6ea 16px);color:var(--muted);font-size:12px;padding:50px 8px;text-align:center}
#detail figcaption{font-size:12px;color:var(--muted);margin-top:3px}
#detail dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:6px 0;font-size:13px}
#detail dt{color:var(--muted)}
#detail dd{margin:0;word-break:break-all}
#detail table.verdicts{width:100%;font-size:13px}
#detail table.verdicts th,#detail table.verdicts td{padding:3px 5px}
#detail table.verdicts td:first-child{white-space:normal}
.wide{overflow-x:auto;max-width:100%}
.filters input[type=number]{width:6.5em}
#detail table.verdicts tr.hit td{color:var(--hit);font-weight:600}
`;

/** The page's Content-Security-Policy: nothing may load; only its own script (by hash) may run. */
const CSP = `default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-${createHash('sha256').update(REPORT_SCRIPT).digest('base64')}'; base-uri 'none'; form-action 'none'`;

/** The report page for `model`. */
export function renderReportHtml(model: ReportModel, options: RenderOptions): string {
  const colourOf = new Map(model.classes.map((c, i) => [c, classColour(i)]));
  const look: Lookup = { indexOf: new Map(model.images.map((img, i) => [img.uuid, i])), byUuid: new Map(model.images.map((img) => [img.uuid, img])) };
  const { svg, plotted } = scatter(model, colourOf, look.indexOf);
  const n = model.images.length;
  const flaggedAny = model.images.filter((i) => i.flagged_by.length > 0).length;
  const checkOf = (t: string) => options.check?.rows.find((r) => r.task === t);
  const cards = [
    `<div class="card"><b>${n}</b><span>images</span></div>`,
    `<div class="card"><b>${model.classes.length}</b><span>classes</span></div>`,
    `<div class="card"><b>${model.per_node.length}</b><span>node${model.per_node.length === 1 ? '' : 's'}</span></div>`,
    `<div class="card"><b>${flaggedAny}</b><span>flagged by any task (${pct(flaggedAny, n)})</span></div>`,
    ...model.tasks.map((t) => {
      const k = model.images.filter((i) => i.flagged_by.includes(t)).length;
      const r = checkOf(t);
      const vs = r ? `<br>precision ${fixed3(r.precision)} · recall ${fixed3(r.recall)}` : '';
      return `<div class="card"><b>${k}</b><span>${escapeHtml(taskLabel(t))} (${pct(k, n)})${vs}</span></div>`;
    }),
  ].join('');
  const options_ = [
    '<option value="*">any task</option>',
    ...model.tasks.map((t) => `<option value="${escapeHtml(t)}">${escapeHtml(taskLabel(t))}</option>`),
    '<option value="">none</option>',
  ].join('');
  const classCounts = new Map(model.per_class.map((r) => [r.name, r.images]));
  const legend =
    '<ul class="legend">' +
    model.classes.map((c) => `<li><span class="sw" style="background:${colourOf.get(c)}"></span>${escapeHtml(c)} <span class="muted">${classCounts.get(c) ?? 0}</span></li>`).join('') +
    '<li><span class="ring"></span>outlier of the selected task</li></ul>';
  const unplotted = n - plotted;
  const disclosure = disclosureNote(model);
  const folder = commonFolder(model.images.map((i) => i.path));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<title>${escapeHtml(options.title)}</title><style>${CSS}</style></head>
<body>
<header><h1>${escapeHtml(options.title)}</h1>
<p class="sub">Diagnosis of dataset <code>${escapeHtml(model.dataset_uuid)}</code> · tasks: ${model.tasks.map((t) => `<code>${escapeHtml(t)}</code>`).join(', ') || 'none'}</p>
<div class="cards" id="summary">${cards}</div>${disclosure}</header>
<main>
<section id="projection"><h2>2-D projection</h2>
<p class="note">Each point is an image, placed by <code>projections["2d"]</code> and coloured by the class it is filed under. Hover a point for its file; click it to see the image and its record.${unplotted > 0 ? ` <span id="unplotted">${unplotted} image${unplotted === 1 ? ' has' : 's have'} no 2-D projection and ${unplotted === 1 ? 'is' : 'are'} not plotted.</span>` : ''}</p>
<div class="controls"><label>Mark outliers of <select id="task-select">${options_}</select></label> <span class="muted" id="marked-count"></span></div>
<div class="plot">${svg}${legend}</div></section>
${checkSection(options.check)}
<section id="counts"><h2>Counts</h2><div class="tables">
<div><h3>Per class</h3>${countTable('per-class', 'class', model.per_class, model.tasks, colourOf)}</div>
<div><h3>Per node</h3>${countTable('per-node', 'node', model.per_node, model.tasks)}</div>
</div></section>
<section id="flagged"><h2>Flagged images</h2>
${filterBar(model)}
${folder ? `<p class="note" id="folder">File paths below are relative to <code>${escapeHtml(folder)}</code>.</p>` : ''}
${options.thumbnails ? refusedNote(options.refused) : ''}
</section>
${model.tasks.map((t) => taskSection(t, model, colourOf, options.thumbnails, folder, look, options.check)).join('\n')}
</main>
<aside id="detail" hidden aria-live="polite"></aside>
<footer>Made by flame-sdk from a seed-000 diagnosis result. Classes are the classes images are filed under; suggested classes and confidences come from the mislabeled-images task. This page is one file: it loads nothing and can be mailed or archived as it is.</footer>
<script type="application/json" id="report-data">${pageData(model, look, options.thumbnails)}</script>
<script>${REPORT_SCRIPT}</script>
</body></html>
`;
}
