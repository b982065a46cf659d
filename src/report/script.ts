/**
 * The script of the report page (plain browser JavaScript, inlined; no library): marks a task's
 * outliers in the projection, opens an image and its record when a point or a row is clicked,
 * filters and sorts the task tables. It writes text only through `textContent` and attributes, never
 * markup, so what the result says cannot become page code. It reads the records from the page's
 * `<script type="application/json" id="report-data">`.
 */

/** The script's source, kept ES5-plain so it runs in any browser a report may be opened in. */
export const REPORT_SCRIPT = String.raw`
(function () {
  'use strict';
  var byId = function (id) { return document.getElementById(id); };
  var each = function (list, f) { Array.prototype.forEach.call(list, f); };
  var dataEl = byId('report-data');
  var data = dataEl ? JSON.parse(dataEl.textContent) : { tasks: [], images: [] };
  var svg = byId('scatter');

  // ---- each row of a task table names its image by id (TASKSLUG-UUID): find it, remember the order
  var rowImage = {};
  data.tasks.forEach(function (t) {
    data.images.forEach(function (im, i) { if (im.verdicts[t.name]) rowImage[t.slug + '-' + im.uuid] = i; });
  });
  each(document.querySelectorAll('section.task'), function (section) {
    each(section.querySelectorAll('table.outliers tbody tr[id]'), function (tr, order) {
      var i = rowImage[tr.id];
      if (i === undefined) return;
      tr.setAttribute('data-i', String(i));
      tr.setAttribute('data-o', String(order));
    });
  });
  /** What a row sorts and filters by: its image's value for key, in the section's task; null if none. */
  function valueOf(tr, key) {
    var img = data.images[Number(tr.getAttribute('data-i'))];
    var task = tr.closest('section.task').getAttribute('data-task');
    var v = img.verdicts[task] || {};
    var dup = img.duplicate_of;
    var out = {
      file: img.path,
      node: img.node,
      class: img.class,
      suggested: img.suggested,
      confidence: img.confidence,
      issue: v.issue,
      score: v.score,
      brightness: img.brightness,
      size: img.pixels,
      original: dup ? (dup.i !== undefined ? data.images[dup.i].path : dup.node ? 'an image of ' + dup.node : undefined) : undefined
    }[key];
    return out === undefined || out === null ? null : out;
  }

  // ---- which task's outliers are ringed in the projection
  var select = byId('task-select');
  var count = byId('marked-count');
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
  if (select && svg) {
    select.addEventListener('change', mark);
    mark();
  }

  // ---- the detail panel: an image, its record, and the other image of a duplicate pair
  var panel = byId('detail');
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function thumbOf(i) {
    var img = data.images[i];
    if (img.thumb) return img.thumb;
    var t = document.querySelector('img.thumb[data-i="' + i + '"]');
    return t ? t.getAttribute('src') : null;
  }
  function picture(i, caption, missing) {
    var fig = el('figure', 'pic');
    var src = i === undefined ? null : thumbOf(i);
    if (src) {
      var im = el('img', 'big');
      im.src = src;
      im.alt = data.images[i].path;
      fig.appendChild(im);
    } else {
      fig.appendChild(el('div', 'big ph', missing || (i === undefined ? 'not in this result' : data.images[i].missing || 'no thumbnail')));
    }
    fig.appendChild(el('figcaption', null, caption));
    return fig;
  }
  function fixed(v, digits) { return typeof v === 'number' ? v.toFixed(digits) : '–'; }
  function row(dl, term, value) {
    if (value === undefined || value === null || value === '') return;
    dl.appendChild(el('dt', null, term));
    dl.appendChild(el('dd', null, value));
  }
  function baseName(p) { return p.slice(p.lastIndexOf('/') + 1) || p; }
  function show(i) {
    var img = data.images[i];
    if (!img || !panel) return;
    panel.textContent = '';
    var head = el('div', 'dhead');
    head.appendChild(el('h3', null, baseName(img.path)));
    var close = el('button', 'close', '×');
    close.type = 'button';
    close.title = 'close (Esc)';
    close.id = 'detail-close';
    close.addEventListener('click', hide);
    head.appendChild(close);
    panel.appendChild(head);

    var pics = el('div', 'pics');
    pics.appendChild(picture(i, img.flagged_by.length ? 'this image' : 'this image (not flagged)'));
    var dup = img.duplicate_of;
    if (dup) pics.appendChild(picture(dup.i, 'the image it duplicates', dup.node ? 'an image of ' + dup.node + ', not in this result' : undefined));
    var copies = [];
    data.images.forEach(function (o, k) { if (o.duplicate_of && o.duplicate_of.i === i) copies.push(k); });
    copies.forEach(function (k) { pics.appendChild(picture(k, 'a duplicate of it')); });
    panel.appendChild(pics);

    var dl = el('dl');
    row(dl, 'file', img.path);
    row(dl, 'node', img.node);
    row(dl, 'class', img.class);
    if (img.suggested !== undefined) row(dl, 'suggested', img.suggested + (img.confidence !== undefined ? ' (confidence ' + fixed(img.confidence, 2) + ')' : ''));
    if (dup) row(dl, 'duplicate of', dup.i !== undefined ? data.images[dup.i].path + ' (' + data.images[dup.i].node + ')' : 'an image of ' + (dup.node || 'another node'));
    copies.forEach(function (k) { row(dl, 'duplicated by', data.images[k].path + ' (' + data.images[k].node + ')'); });
    row(dl, 'brightness', fixed(img.brightness, 3));
    row(dl, 'size', img.size);
    if (img.xy) row(dl, 'projection', fixed(img.xy[0], 3) + ', ' + fixed(img.xy[1], 3));
    row(dl, 'uuid', img.uuid);
    panel.appendChild(dl);

    var table = el('table', 'verdicts');
    var thead = el('tr');
    ['task', 'verdict', 'issue', 'score'].forEach(function (h) { thead.appendChild(el('th', null, h)); });
    table.appendChild(thead);
    data.tasks.forEach(function (t) {
      var v = img.verdicts[t.name];
      var tr = el('tr', v ? 'hit' : null);
      tr.setAttribute('data-task', t.name);
      tr.appendChild(el('td', null, t.label));
      tr.appendChild(el('td', null, v ? 'flagged' : 'not flagged'));
      tr.appendChild(el('td', null, v && v.issue !== undefined ? v.issue : '–'));
      tr.appendChild(el('td', 'num', v && typeof v.score === 'number' ? String(Math.round(v.score * 1000) / 1000) : '–'));
      table.appendChild(tr);
    });
    panel.appendChild(table);
    panel.setAttribute('data-i', String(i));
    panel.hidden = false;

    if (svg) {
      each(svg.querySelectorAll('.pt.sel'), function (c) { c.classList.remove('sel'); });
      var pt = svg.querySelector('.pt[data-i="' + i + '"]');
      if (pt) {
        pt.classList.add('sel');
        svg.appendChild(pt); // drawn on top
      }
    }
    each(document.querySelectorAll('tr.sel'), function (r) { r.classList.remove('sel'); });
    each(document.querySelectorAll('table.outliers tr[data-i="' + i + '"]'), function (r) { r.classList.add('sel'); });
  }
  function hide() {
    if (panel) panel.hidden = true;
    if (svg) each(svg.querySelectorAll('.pt.sel'), function (c) { c.classList.remove('sel'); });
    each(document.querySelectorAll('tr.sel'), function (r) { r.classList.remove('sel'); });
  }
  if (svg) {
    svg.addEventListener('click', function (e) {
      var pt = e.target.closest ? e.target.closest('.pt') : null;
      if (pt) show(Number(pt.getAttribute('data-i')));
    });
    svg.addEventListener('keydown', function (e) {
      var pt = e.target.closest ? e.target.closest('.pt') : null;
      if (pt && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        show(Number(pt.getAttribute('data-i')));
      }
    });
  }
  each(document.querySelectorAll('table.outliers tbody'), function (tb) {
    tb.addEventListener('click', function (e) {
      var tr = e.target.closest('tr[data-i]');
      if (tr) show(Number(tr.getAttribute('data-i')));
    });
  });
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape') hide(); });

  // ---- filters: hide the rows of the task tables that do not match
  var form = byId('filters');
  var sections = document.querySelectorAll('section.task');
  function value(id) { var e = byId(id); return e ? e.value : ''; }
  function bound(id) { var v = value(id); return v === '' || isNaN(Number(v)) ? null : Number(v); }
  function applyFilters() {
    var task = value('f-task');
    var cls = value('f-class');
    var node = value('f-node');
    var text = value('f-text').toLowerCase();
    var min = bound('f-min');
    var max = bound('f-max');
    var active = cls !== '' || node !== '' || text !== '' || min !== null || max !== null;
    var shownAll = 0;
    var rowsAll = 0;
    each(sections, function (section) {
      var on = task === '' || section.getAttribute('data-task') === task;
      section.hidden = !on;
      var rows = section.querySelectorAll('tbody tr[data-i]');
      var shown = 0;
      each(rows, function (r) {
        var score = valueOf(r, 'score');
        var ok =
          (cls === '' || valueOf(r, 'class') === cls) &&
          (node === '' || valueOf(r, 'node') === node) &&
          (text === '' || String(valueOf(r, 'file')).toLowerCase().indexOf(text) >= 0) &&
          (min === null || (score !== null && score >= min)) &&
          (max === null || (score !== null && score <= max));
        r.hidden = !ok;
        if (ok) shown++;
      });
      var nomatch = section.querySelector('tr.nomatch');
      if (nomatch) nomatch.hidden = shown > 0 || rows.length === 0;
      var note = section.querySelector('.shown');
      if (note) note.textContent = active ? shown + ' of ' + rows.length + ' shown.' : '';
      if (on) {
        shownAll += shown;
        rowsAll += rows.length;
      }
    });
    var fc = byId('f-count');
    if (fc) fc.textContent = shownAll + ' of ' + rowsAll + ' rows shown';
  }
  if (form) {
    form.addEventListener('input', applyFilters);
    form.addEventListener('change', applyFilters);
    form.addEventListener('submit', function (e) { e.preventDefault(); });
    form.addEventListener('reset', function () { setTimeout(applyFilters, 0); });
    applyFilters();
  }

  // ---- sorting: a column heading orders its table's rows by that column (again: reversed)
  each(document.querySelectorAll('table.outliers th[data-sort] button'), function (btn) {
    btn.addEventListener('click', function () {
      var th = btn.parentNode;
      var table = th.closest('table');
      var key = th.getAttribute('data-sort');
      var numeric = th.getAttribute('data-type') === 'num';
      var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
      each(table.querySelectorAll('th[data-sort]'), function (h) { h.setAttribute('aria-sort', 'none'); });
      th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
      var tbody = table.tBodies[0];
      var rows = Array.prototype.slice.call(tbody.querySelectorAll('tr[data-i]'));
      var order = function (r) { return Number(r.getAttribute('data-o')); };
      rows.sort(function (a, b) {
        var x = valueOf(a, key);
        var y = valueOf(b, key);
        // rows without a value go last in either direction
        if (x === null || y === null) return x === y ? order(a) - order(b) : x === null ? 1 : -1;
        var c = numeric ? Number(x) - Number(y) : String(x).localeCompare(String(y), undefined, { numeric: true });
        return c !== 0 ? c * dir : order(a) - order(b);
      });
      rows.forEach(function (r) { tbody.appendChild(r); });
    });
  });
})();
`;
