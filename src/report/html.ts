/**
 * The HTML of a diagnosis report: one self-contained page (inline CSS, inline SVG, inline script,
 * thumbnails as data: URIs; no external asset, no network). How to read it: src/report/README.md.
 */
import type { CountRow, ReportImage, ReportModel } from './model.js';

/** A thumbnail cell: an image, or why there is none. */
export type Thumbnail = { src: string } | { missing: string };

/** What {@link renderReportHtml} needs besides the model. */
export interface RenderOptions {
  title: string;
  /** uuid → thumbnail; when undefined, no thumbnail column is shown. */
  thumbnails?: Map<string, Thumbnail>;
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

const W = 760;
const H = 500;
const PAD = 18;

function scatter(model: ReportModel, colourOf: Map<string, string>): { svg: string; plotted: number } {
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
      `<circle class="pt${p.flagged_by.length ? ' flag' : ''}" cx="${sx(p.xy![0]).toFixed(1)}" cy="${sy(p.xy![1]).toFixed(1)}" r="4" ` +
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

function thumbCell(img: ReportImage, thumbs: Map<string, Thumbnail>): string {
  const t = thumbs.get(img.uuid) ?? { missing: 'no thumbnail' };
  if ('src' in t) return `<td class="th"><img class="thumb" src="${t.src}" alt="${escapeHtml(img.path)}" width="64" height="64"></td>`;
  return `<td class="th"><div class="thumb ph" title="${escapeHtml(img.path)}">${escapeHtml(t.missing)}<br><b>${escapeHtml(img.node)}</b></div></td>`;
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

function taskSection(task: string, model: ReportModel, colourOf: Map<string, string>, thumbs: Map<string, Thumbnail> | undefined, folder: string): string {
  const flagged = model.images
    .filter((i) => i.flagged_by.includes(task))
    .sort((a, b) => model.classes.indexOf(a.given_class) - model.classes.indexOf(b.given_class) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const total = model.images.length;
  const mislabeled = task === 'mislabeled_images';
  const hasIssue = flagged.some((i) => i.verdicts[task]?.issue !== undefined);
  const hasScore = flagged.some((i) => i.verdicts[task]?.score !== undefined);
  const head =
    (thumbs ? '<th scope="col">image</th>' : '') +
    '<th scope="col">file</th><th scope="col">node</th><th scope="col">class</th>' +
    (mislabeled ? '<th scope="col">suggested</th><th scope="col" class="num">confidence</th>' : '') +
    (hasIssue ? '<th scope="col">issue</th>' : '') +
    (hasScore ? '<th scope="col" class="num">score</th>' : '') +
    '<th scope="col" class="num">brightness</th><th scope="col" class="num">size</th><th scope="col">also flagged by</th>';
  const rows = flagged
    .map((i) => {
      const others = i.flagged_by.filter((t) => t !== task).map(taskLabel).join(', ');
      return (
        `<tr id="${slug(task)}-${escapeHtml(i.uuid)}">` +
        (thumbs ? thumbCell(i, thumbs) : '') +
        `<td class="file" title="${escapeHtml(i.path)}">${escapeHtml(i.path.startsWith(folder) ? i.path.slice(folder.length) : i.path)}</td><td>${escapeHtml(i.node)}</td>` +
        `<td><span class="sw" style="background:${colourOf.get(i.given_class)}"></span>${escapeHtml(i.given_class)}</td>` +
        (mislabeled
          ? `<td>${i.suggested_class ? `<span class="sw" style="background:${colourOf.get(i.suggested_class) ?? '#999'}"></span>${escapeHtml(i.suggested_class)}` : '<span class="muted">none</span>'}</td>` +
            `<td class="num">${i.confidence === undefined ? '–' : i.confidence.toFixed(2)}</td>`
          : '') +
        (hasIssue ? `<td>${escapeHtml(i.verdicts[task]?.issue ?? '–')}</td>` : '') +
        (hasScore ? `<td class="num">${i.verdicts[task]?.score === undefined ? '–' : formatScore(i.verdicts[task].score!)}</td>` : '') +
        `<td class="num">${i.brightness.toFixed(3)}</td><td class="num">${i.width}×${i.height}×${i.channels}</td>` +
        `<td>${others ? escapeHtml(others) : '<span class="muted">–</span>'}</td></tr>`
      );
    })
    .join('');
  const empty = flagged.length === 0 ? `<tr class="none"><td colspan="20">No outliers.</td></tr>` : '';
  return (
    `<section class="task" id="task-${slug(task)}" data-task="${escapeHtml(task)}"><h2>${escapeHtml(taskLabel(task))} <code>${escapeHtml(task)}</code></h2>` +
    `<p class="note">${flagged.length} outlier${flagged.length === 1 ? '' : 's'} of ${total} images (${pct(flagged.length, total)}).</p>` +
    `<table class="outliers"><thead><tr>${head}</tr></thead><tbody>${rows}${empty}</tbody></table></section>`
  );
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
`;

const SCRIPT = `
(function () {
  var select = document.getElementById('task-select');
  var svg = document.getElementById('scatter');
  var count = document.getElementById('marked-count');
  if (!select || !svg) return;
  function mark() {
    var task = select.value;
    var points = svg.querySelectorAll('.pt');
    var marked = 0;
    for (var i = 0; i < points.length; i++) {
      var tasks = (points[i].getAttribute('data-tasks') || '').split(' ').filter(Boolean);
      var flag = task === '*' ? tasks.length > 0 : task !== '' && tasks.indexOf(task) >= 0;
      points[i].classList.toggle('flag', flag);
      if (flag) marked++;
    }
    svg.classList.toggle('marking', task !== '');
    if (count) count.textContent = marked + ' marked';
  }
  select.addEventListener('change', mark);
  mark();
})();
`;

/** The report page for `model`. */
export function renderReportHtml(model: ReportModel, options: RenderOptions): string {
  const colourOf = new Map(model.classes.map((c, i) => [c, classColour(i)]));
  const { svg, plotted } = scatter(model, colourOf);
  const n = model.images.length;
  const flaggedAny = model.images.filter((i) => i.flagged_by.length > 0).length;
  const cards = [
    `<div class="card"><b>${n}</b><span>images</span></div>`,
    `<div class="card"><b>${model.classes.length}</b><span>classes</span></div>`,
    `<div class="card"><b>${model.per_node.length}</b><span>node${model.per_node.length === 1 ? '' : 's'}</span></div>`,
    `<div class="card"><b>${flaggedAny}</b><span>flagged by any task (${pct(flaggedAny, n)})</span></div>`,
    ...model.tasks.map((t) => {
      const k = model.images.filter((i) => i.flagged_by.includes(t)).length;
      return `<div class="card"><b>${k}</b><span>${escapeHtml(taskLabel(t))} (${pct(k, n)})</span></div>`;
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
  const folder = commonFolder(model.images.map((i) => i.path));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)}</title><style>${CSS}</style></head>
<body>
<header><h1>${escapeHtml(options.title)}</h1>
<p class="sub">Diagnosis of dataset <code>${escapeHtml(model.dataset_uuid)}</code> · tasks: ${model.tasks.map((t) => `<code>${escapeHtml(t)}</code>`).join(', ') || 'none'}</p>
<div class="cards" id="summary">${cards}</div></header>
<main>
<section id="projection"><h2>2-D projection</h2>
<p class="note">Each point is an image, placed by <code>projections["2d"]</code> and coloured by the class it is filed under. Hover a point for its file.${unplotted > 0 ? ` <span id="unplotted">${unplotted} image${unplotted === 1 ? ' has' : 's have'} no 2-D projection and ${unplotted === 1 ? 'is' : 'are'} not plotted.</span>` : ''}</p>
<div class="controls"><label>Mark outliers of <select id="task-select">${options_}</select></label> <span class="muted" id="marked-count"></span></div>
<div class="plot">${svg}${legend}</div></section>
<section id="counts"><h2>Counts</h2><div class="tables">
<div><h3>Per class</h3>${countTable('per-class', 'class', model.per_class, model.tasks, colourOf)}</div>
<div><h3>Per node</h3>${countTable('per-node', 'node', model.per_node, model.tasks)}</div>
</div></section>
${folder ? `<p class="note" id="folder">File paths below are relative to <code>${escapeHtml(folder)}</code>.</p>` : ''}
${model.tasks.map((t) => taskSection(t, model, colourOf, options.thumbnails, folder)).join('\n')}
</main>
<footer>Made by flame-sdk from a seed-000 diagnosis result. Classes are the classes images are filed under; suggested classes and confidences come from the mislabeled-images task. See src/report/README.md for how to read this report.</footer>
<script>${SCRIPT}</script>
</body></html>
`;
}
