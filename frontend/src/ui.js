/*
 * The explorer UI (docs/explorer.md): views, charts, URL-hash state, accessibility and test hooks.
 *
 * Structure
 *   1. bootstrap and small helpers (DOM builder, formatting, labels)
 *   2. state <-> URL hash (every view state is a bookmarkable hash; back/forward re-render it)
 *   3. shell (header, navigation, footer, debug panel, caveats dialog, live region)
 *   4. views: home, explore (cross-filter charts), fidelity, privacy (story + glossary), downloads
 *   5. exports (CSV of the visible counts, clipboard)
 *
 * Safety: values from the data are only ever inserted with textContent / setAttribute, never as HTML.
 * Test hooks: data-testid on interactive elements; bars carry data-col, data-val, data-attr, data-syn, data-agg,
 * data-state, data-agree; window.__explorerReady is set after the first render; ?test=1 disables animations.
 */
import { Model, Query } from './core.js';
import * as I18N from './i18n.js';
import { Formatter } from './format.js';
import { stripIsolates } from './bidi.js';
import { GEO_ALPHA2, regionNamer } from './regions.js';
import { binClass, mapBins, renderMap } from './map.js';

const TEST_MODE = new URLSearchParams(location.search).get('test') === '1';
const VIEWS = ['home', 'explore', 'fidelity', 'privacy', 'downloads'];
// 'auto' = natural order for ordinal columns (age bands), official count otherwise.
const SORTS = ['auto', 'agg', 'syn', 'alpha', 'code'];
const ROW_HEIGHT = 38;        // px per bar row; used to reserve space before a chart is rendered
const MAX_BODY_HEIGHT = 440;  // charts with many values scroll inside their body
const RENDER_MARGIN = 300;    // px around the viewport in which charts are rendered eagerly
const SEARCH_MIN_VALUES = 12;  // charts with more values than this get a value search box
const TOP_N = 25;              // long charts show this many rows until "Show all" is pressed
const GLYPH = { green: '✓', amber: '≈', red: '✗', grey: '–' };
const STATE_GLYPH = { lt_k: '◌', na: '⊘' };
const GLOSSARY_TERMS = ['k', 'L', 'synthetic', 'aggregate', 'suppressed', 'fabricated', 'proportional_error', 'agreement', 'blank'];
const ACK_KEY = 'ctdc-explorer-caveats-ack';
const PAGE_ALL = '__all__';  // page-select value of "all columns" (page names come from the config)

let model = null;
let query = null;
let state = null;
let lastHash = null;
let idCounter = 0;
let fmt = null;         // Formatter of the page language (format.js)
let regionName = null;  // alpha-2 code -> country name in the page language

/** Transient UI state that is not part of the URL. */
const ui = {
  version: 0,
  charts: new Map(),       // visual id -> chart <section>
  activeAttr: new Map(),   // visual id -> attribute holding the chart's tab stop (roving tabindex)
  chooserOpen: false,
  chooserFilter: '',
  caveatsAck: false,
  ignoredFilters: 0,
  openHelp: null,
  chartFilter: new Map(),  // visual id -> in-chart value search text
  expanded: new Set(),     // visual ids whose long value list is shown in full
  io: null,
};

const perf = { readyAt: null, lastRenderMs: null, renders: [] };
window.__explorerPerf = perf;

// -------------------------------------------------------------------------------------------------------
// 1. Helpers
// -------------------------------------------------------------------------------------------------------

/** Create an element. props: class, text, style (object), dataset, on<event>, other attributes. */
function h(tag, props) {
  const el = document.createElement(tag);
  if (props) {
    for (const key of Object.keys(props)) {
      const value = props[key];
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'style') Object.assign(el.style, value);
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.slice(0, 2) === 'on') el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
  return el;
}

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
  el.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
}

function uid(prefix) { idCounter += 1; return prefix + '-' + idCounter; }

function t(key, params) { return I18N.t(state.lang, key, params); }

// Labels come from the payload's per-language label maps, falling back to the raw value; they are isolated for
// right-to-left pages (bidi.js), as is everything the page shows from the data.
function pick(labels, fallback) {
  let text = fallback;
  if (labels) text = labels[state.lang] || labels[model.meta.default_language] || labels.en || fallback;
  return fmt.text(text);
}
/** Text of a payload lang map (title, description, licence, citation) in the page language; '' when absent. */
function metaText(name) { return pick(model.meta[name], ''); }
function columnLabel(ci) { const c = model.columns[ci]; return pick(c.labels, c.id); }
function sourceLabel(source) {
  const v = model.visualById.get('group:' + source);
  return v ? pick(v.labels, source) : fmt.text(source);
}
/** A yes/no column (a multi-value field's indicator, or a column flagged indicator) whose one value means "yes". */
function isFlag(col) { return col.kind === 'multi' || col.indicator; }
/** Name of a yes/no column: its own label (for a multi-value indicator, the piece after "<source>_"). */
function flagName(ci) {
  const col = model.columns[ci];
  const prefix = col.source + '_';
  return pick(col.labels, col.kind === 'multi' && col.id.indexOf(prefix) === 0 ? col.id.slice(prefix.length) : col.id);
}
function isCountry(col) { return col.geo === GEO_ALPHA2; }
/** A country's name in the page language: a translation from the codebook, else the browser's name for the code. */
function countryName(value) {
  const own = (value.labels || {})[state.lang];
  return fmt.text(own && own !== value.value ? own : regionName(value.value));
}
/** Label of an attribute's value: the value label, "yes" for an indicator, a country name for a country code. */
function valueLabel(a) {
  const attr = model.attrs[a];
  const col = model.columns[attr.col];
  if (col.kind === 'multi') return flagName(attr.col);
  if (col.indicator) return t('yes');
  if (isCountry(col)) return countryName(col.values[attr.vi]);
  return pick(col.values[attr.vi].labels, attr.value);
}
/** "Column: value" label used in chips, sentences and exports. */
function attrFullLabel(a) {
  const col = model.columns[model.attrs[a].col];
  if (col.kind === 'multi') return t('pair', { column: sourceLabel(col.source), value: flagName(model.attrs[a].col) });
  return t('pair', { column: columnLabel(model.attrs[a].col), value: valueLabel(a) });
}
function visualLabel(v) {
  if (v.type === 'map') return t('map_title', { chart: columnLabel(v.column) });
  return v.type === 'group' ? pick(v.labels, v.name) : columnLabel(v.column);
}
/**
 * Bar label of attribute a in visual v: the value label in a one-column chart, the indicator's name in a chart
 * of yes/no indicators (so a "Means of control" group reads "Debt bondage", "Threats", ...), else "Column: value".
 */
function rowLabel(v, a) {
  if (v.type !== 'group') return valueLabel(a);
  const cols = v.attrs.map(function (x) { return model.columns[model.attrs[x].col]; });
  const own = model.columns[model.attrs[a].col];
  if (cols.every(isFlag)) return flagName(model.attrs[a].col);
  const keys = new Set(cols.map(function (col) { return col.kind === 'multi' ? 's:' + col.source : 'c:' + col.id; }));
  if (keys.size === 1) return valueLabel(a);
  return isFlag(own) && own.kind !== 'multi' ? flagName(model.attrs[a].col) : attrFullLabel(a);
}
/** The code kept beside a translated country name (tooltip, export); null for other columns. */
function attrCode(a) {
  const attr = model.attrs[a];
  return isCountry(model.columns[attr.col]) ? attr.value : null;
}
function recordNoun() { return pick(model.meta.record_noun, t('records_noun')); }
function datasetVersion() { return model.meta.dataset_version || model.meta.run_id; }

function announce(message) {
  // Clear first so that repeating the same message is announced again.
  ui.live.textContent = '';
  window.setTimeout(function () { ui.live.textContent = message; }, TEST_MODE ? 0 : 50);
  ui.live.dataset.message = message;
}

function copyText(text, doneMessage) {
  function fallback() {
    const area = h('textarea', { class: 'sr-only', 'aria-hidden': 'true', tabindex: '-1' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    area.remove();
    announce(ok ? doneMessage : t('copy_failed'));
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { announce(doneMessage); }, fallback);
  } else {
    fallback();
  }
}

function helpButton(term) {
  // A "?" button that toggles a short definition (M18); Escape or a click elsewhere closes it.
  const tipId = uid('help');
  const tip = h('span', { class: 'help-tip', id: tipId, role: 'note', hidden: true },
    h('strong', { text: t('term_' + term) }), ' ', t('def_' + term, agreeParams()), ' ',
    h('a', { href: hashFor({ view: 'privacy' }) + '&section=glossary', 'data-testid': 'help-glossary-link',
      text: t('see_glossary') }));
  const button = h('button', {
    type: 'button', class: 'help-btn', 'aria-expanded': 'false', 'aria-controls': tipId,
    'aria-label': t('help_for', { term: t('term_' + term) }), 'data-testid': 'help-' + term,
    'data-focus-key': 'help-' + term, text: '?',
  });
  button.addEventListener('click', function (ev) {
    ev.stopPropagation();
    const open = tip.hidden;
    closeHelp();
    if (open) { tip.hidden = false; button.setAttribute('aria-expanded', 'true'); ui.openHelp = { tip: tip, button: button }; }
  });
  return h('span', { class: 'help' }, button, tip);
}

function closeHelp() {
  if (!ui.openHelp) return false;
  ui.openHelp.tip.hidden = true;
  ui.openHelp.button.setAttribute('aria-expanded', 'false');
  ui.openHelp = null;
  return true;
}

// -------------------------------------------------------------------------------------------------------
// 2. State and URL hash
// -------------------------------------------------------------------------------------------------------

function defaultState() {
  return { view: 'home', lang: model.meta.default_language, sel: [], cols: null, page: null, sort: 'auto',
    exact: false, tables: [], step: 1 };
}

/** Parse a URL hash such as "#view=explore&s=Gender%3AFemale&lang=fr" into a state; unknown parts are dropped. */
function parseHash(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const s = defaultState();
  if (VIEWS.indexOf(p.get('view')) >= 0) s.view = p.get('view');
  if (model.meta.languages.indexOf(p.get('lang')) >= 0) s.lang = p.get('lang');
  ui.ignoredFilters = 0;
  const byCol = new Map();
  p.getAll('s').forEach(function (id) {
    const a = model.attrById.get(id);
    if (a === undefined) { ui.ignoredFilters += 1; return; }
    byCol.set(model.attrs[a].col, a);
  });
  s.sel = canonicalSelection(Array.from(byCol.values()));
  if (p.has('cols')) s.cols = uniq(p.getAll('cols').filter(function (id) { return model.visualById.has(id); }));
  else if (p.get('page') && model.pages.some(function (pg) { return pg.name === p.get('page'); })) s.page = p.get('page');
  if (SORTS.indexOf(p.get('sort')) >= 0) s.sort = p.get('sort');
  s.exact = p.get('exact') === '1';
  s.tables = uniq(p.getAll('tbl').filter(function (id) { return model.visualById.has(id); }));
  const step = parseInt(p.get('step') || '1', 10);
  s.step = step >= 1 && step <= 4 ? step : 1;
  return s;
}

/** At most one attribute per column (the last wins), in canonical (ascending id) order. */
function canonicalSelection(list) {
  const byCol = new Map();
  list.forEach(function (a) { byCol.set(model.attrs[a].col, a); });
  return Array.from(byCol.values()).sort(function (x, y) { return x - y; });
}

function uniq(list) { return list.filter(function (x, i) { return list.indexOf(x) === i; }); }

function serialize(s) {
  const p = new URLSearchParams();
  p.set('view', s.view);
  if (s.lang !== model.meta.default_language) p.set('lang', s.lang);
  s.sel.forEach(function (a) { p.append('s', model.attrs[a].id); });
  if (s.cols) {
    if (s.cols.length) s.cols.forEach(function (id) { p.append('cols', id); }); else p.set('cols', '');
  } else if (s.page) {
    p.set('page', s.page);
  }
  if (s.sort !== 'auto') p.set('sort', s.sort);
  if (s.exact) p.set('exact', '1');
  s.tables.forEach(function (id) { p.append('tbl', id); });
  if (s.step !== 1) p.set('step', String(s.step));
  return '#' + p.toString();
}

function hashFor(patch) { return serialize(Object.assign({}, state, patch)); }

/** Apply a state change: push it to the URL (a new history entry) and re-render synchronously. */
function commit(patch) {
  const prev = state;
  if (patch.sel) patch.sel = canonicalSelection(patch.sel);
  state = Object.assign({}, state, patch);
  const hash = serialize(state);
  lastHash = hash;
  if (location.hash !== hash) location.hash = hash;
  render(prev);
}

function onHashChange() {
  if (location.hash === lastHash) return;  // our own commit; already rendered
  const prev = state;
  state = parseHash(location.hash);
  lastHash = location.hash;
  render(prev);
}

function visibleVisualIds() {
  if (state.cols) return state.cols;
  if (state.page) {
    const page = model.pages.find(function (pg) { return pg.name === state.page; });
    if (page) return page.visuals;
  }
  return model.defaultVisuals;
}

function sameList(a, b) { return a.length === b.length && a.every(function (x, i) { return x === b[i]; }); }

// -------------------------------------------------------------------------------------------------------
// Rendering entry point
// -------------------------------------------------------------------------------------------------------

function focusSignature(el) {
  if (!el || el === document.body || !el.dataset || !el.dataset.testid) return null;
  return { testid: el.dataset.testid, key: el.dataset.focusKey || null };
}

function restoreFocus(sig) {
  if (!sig || (document.activeElement && document.activeElement !== document.body && document.contains(document.activeElement))) return;
  let selector = '[data-testid="' + CSS.escape(sig.testid) + '"]';
  if (sig.key !== null) selector += '[data-focus-key="' + CSS.escape(sig.key) + '"]';
  const el = document.querySelector(selector);
  if (el) el.focus({ preventScroll: false });
}

function render(prev) {
  const t0 = performance.now();
  const sig = focusSignature(document.activeElement);
  if (!prev || !sameList(prev.sel, state.sel) || query.sel.length !== state.sel.length) query.setSelection(state.sel);
  state.sel = query.sel.slice();
  ui.version += 1;
  document.documentElement.dataset.stateVersion = String(ui.version);
  if (!prev || prev.lang !== state.lang) {
    applyLanguage();
    buildShell();
    buildView();
  } else if (prev.view !== state.view) {
    updateShell();
    buildView();
    ui.viewHeading.focus();
  } else {
    updateShell();
    VIEW_IMPL[state.view].update(prev);
  }
  restoreFocus(sig);
  const ms = performance.now() - t0;
  perf.lastRenderMs = ms;
  perf.renders.push(ms);
  if (perf.renders.length > 200) perf.renders.shift();
  if (ui.debugPanel && ui.debugPanel.open) updateDebug();  // only while someone is looking at it
}

function applyLanguage() {
  fmt = new Formatter(state.lang);
  regionName = regionNamer(state.lang);
  document.documentElement.lang = state.lang;
  document.documentElement.dir = I18N.direction(state.lang);
  document.title = stripIsolates(metaText('title')) + ' — ' + t('app_name');
}

// -------------------------------------------------------------------------------------------------------
// 3. Shell: header, navigation, footer, caveats dialog, live region
// -------------------------------------------------------------------------------------------------------

function buildShell() {
  const app = document.getElementById('app');
  app.textContent = '';
  app.removeAttribute('aria-busy');
  ui.navLinks = {};
  const nav = h('nav', { class: 'site-nav', 'aria-label': t('nav_label') },
    h('ul', null, VIEWS.map(function (v) {
      const link = h('a', { href: hashFor({ view: v }), 'data-testid': 'nav-' + v, 'data-focus-key': v, text: t('view_' + v) });
      ui.navLinks[v] = link;
      return h('li', null, link);
    })));
  ui.langSelect = h('select', { id: 'lang-select', 'data-testid': 'lang-select', onchange: function () { commit({ lang: ui.langSelect.value }); } },
    model.meta.languages.map(function (lang) {
      return h('option', { value: lang, lang: lang, text: I18N.languageName(lang) });
    }));
  ui.langSelect.value = state.lang;
  const header = h('header', { class: 'site-header' },
    h('button', { type: 'button', class: 'skip-link', 'data-testid': 'skip-link', text: t('skip_to_content'),
      onclick: function () { ui.main.focus(); } }),
    h('div', { class: 'brand' },
      h('p', { class: 'brand-kicker', text: t('app_name') }),
      h('h1', { class: 'brand-title', text: metaText('title') })),
    h('div', { class: 'header-tools' },
      h('label', { class: 'lang-label', for: 'lang-select', text: t('language') }), ui.langSelect,
      h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'caveats-open', text: t('caveats_button'),
        onclick: openCaveats }),
      h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'copy-link', text: t('copy_link'),
        onclick: function () { copyText(location.href, t('link_copied')); } })),
    nav);
  ui.main = h('main', { id: 'main', tabindex: '-1', 'data-testid': 'main' });
  ui.live = h('div', { class: 'sr-only', 'aria-live': 'polite', role: 'status', 'data-testid': 'live-region' });
  ui.caveatsDialog = buildCaveatsDialog();
  app.append(header, ui.main, buildFooter(), ui.live, ui.caveatsDialog);
  updateShell();
}

function updateShell() {
  VIEWS.forEach(function (v) {
    const link = ui.navLinks[v];
    link.href = hashFor({ view: v });
    if (v === state.view) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  });
  ui.langSelect.value = state.lang;
}

function caveatItems() {
  return h('ul', { class: 'caveats' }, ['caveat_identified', 'caveat_prevalence', 'caveat_sample', 'caveat_synthetic',
    'caveat_small'].map(function (key) {
    return h('li', { text: t(key, { k: fmt.int(model.k) }) });
  }));
}

function buildCaveatsDialog() {
  const titleId = uid('caveats-title');
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'data-testid': 'caveats-dialog' },
    h('h2', { id: titleId, text: t('caveats_title') }),
    caveatItems(),
    h('button', { type: 'button', class: 'btn', 'data-testid': 'caveats-close', text: t('close'),
      onclick: function () { dialog.close(); } }));
  return dialog;
}

function openCaveats() {
  if (typeof ui.caveatsDialog.showModal === 'function') ui.caveatsDialog.showModal();
  else ui.caveatsDialog.setAttribute('open', '');
}

function buildFooter() {
  ui.debugBody = h('dl', { class: 'debug-list' });
  const footer = h('footer', { class: 'site-footer' },
    h('p', null, t('footer_line', { title: metaText('title'), version: datasetVersion(), run: model.meta.run_id,
      pipeline: model.meta.pipeline_version })),
    ui.debugPanel = h('details', { class: 'debug', ontoggle: function () { if (ui.debugPanel.open) updateDebug(); } },
      h('summary', { 'data-testid': 'debug-panel', text: t('debug_title') }),
      ui.debugBody));
  return footer;
}

function updateDebug() {
  const rows = [
    [t('debug_records'), fmt.int(model.n)],
    [t('debug_columns'), fmt.int(model.columns.length)],
    [t('debug_attributes'), fmt.int(model.attrs.length)],
    [t('debug_keys'), fmt.int(model.keyCount)],
  ];
  model.tables.forEach(function (tb, len) { if (tb) rows.push([t('debug_keys_len', { n: fmt.int(len) }), fmt.int(tb.m)]); });
  rows.push([t('debug_bitsets'), fmt.int(model.bitsetsBuilt)]);
  rows.push([t('debug_render_ms'), perf.lastRenderMs === null ? '—' : fmt.num(perf.lastRenderMs, 1)]);
  rows.push([t('debug_ready_ms'), perf.readyAt === null ? '—' : fmt.num(perf.readyAt, 0)]);
  rows.push([t('debug_state'), location.hash || '—']);
  ui.debugBody.textContent = '';
  rows.forEach(function (r) { ui.debugBody.append(h('dt', { text: r[0] }), h('dd', { text: r[1] })); });
  ui.debugBody.dataset.keys = String(model.keyCount);
}

function buildView() {
  closeHelp();
  if (ui.io) { ui.io.disconnect(); ui.io = null; }
  ui.charts = new Map();
  ui.main.textContent = '';
  ui.main.dataset.view = state.view;
  ui.viewHeading = h('h2', { class: 'view-title', tabindex: '-1', 'data-testid': 'view-heading', text: t('view_title_' + state.view) });
  ui.main.append(ui.viewHeading);
  VIEW_IMPL[state.view].build(ui.main);
  // Deep links into a view (glossary, codebook) carry "section=<id>"; it is not part of the saved state.
  const section = /[#&]section=([a-z]+)/.exec(location.hash);
  if (section && document.getElementById(section[1])) document.getElementById(section[1]).scrollIntoView();
}

function card(extraClass, children) { return h('section', { class: 'card ' + (extraClass || '') }, children); }

// -------------------------------------------------------------------------------------------------------
// 4a. Home / overview
// -------------------------------------------------------------------------------------------------------

function byLength(len) {
  return model.stats.by_length.find(function (r) { return r.length === len; }) || null;
}

/**
 * Accuracy in one sentence (M3), the same measure for single characteristics and for combinations of 2..L
 * (stats.multi), so neither looks better by being told differently; null when nothing is published. Older
 * statistics without proportional errors fall back to the single-characteristic absolute error.
 */
function accuracySentence() {
  const one = byLength(1);
  const multi = model.stats.multi;
  const parts = [];
  if (one && one.mean_proportional_error !== null && one.mean_proportional_error !== undefined) {
    parts.push(t('acc_single', { mpe: fmt.fraction(one.mean_proportional_error) }));
  } else if (one && one.mean_abs_error !== null) {
    parts.push(t('st_accuracy', { mae: fmt.num(one.mean_abs_error, 1) }));
  }
  if (multi && multi.mean_proportional_error !== null) {
    parts.push(t('acc_multi', { min: fmt.int(multi.min_length), max: fmt.int(multi.max_length),
      mpe: fmt.fraction(multi.mean_proportional_error) }));
  }
  return parts.length ? parts.join(t('list_sep')) : null;
}

/** The four plain-language statements (M3), computed only from published files (M15). */
function statements() {
  const k = fmt.int(model.k);
  const L = fmt.int(model.L);
  const out = [];
  if (model.kAnonymity) {
    out.push({ id: 'privacy', title: t('st_privacy_title'), text: t('st_privacy', { k: k, L: L }),
      more: t('st_privacy_more', { k: k, L: L, k1: fmt.int(model.k - 1) }) });
  } else {
    const dp = model.meta.dp;
    out.push({ id: 'privacy', title: t('st_privacy_title'), text: t('st_privacy_dp', { epsilon: fmt.num(dp.epsilon, 3) }),
      more: t('st_privacy_dp_more', { epsilon: fmt.num(dp.epsilon, 3), delta: dp.delta === null ? '—' : String(dp.delta) }) });
  }
  out.push({ id: 'synthetic', title: t('st_synthetic_title'), text: t('st_synthetic', { k: k }),
    more: t('st_synthetic_more', { k: k, L: L }) });
  const accuracy = accuracySentence();
  if (accuracy) {
    out.push({ id: 'accuracy', title: t('st_accuracy_title'), text: accuracy,
      more: t('st_accuracy_more', { k: k, k1: fmt.int(model.k - 1), baseline: fmt.num((model.k - 1) / 2, 1) }) });
  } else {
    out.push({ id: 'accuracy', title: t('st_accuracy_title'), text: t('st_not_published'), more: t('st_not_published_more') });
  }
  const overall = model.stats.overall;
  if (overall.coverage_pct !== null) {
    out.push({ id: 'coverage', title: t('st_coverage_title'),
      text: t('st_coverage', { pct: fmt.pct(overall.coverage_pct), L: L }),
      more: t('st_coverage_more', { other: fmt.orDash(overall.not_in_official_pct, fmt.pct), k: k }) });
  } else {
    out.push({ id: 'coverage', title: t('st_coverage_title'), text: t('st_not_published'), more: t('st_not_published_more') });
  }
  return out;
}

const homeView = {
  build: function (main) {
    const meta = model.meta;
    const sources = new Set(model.columns.map(function (c) { return c.source; }));
    if (metaText('description')) main.append(h('p', { class: 'lede', 'data-testid': 'dataset-description', text: metaText('description') }));

    const dl = h('dl', { class: 'facts' });
    function fact(label, value, extra, testid) {
      dl.append(h('dt', null, label), h('dd', { 'data-fact': testid || null }, value, extra || null));
    }
    fact(t('dc_version'), datasetVersion(), null, 'version');
    fact(t('dc_created'), fmt.date(meta.created), null, 'created');
    fact(t('dc_synthetic_records'), fmt.int(model.n), null, 'synthetic-records');
    fact(t('dc_official_records'), fmt.int(model.recordCount),
      h('span', { class: 'note', text: ' ' + (model.kAnonymity ? t('dc_official_records_note', { k: fmt.int(model.k) }) : t('dc_official_records_note_dp')) }),
      'official-records');
    fact(t('dc_columns'), fmt.int(sources.size), null, 'columns');
    fact(h('span', null, t('term_k'), ' ', helpButton('k')), fmt.int(model.k),
      h('p', { class: 'note', text: t('k_sentence', { k: fmt.int(model.k) }) }), 'k');
    fact(h('span', null, t('term_L'), ' ', helpButton('L')), fmt.int(model.L),
      h('p', { class: 'note', text: t('L_sentence', { L: fmt.int(model.L), filters: fmt.int(Math.max(0, model.L - 1)) }) }), 'L');
    fact(t('dc_privacy_mode'), model.kAnonymity ? t('mode_k_anonymity', { k: fmt.int(model.k) })
      : t('mode_dp', { epsilon: fmt.num(meta.dp.epsilon, 3), delta: meta.dp.delta === null ? '—' : String(meta.dp.delta) }), null, 'privacy-mode');
    fact(t('dc_synthesis'), I18N.has(state.lang, 'synthesis_' + meta.synthesis_mode) ? t('synthesis_' + meta.synthesis_mode) : meta.synthesis_mode, null, 'synthesis');
    fact(t('dc_pipeline'), meta.pipeline_version, null, 'pipeline');
    fact(t('dc_run'), meta.run_id, null, 'run');
    fact(t('dc_codebook'), h('a', { href: hashFor({ view: 'downloads' }) + '&section=codebook', 'data-testid': 'codebook-link', text: t('dc_codebook_link') }));
    main.append(card('dataset-card', [h('h3', { text: t('dataset_card') }), dl]));

    main.append(h('h3', { class: 'section-title', text: t('artifacts_title') }));
    main.append(h('div', { class: 'card-grid' }, ['syn', 'agg', 'explorer'].map(function (id) {
      return card('artifact', [h('h4', { text: t('artifact_' + id) }), h('p', { text: t('artifact_' + id + '_text', { k: fmt.int(model.k), L: fmt.int(model.L) }) }),
        h('p', { class: 'use-for', text: t('artifact_' + id + '_use') })]);
    })));

    main.append(h('h3', { class: 'section-title', text: t('statements_title') }));
    main.append(h('p', { class: 'note', text: t('statements_source') }));
    main.append(h('div', { class: 'card-grid' }, statements().map(function (st) {
      return card('statement', [
        h('h4', { text: st.title }),
        h('p', { class: 'statement-text', 'data-statement': st.id, text: st.text }),
        h('details', null, h('summary', { 'data-testid': 'statement-more-' + st.id, text: t('what_this_means') }),
          h('p', { text: st.more })),
      ]);
    })));

    main.append(card('caveats-card', [h('h3', { text: t('caveats_title') }), caveatItems()]));
    main.append(h('p', { class: 'cta' },
      h('a', { class: 'btn', href: hashFor({ view: 'explore' }), 'data-testid': 'cta-explore', text: t('cta_explore') }), ' ',
      h('a', { class: 'btn btn-secondary', href: hashFor({ view: 'fidelity' }), 'data-testid': 'cta-fidelity', text: t('cta_fidelity') })));
  },
  update: function () {},
};

// -------------------------------------------------------------------------------------------------------
// 4b. Explore: cross-filter charts (M4-M11, M22, N1-N3)
// -------------------------------------------------------------------------------------------------------

const ex = {};  // element references of the explore view

/** Display of a synthetic count, with the small-number guard (N3). */
function synDisplay(x) {
  const limit = model.meta.small_count_threshold;
  if (!state.exact && x < limit) return { text: fmt.lessThan(limit), small: true, spoken: t('fewer_than', { n: fmt.int(limit) }) };
  return { text: fmt.int(x), small: false, spoken: fmt.int(x) };
}

/** Display of an official state (M7). */
function offDisplay(off) {
  switch (off.state) {
    case 'value': return { text: fmt.int(off.count), spoken: model.kAnonymity
      ? t('off_value_spoken', { count: fmt.int(off.count), range: fmt.range(off.low, off.high) }) : fmt.int(off.count) };
    case 'zero': return { text: fmt.int(0), spoken: t('state_zero') };
    case 'lt_k': return { text: STATE_GLYPH.lt_k + ' ' + fmt.lessThan(model.k), spoken: t('state_lt_k', { k: fmt.int(model.k) }) };
    default: return { text: STATE_GLYPH.na + ' ' + t('na_short'), spoken: t('state_na', { L: fmt.int(model.L) }) };
  }
}

/** Placeholders of every sentence about the agreement rule (core.js agrees): k, L and the two tolerances. */
function agreeParams() {
  const rule = model.agreementRule;
  return { k: fmt.int(model.k), L: fmt.int(model.L), rel: fmt.pct(100 * rule.relative), abs: fmt.int(rule.absolute) };
}

function agreeText(agree, off) {
  if (agree !== 'grey') return t('agree_' + agree, agreeParams());
  return off.state === 'lt_k' ? t('agree_grey_lt_k', { k: fmt.int(model.k) }) : t('agree_grey_na', { L: fmt.int(model.L) });
}

function computeRows(v) {
  return v.attrs.map(function (a, order) {
    const row = query.bar(a);
    row.order = order;
    row.label = rowLabel(v, a);
    row.code = attrCode(a);
    row.selected = query.isSelected(a);
    row.muted = !row.selected && query.hasSelectionIn(model.attrs[a].col);
    return row;
  });
}

const STATE_RANK = { value: 0, zero: 0, lt_k: 1, na: 2 };
/** True when a visual's values have a natural order (age bands, years) that charts keep by default. */
function isOrdinal(v) { return v.type !== 'group' && model.columns[v.column].ordinal === true; }

function sortRows(v, rows) {
  const collator = new Intl.Collator(state.lang);
  const sort = state.sort === 'auto' ? (isOrdinal(v) ? 'code' : 'agg') : state.sort;
  rows.sort(function (x, y) {
    let d = 0;
    if (sort === 'agg') {
      d = STATE_RANK[x.off.state] - STATE_RANK[y.off.state] || (y.off.count || 0) - (x.off.count || 0) || y.syn - x.syn;
    } else if (sort === 'syn') {
      d = y.syn - x.syn;
    } else if (sort === 'alpha') {
      d = collator.compare(x.label, y.label);
    }
    return d || x.order - y.order;
  });
  return rows;
}

function toggleAttr(a) {
  const attr = model.attrs[a];
  let sel;
  let message;
  if (query.isSelected(a)) {
    sel = state.sel.filter(function (s) { return s !== a; });
    message = 'filter_removed';
  } else {
    sel = state.sel.filter(function (s) { return model.attrs[s].col !== attr.col; }).concat([a]);
    message = 'filter_added';
  }
  commit({ sel: sel });
  announce(t(message, { filter: attrFullLabel(a), n: synDisplay(query.matchCount).spoken }));
}

function clearFilters(focusTarget) {
  if (!state.sel.length) return;
  commit({ sel: [] });
  announce(t('filters_cleared', { n: fmt.int(model.n) }));
  if (focusTarget) focusTarget.focus();
}

const exploreView = {
  build: function (main) {
    const k = fmt.int(model.k);
    main.append(h('p', { class: 'lede', text: t('explore_intro', { k: k, L: fmt.int(model.L) }) }));
  main.append(h('p', { class: 'note', 'data-testid': 'blank-cells', text: t('blank_cells') }));
    if (ui.ignoredFilters) main.append(h('p', { class: 'notice', role: 'note', text: t('ignored_filters', { n: fmt.int(ui.ignoredFilters) }) }));
    if (!ui.caveatsAck) {
      const notice = card('caveats-notice', [
        h('h3', { text: t('before_explore') }),
        caveatItems(),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'caveats-ack', text: t('caveats_ack'),
          onclick: function () {
            ui.caveatsAck = true;
            try { window.sessionStorage.setItem(ACK_KEY, '1'); } catch (e) { /* storage may be disabled */ }
            notice.remove();
            ex.filtersHeading.focus();
            renderVisibleCharts();
          } }),
      ]);
      main.append(notice);
    }

    // Toolbar: page, columns, sort, small-count toggle, export.
    ex.pageSelect = h('select', { id: uid('page'), 'data-testid': 'page-select', onchange: function () {
      const value = ex.pageSelect.value;
      if (value === '') commit({ page: null, cols: null });
      else if (value === PAGE_ALL) commit({ page: null, cols: model.visuals.map(function (v) { return v.id; }) });
      else commit({ page: value, cols: null });
    } });
    ex.pageSelect.append(h('option', { value: '' }));  // "default view" or "custom selection", set in update()
    model.pages.forEach(function (pg) { ex.pageSelect.append(h('option', { value: pg.name, text: pick(pg.labels, pg.name) })); });
    ex.pageSelect.append(h('option', { value: PAGE_ALL, text: t('page_all') }));
    ex.sortSelect = h('select', { id: uid('sort'), 'data-testid': 'sort-select', onchange: function () { commit({ sort: ex.sortSelect.value }); } },
      SORTS.map(function (s) { return h('option', { value: s, text: t('sort_' + s) }); }));
    ex.exactBox = h('input', { type: 'checkbox', id: uid('exact'), 'data-testid': 'toggle-exact',
      onchange: function () { commit({ exact: ex.exactBox.checked }); } });
    ex.chooserButton = h('button', { type: 'button', class: 'btn btn-secondary', 'aria-expanded': 'false',
      'data-testid': 'columns-toggle', onclick: function () { ui.chooserOpen = !ui.chooserOpen; updateChooser(); if (ui.chooserOpen) ex.chooserSearch.focus(); } });
    ex.chooser = buildChooser();
    ex.chooserButton.setAttribute('aria-controls', ex.chooser.id);
    main.append(h('div', { class: 'toolbar', role: 'group', 'aria-label': t('toolbar_label') },
      h('div', { class: 'tool' }, h('label', { for: ex.pageSelect.id, text: t('page_label') }), ex.pageSelect),
      h('div', { class: 'tool' }, ex.chooserButton),
      h('div', { class: 'tool' }, h('label', { for: ex.sortSelect.id, text: t('sort_label') }), ex.sortSelect),
      h('div', { class: 'tool tool-check' }, ex.exactBox, h('label', { for: ex.exactBox.id, text: t('exact_label') }),
        helpButton('synthetic')),
      h('div', { class: 'tool' }, h('button', { type: 'button', class: 'btn btn-secondary', 'data-testid': 'export-csv',
        text: t('export_csv'), onclick: exportCsv }))));
    main.append(ex.chooser);

    // Filters: chips, clear all, budget.
    ex.filtersHeading = h('h3', { tabindex: '-1', 'data-testid': 'filters-heading', text: t('filters_title') });
    ex.chips = h('ul', { class: 'chips', 'aria-label': t('filters_title') });
    ex.noFilters = h('p', { class: 'note', text: t('no_filters') });
    ex.clearAll = h('button', { type: 'button', class: 'btn btn-secondary', 'data-testid': 'clear-all', text: t('clear_all'),
      onclick: function () { clearFilters(ex.filtersHeading); } });
    ex.budget = h('p', { class: 'budget', 'data-testid': 'budget' });
    main.append(card('filters', [ex.filtersHeading, ex.noFilters, h('div', { class: 'chips-row' }, ex.chips, ex.clearAll),
      h('div', { class: 'budget-row' }, ex.budget, helpButton('L'))]));

    // Selection summary and citation (M11, N1).
    ex.summary = h('div', { class: 'summary-body' });
    ex.citation = h('p', { class: 'citation-text', 'data-testid': 'citation-text' });
    main.append(card('summary-card', [
      h('h3', { text: t('summary_title') }), ex.summary,
      h('div', { class: 'citation' },
        h('h4', null, t('cite_title'), ' ', helpButton('aggregate')),
        h('blockquote', null, ex.citation),
        h('button', { type: 'button', class: 'btn btn-secondary', 'data-testid': 'copy-citation', text: t('copy_sentence'),
          onclick: function () { copyText(ex.citation.textContent, t('sentence_copied')); } }),
        h('p', { class: 'note', text: t('cite_hint') })),
    ]));

    main.append(buildLegend());
    ex.grid = h('div', { class: 'charts', 'data-testid': 'charts' });
    ex.emptyGrid = h('p', { class: 'empty-state', text: t('no_columns_selected'), hidden: true });
    main.append(ex.emptyGrid, ex.grid);

    if ('IntersectionObserver' in window) {
      ui.io = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          entry.target._visible = entry.isIntersecting;
          if (entry.isIntersecting && entry.target._dirty) renderChart(entry.target);
        });
      }, { rootMargin: RENDER_MARGIN + 'px 0px' });
    }
    exploreView.update(null);
  },

  update: function () {
    const ids = visibleVisualIds();
    ex.pageSelect.options[0].textContent = state.cols ? t('page_custom') : t('page_default');
    ex.pageSelect.value = state.page || '';
    ex.sortSelect.value = state.sort;
    ex.exactBox.checked = state.exact;
    ex.chooserButton.textContent = t('columns_button', { shown: fmt.int(ids.length), total: fmt.int(model.visuals.length) });
    updateChooser();
    renderFilters();
    renderSummary();
    syncCharts(ids);
    renderVisibleCharts();
  },
};

function buildChooser() {
  ex.chooserSearch = h('input', { type: 'search', id: uid('colsearch'), 'data-testid': 'columns-search', autocomplete: 'off',
    oninput: function () { ui.chooserFilter = ex.chooserSearch.value; renderChooserList(); } });
  ex.chooserList = h('div', { class: 'chooser-list' });
  function setCols(list) { commit({ cols: list, page: null }); }
  return h('div', { class: 'chooser card', id: uid('chooser'), hidden: true, role: 'region', 'aria-label': t('columns_title') },
    h('div', { class: 'chooser-head' },
      h('label', { for: ex.chooserSearch.id, text: t('columns_search') }), ex.chooserSearch,
      h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'columns-all', text: t('columns_all'),
        onclick: function () { setCols(model.visuals.map(function (v) { return v.id; })); } }),
      h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'columns-none', text: t('columns_none'),
        onclick: function () { setCols([]); } }),
      h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'columns-default', text: t('columns_default'),
        onclick: function () { commit({ cols: null, page: null }); } }),
      h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'columns-close', text: t('close'),
        onclick: function () { ui.chooserOpen = false; updateChooser(); ex.chooserButton.focus(); } })),
    ex.chooserList);
}

function updateChooser() {
  ex.chooser.hidden = !ui.chooserOpen;
  ex.chooserButton.setAttribute('aria-expanded', String(ui.chooserOpen));
  if (ui.chooserOpen) { ex.chooserSearch.value = ui.chooserFilter; renderChooserList(); }
}

function renderChooserList() {
  const shown = new Set(visibleVisualIds());
  const filter = ui.chooserFilter.trim().toLocaleLowerCase(state.lang);
  const sig = focusSignature(document.activeElement);
  ex.chooserList.textContent = '';
  [['column', t('columns_single')], ['group', t('columns_groups')]].forEach(function (section) {
    const items = model.visuals.filter(function (v) {
      return (v.type === 'group' ? 'group' : 'column') === section[0] && (!filter || visualLabel(v).toLocaleLowerCase(state.lang).indexOf(filter) >= 0
        || v.id.toLocaleLowerCase().indexOf(filter) >= 0);
    });
    if (!items.length) return;
    const fieldset = h('fieldset', null, h('legend', { text: section[1] }));
    items.forEach(function (v) {
      const id = uid('col');
      const box = h('input', { type: 'checkbox', id: id, 'data-testid': 'col-toggle', 'data-visual': v.id, 'data-focus-key': v.id,
        onchange: function () {
          const current = visibleVisualIds().slice();
          const next = box.checked ? current.concat([v.id]) : current.filter(function (x) { return x !== v.id; });
          commit({ cols: uniq(next), page: null });
        } });
      box.checked = shown.has(v.id);
      fieldset.append(h('div', { class: 'check' }, box, h('label', { for: id, text: visualLabel(v) })));
    });
    ex.chooserList.append(fieldset);
  });
  if (!ex.chooserList.childNodes.length) ex.chooserList.append(h('p', { class: 'note', text: t('columns_no_match') }));
  restoreFocus(sig);
}

function renderFilters() {
  ex.chips.textContent = '';
  state.sel.forEach(function (a) {
    const label = attrFullLabel(a);
    ex.chips.append(h('li', { class: 'chip' }, h('span', { text: label }),
      h('button', { type: 'button', class: 'chip-x', 'aria-label': t('remove_filter', { filter: label }),
        'data-testid': 'chip-remove', 'data-attr': model.attrs[a].id, 'data-focus-key': model.attrs[a].id, text: '✕',
        onclick: function () { removeChip(a); } })));
  });
  ex.noFilters.hidden = state.sel.length > 0;
  ex.chips.hidden = state.sel.length === 0;
  ex.clearAll.hidden = state.sel.length === 0;

  // Budget (M8): L-1 filters keep every bar checkable against official counts.
  const max = model.L - 1;
  const remaining = max - state.sel.length;
  let text;
  if (remaining > 0) text = t('budget_ok', { n: fmt.int(remaining), max: fmt.int(max) });
  else if (remaining === 0) text = t('budget_full', { max: fmt.int(max), L: fmt.int(model.L) });
  else text = t('budget_over', { L: fmt.int(model.L), over: fmt.int(-remaining) });
  ex.budget.textContent = text;
  ex.budget.dataset.remaining = String(remaining);
  ex.budget.className = 'budget ' + (remaining < 0 ? 'budget-warn' : remaining === 0 ? 'budget-full' : 'budget-ok');
}

function removeChip(a) {
  const index = state.sel.indexOf(a);
  commit({ sel: state.sel.filter(function (s) { return s !== a; }) });
  announce(t('filter_removed', { filter: attrFullLabel(a), n: synDisplay(query.matchCount).spoken }));
  // Keep focus in the chip list: the chip that took this one's place, else the previous one, else the heading.
  const buttons = ex.chips.querySelectorAll('button');
  const next = buttons[Math.min(index, buttons.length - 1)];
  (next || ex.filtersHeading).focus();
}

function renderSummary() {
  const s = query.summary();
  const syn = synDisplay(s.syn);
  const off = offDisplay(s.off);
  ex.summary.textContent = '';
  let diff = '—';
  if ((s.off.state === 'value' || s.off.state === 'zero') && !syn.small) {
    const d = s.syn - s.off.count;
    diff = fmt.signed(d, 0) + (s.off.count > 0 ? ' (' + fmt.pct(100 * d / s.off.count, true) + ')' : '');
  }
  const offText = s.off.state === 'value' && model.kAnonymity ? off.text + ' ' + t('range_paren', { range: fmt.range(s.off.low, s.off.high) }) : off.text;
  ex.summary.append(h('dl', { class: 'summary-facts' },
    h('dt', { text: t('summary_syn') }),
    h('dd', { 'data-testid': 'summary-syn', 'data-value': String(s.syn), class: syn.small ? 'is-small' : null, text: syn.text }),
    h('dt', { text: t('summary_off') }),
    h('dd', { 'data-testid': 'summary-off', 'data-state': s.off.state, 'data-value': s.off.count === null ? '' : String(s.off.count), text: offText }),
    h('dt', { text: t('summary_diff') }),
    h('dd', { 'data-testid': 'summary-diff', text: diff })));
  ex.summary.append(h('p', { class: 'note', 'data-testid': 'synthetic-explained', text: t(model.kAnonymity ? 'syn_explain' : 'syn_explain_dp',
    { syn: fmt.int(model.n), official: fmt.int(model.recordCount), noun: recordNoun(), k: fmt.int(model.k) }) }));
  ex.summary.append(h('p', { class: 'verdict agree-' + s.agree, 'data-testid': 'summary-verdict', 'data-agree': s.agree },
    h('span', { class: 'glyph', 'aria-hidden': 'true', text: GLYPH[s.agree] + ' ' }),
    t('verdict_' + (s.agree === 'grey' ? 'grey_' + s.off.state : s.agree), agreeParams())));
  ex.citation.textContent = citationSentence(s);
}

/** "Which number do I cite?" (N1): a copyable sentence with dataset, version, date, filters and the source. */
function citationSentence(s) {
  const params = {
    dataset: metaText('title'), version: datasetVersion(), date: fmt.date(model.meta.created), noun: recordNoun(),
    k: fmt.int(model.k), L: fmt.int(model.L),
    filters: state.sel.map(attrFullLabel).join(t('list_sep')),
  };
  let sentence;
  const none = state.sel.length === 0;
  if (s.off.state === 'value' || s.off.state === 'zero') {
    Object.assign(params, { low: fmt.int(s.off.low), high: fmt.int(s.off.high), count: fmt.int(s.off.count) });
    if (!model.kAnonymity) sentence = t(none ? 'cite_total_dp' : 'cite_value_dp', params);
    else sentence = t(none ? 'cite_total' : 'cite_value', params);
  } else {
    sentence = t(s.off.state === 'lt_k' ? 'cite_lt_k' : 'cite_na', params);
    const syn = synDisplay(s.syn);
    sentence += ' ' + (syn.small ? t('cite_estimate_small', { n: fmt.int(model.meta.small_count_threshold) })
      : t('cite_estimate', { syn: fmt.int(s.syn) }));
  }
  if (metaText('citation')) sentence += ' ' + t('cite_source', { citation: metaText('citation') });
  return sentence;
}

function buildLegend() {
  const k = fmt.int(model.k);
  const items = [
    h('li', null, h('span', { class: 'swatch swatch-syn', 'aria-hidden': 'true' }), t('legend_syn')),
    h('li', null, h('span', { class: 'swatch swatch-off', 'aria-hidden': 'true' }),
      model.kAnonymity ? t('legend_off', { k: k }) : t('legend_off_dp')),
  ];
  if (model.kAnonymity && model.k > 1) {
    items.push(h('li', null, h('span', { class: 'swatch swatch-band', 'aria-hidden': 'true' }), t('legend_band', { k1: fmt.int(model.k - 1) })));
  }
  items.push(
    h('li', null, h('span', { class: 'glyph-box', 'aria-hidden': 'true', text: STATE_GLYPH.lt_k }), t('legend_lt_k', { k: k })),
    h('li', null, h('span', { class: 'glyph-box', 'aria-hidden': 'true', text: STATE_GLYPH.na }), t('legend_na', { L: fmt.int(model.L) })),
    h('li', null, h('span', { class: 'glyph-box is-small', 'aria-hidden': 'true', text: fmt.lessThan(model.meta.small_count_threshold) }),
      t('legend_small', { n: fmt.int(model.meta.small_count_threshold) })));
  const lights = h('ul', { class: 'legend legend-lights', 'aria-label': t('legend_agreement') },
    ['green', 'amber', 'red', 'grey'].map(function (a) {
      return h('li', null, h('span', { class: 'agree agree-' + a, 'aria-hidden': 'true', text: GLYPH[a] }), t('legend_agree_' + a, agreeParams()));
    }));
  return card('legend-card', [h('h3', { class: 'legend-title', text: t('legend_title') }),
    h('ul', { class: 'legend' }, items), lights]);
}

// ---- chart grid with lazy rendering -------------------------------------------------------------------

function syncCharts(ids) {
  const old = ui.charts;
  ui.charts = new Map();
  ids.forEach(function (id, i) {
    const chart = old.get(id) || createChart(model.visualById.get(id));
    old.delete(id);
    ui.charts.set(id, chart);
    // Move a chart only when it is out of place: moving nodes invalidates the layout of the whole grid.
    const at = ex.grid.children[i];
    if (at !== chart) ex.grid.insertBefore(chart, at || null);
    chart._dirty = true;
  });
  old.forEach(function (chart) { if (ui.io) ui.io.unobserve(chart); chart.remove(); });
  ex.emptyGrid.hidden = ids.length > 0;
}

function createChart(v) {
  const titleId = uid('chart-title');
  const chart = h('section', { class: 'chart card', 'aria-labelledby': titleId, 'data-testid': 'chart', 'data-visual': v.id });
  const col = v.type === 'group' ? null : model.columns[v.column];
  chart._visual = v;
  chart._title = h('h3', { id: titleId, class: 'chart-title', text: visualLabel(v) });
  chart._summary = h('p', { class: 'chart-summary', 'data-testid': 'chart-summary' });
  chart._toggle = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'chart-table-toggle',
    'data-visual': v.id, 'data-focus-key': v.id, 'aria-pressed': 'false', onclick: function () {
      const on = state.tables.indexOf(v.id) < 0;
      commit({ tables: on ? state.tables.concat([v.id]) : state.tables.filter(function (x) { return x !== v.id; }) });
    } });
  chart._body = h('div', { class: 'chart-body' });
  chart._more = h('div', { class: 'chart-more' });
  chart._body.style.height = Math.min(MAX_BODY_HEIGHT, Math.min(v.attrs.length, TOP_N) * ROW_HEIGHT) + 'px';  // placeholder
  const description = col ? pick(col.descriptions, '') : '';
  const desc = description ? h('p', { class: 'chart-desc', text: description }) : null;
  // High-cardinality charts (e.g. countries) get an in-chart value search (S9).
  let search = null;
  if (v.attrs.length > SEARCH_MIN_VALUES && v.type !== 'map') {
    search = h('input', { type: 'search', class: 'chart-search', 'data-testid': 'chart-search', 'data-visual': v.id,
      'data-focus-key': v.id, autocomplete: 'off', placeholder: t('chart_search'),
      'aria-label': t('chart_search_label', { chart: visualLabel(v) }),
      oninput: function () { ui.chartFilter.set(v.id, search.value); renderChart(chart); } });
    search.value = ui.chartFilter.get(v.id) || '';
  }
  append(chart, [h('header', { class: 'chart-head' }, h('div', null, chart._title, desc), chart._toggle),
    search, chart._summary, chart._body, chart._more]);  // (the DOM's own append would print "null")
  if (ui.io) ui.io.observe(chart);
  return chart;
}

/**
 * Re-render the charts on (or near) the screen; the others stay dirty until the IntersectionObserver reports
 * them. Visibility comes from the observer, so a click never forces a layout just to find out what is on
 * screen; only charts the observer has not reported on yet (just created) are measured, all reads first.
 */
function renderVisibleCharts() {
  const visible = [];
  const unknown = [];
  ui.charts.forEach(function (chart) {
    if (!ui.io || chart._visible === true) visible.push(chart);
    else if (chart._visible === undefined) unknown.push(chart);
  });
  if (unknown.length) {
    const height = window.innerHeight || document.documentElement.clientHeight;
    const rects = unknown.map(function (chart) { return chart.getBoundingClientRect(); });
    unknown.forEach(function (chart, i) {
      if (rects[i].bottom >= -RENDER_MARGIN && rects[i].top <= height + RENDER_MARGIN) visible.push(chart);
    });
  }
  visible.forEach(renderChart);
}

function renderAllCharts() { ui.charts.forEach(function (chart) { if (chart._dirty) renderChart(chart); }); }

/** Rows of a visual as shown: computed, sorted, then narrowed by the chart's value search (if any). */
function shownRows(v) {
  const rows = sortRows(v, computeRows(v));
  const filter = (ui.chartFilter.get(v.id) || '').trim().toLocaleLowerCase(state.lang);
  if (!filter) return { all: rows, shown: rows };
  return { all: rows, shown: rows.filter(function (r) {
    return r.selected || r.label.toLocaleLowerCase(state.lang).indexOf(filter) >= 0; }) };
}

function renderChart(chart) {
  const v = chart._visual;
  const computed = shownRows(v);
  let rows = computed.shown;
  // Long lists show the top rows first (the selected value always stays); "Show all" expands them (S9).
  if (v.type !== 'map' && rows.length > TOP_N + 5 && !ui.expanded.has(v.id)) {
    rows = rows.slice(0, TOP_N).concat(rows.slice(TOP_N).filter(function (r) { return r.selected; }));
  }
  chart._rows = rows;
  const asTable = state.tables.indexOf(v.id) >= 0;
  chart._toggle.textContent = asTable ? t('show_as_chart') : t('show_as_table');
  chart._toggle.setAttribute('aria-pressed', String(asTable));

  // Per-chart agreement summary (N2).
  const counts = { green: 0, amber: 0, red: 0, grey: 0 };
  computed.all.forEach(function (r) { counts[r.agree] += 1; });
  chart._summary.textContent = '';
  chart._summary.append(h('span', { class: 'agree-text agree-green' }, GLYPH.green + ' ' + t('n2_within', { n: fmt.int(counts.green), total: fmt.int(computed.all.length) })));
  ['amber', 'red', 'grey'].forEach(function (a) {
    if (counts[a]) chart._summary.append(' · ', h('span', { class: 'agree-text agree-' + a }, GLYPH[a] + ' ' + t('n2_' + a, Object.assign({ n: fmt.int(counts[a]) }, agreeParams()))));
  });
  Object.keys(counts).forEach(function (a) { chart._summary.dataset[a] = String(counts[a]); });
  if (rows.length < computed.all.length) {
    chart._summary.append(h('span', { class: 'filter-note' }, ' · ' + t('showing_n_of', { n: fmt.int(rows.length), total: fmt.int(computed.all.length) })));
  }

  const hadFocus = chart.contains(document.activeElement) && ['bar', 'map-country'].indexOf(document.activeElement.dataset.testid) >= 0;
  const focusAttr = hadFocus ? Number(document.activeElement.dataset.attrIndex) : null;
  chart._body.textContent = '';
  chart._body.style.height = '';
  if (!rows.length) chart._body.append(h('p', { class: 'empty-state', text: t('chart_no_match') }));
  else chart._body.append(asTable ? chartTable(v, rows) : v.type === 'map' ? chartMap(v, rows) : chartBars(v, rows, chart));
  chart._more.textContent = '';
  if (v.type !== 'map' && computed.shown.length > TOP_N + 5) {
    const expanded = ui.expanded.has(v.id);
    chart._more.append(h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'chart-show-all',
      'data-visual': v.id, 'data-focus-key': v.id, 'aria-expanded': String(expanded),
      text: expanded ? t('show_top_values', { n: fmt.int(TOP_N) }) : t('show_all_values', { n: fmt.int(computed.shown.length) }),
      onclick: function () {
        if (expanded) ui.expanded.delete(v.id); else ui.expanded.add(v.id);
        renderChart(chart);
        chart._more.querySelector('button').focus();
      } }));
  }
  if (focusAttr !== null) {
    const target = chart._body.querySelector('[data-attr-index="' + focusAttr + '"]');
    if (target) target.focus();
  }
  chart._dirty = false;
  chart.dataset.renderedVersion = String(ui.version);
}

function chartBars(v, rows, chart) {
  let max = 1;
  rows.forEach(function (r) { max = Math.max(max, r.syn, r.off.high || 0); });
  const pct = function (x) { return (100 * x / max) + '%'; };
  if (!rows.some(function (r) { return r.attr === ui.activeAttr.get(v.id); })) ui.activeAttr.set(v.id, rows[0].attr);
  const tabStop = ui.activeAttr.get(v.id);
  const anySelected = rows.some(function (r) { return r.selected; });
  const list = h('div', { role: 'listbox', class: 'bars', 'aria-labelledby': chart._title.id,
    'aria-multiselectable': v.type === 'group' ? 'true' : 'false', 'data-testid': 'chart-bars' });
  rows.forEach(function (r) {
    const attr = model.attrs[r.attr];
    const syn = synDisplay(r.syn);
    const off = offDisplay(r.off);
    const spoken = t('bar_aria', { label: r.label, syn: syn.spoken, off: off.spoken, agree: agreeText(r.agree, r.off) });
    const spokenDetails = t('bar_details', { syn: syn.spoken, off: off.spoken, agree: agreeText(r.agree, r.off) });
    const track = h('span', { class: 'bar-track', 'aria-hidden': 'true' });
    const synBar = h('span', { class: 'bar bar-syn' + (syn.small ? ' is-small' : '') });
    synBar.style.width = pct(r.syn);
    track.append(synBar);
    if (r.off.state === 'value') {
      const offBar = h('span', { class: 'bar bar-off' });
      offBar.style.width = pct(r.off.count);
      track.append(offBar);
      if (r.off.high > r.off.low) {
        const band = h('span', { class: 'bar bar-band' });
        band.style.insetInlineStart = pct(r.off.low);
        band.style.width = pct(r.off.high - r.off.low);
        track.append(band);
      }
    }
    const row = h('div', {
      role: 'option', class: 'bar-row' + (r.selected ? ' is-selected' : '') + (r.muted || (anySelected && !r.selected && v.type === 'column') ? ' is-muted' : ''),
      'aria-selected': String(r.selected), tabindex: r.attr === tabStop ? '0' : '-1', title: spoken,
      'data-testid': 'bar', 'data-visual': v.id, 'data-col': model.columns[attr.col].id, 'data-val': attr.value,
      'data-attr': attr.id, 'data-attr-index': String(r.attr), 'data-focus-key': v.id + '|' + r.attr,
      'data-syn': String(r.syn), 'data-agg': r.off.count === null ? '' : String(r.off.count),
      'data-state': r.off.state, 'data-agree': r.agree,
    },
    h('span', { class: 'bar-label', title: r.code }, r.selected ? h('span', { class: 'sel-mark', 'aria-hidden': 'true', text: '✓ ' }) : null, r.label),
    // The accessible name comes from the content: the visible label, then this spoken summary. The numbers
    // drawn next to the bars are hidden from assistive technology because the summary already says them.
    h('span', { class: 'sr-only', text: '. ' + spokenDetails }),
    track,
    h('span', { class: 'bar-nums', 'aria-hidden': 'true' },
      h('span', { class: 'num-syn' + (syn.small ? ' is-small' : ''), 'data-testid': 'bar-syn-text', text: syn.text }),
      h('span', { class: 'num-off state-' + r.off.state, 'data-testid': 'bar-off-text', text: off.text })),
    h('span', { class: 'agree agree-' + r.agree, 'aria-hidden': 'true', text: GLYPH[r.agree] }));
    list.append(row);
  });
  list.addEventListener('click', function (ev) {
    const row = ev.target.closest('[role="option"]');
    if (!row) return;
    ui.activeAttr.set(v.id, Number(row.dataset.attrIndex));
    toggleAttr(Number(row.dataset.attrIndex));
  });
  list.addEventListener('keydown', function (ev) { onBarKey(ev, v, list); });
  list.addEventListener('focusin', function (ev) {
    const row = ev.target.closest('[role="option"]');
    if (row) ui.activeAttr.set(v.id, Number(row.dataset.attrIndex));
  });
  return list;
}

/** Keyboard model of a chart (M19): arrows/Home/End move, Enter/Space toggles, Escape clears all filters. */
function onBarKey(ev, v, list) {
  const rows = Array.prototype.slice.call(list.querySelectorAll('[role="option"]'));
  const current = ev.target.closest('[role="option"]');
  const index = rows.indexOf(current);
  let next = null;
  switch (ev.key) {
    case 'ArrowDown': next = rows[Math.min(rows.length - 1, index + 1)]; break;
    case 'ArrowUp': next = rows[Math.max(0, index - 1)]; break;
    case 'Home': next = rows[0]; break;
    case 'End': next = rows[rows.length - 1]; break;
    case 'Enter':
    case ' ':
      ev.preventDefault();
      toggleAttr(Number(current.dataset.attrIndex));
      return;
    case 'Escape':
      if (state.sel.length) { ev.preventDefault(); ev.stopPropagation(); clearFilters(null); }
      return;
    default: return;
  }
  ev.preventDefault();
  if (next && next !== current) {
    current.setAttribute('tabindex', '-1');
    next.setAttribute('tabindex', '0');
    ui.activeAttr.set(v.id, Number(next.dataset.attrIndex));
    next.focus();
  }
}

/** The map of a country column (map.js) with its colour key; countries without an outline are named below it. */
function chartMap(v, rows) {
  const counts = rows.filter(function (r) { return r.off.state === 'value'; }).map(function (r) { return r.off.count; });
  const bins = mapBins(counts);
  const drawn = renderMap({
    rows: rows,
    alpha2: function (r) { return model.attrs[r.attr].value; },
    describe: function (r) {
      return t('map_country', { name: r.label, code: fmt.code(r.code), syn: synDisplay(r.syn).spoken, off: offDisplay(r.off).spoken,
        agree: agreeText(r.agree, r.off) });
    },
    bins: bins,
    tabStop: ui.activeAttr.has(v.id) ? ui.activeAttr.get(v.id) : null,
    label: t('map_label', { chart: columnLabel(v.column) }),
    onToggle: function (a) { ui.activeAttr.set(v.id, a); toggleAttr(a); },
    onFocus: function (a) { ui.activeAttr.set(v.id, a); },
  });
  const key = h('ul', { class: 'legend map-key', 'aria-label': t('map_key') });
  bins.forEach(function (upper, i) {
    const low = i === 0 ? Math.min.apply(null, counts) : bins[i - 1] + 1;
    key.append(h('li', null, h('span', { class: 'map-swatch ' + binClass({ state: 'value', count: upper }, bins), 'aria-hidden': 'true' }), fmt.range(low, upper)));
  });
  key.append(h('li', null, h('span', { class: 'map-swatch lt-k', 'aria-hidden': 'true' }), t('legend_lt_k', { k: fmt.int(model.k) })));
  const notDrawn = drawn.notDrawn.length ? h('p', { class: 'note', 'data-testid': 'map-not-drawn',
    text: t('map_not_drawn', { list: drawn.notDrawn.map(function (r) { return r.label; }).join(t('list_sep')) }) }) : null;
  return h('div', { class: 'map-wrap' }, drawn.element, key, notDrawn);
}

function chartTable(v, rows) {
  const table = h('table', { class: 'data-table' },
    h('caption', { text: t('table_caption', { chart: visualLabel(v) }) }),
    h('thead', null, h('tr', null, ['th_value', 'th_syn', 'th_off', 'th_range', 'th_agree'].map(function (key) {
      return h('th', { scope: 'col', text: t(key, { k: fmt.int(model.k) }) });
    }))),
    h('tbody', null, rows.map(function (r) {
      const syn = synDisplay(r.syn);
      const off = offDisplay(r.off);
      const range = r.off.state === 'value' || r.off.state === 'zero' ? fmt.range(r.off.low, r.off.high) : off.spoken;
      return h('tr', { 'data-attr': model.attrs[r.attr].id, 'data-syn': String(r.syn), 'data-state': r.off.state },
        h('th', { scope: 'row', text: (r.selected ? '✓ ' : '') + r.label }),
        h('td', { class: syn.small ? 'is-small' : null, text: syn.text }),
        h('td', { text: off.text }),
        h('td', { text: range }),
        h('td', { class: 'agree-text agree-' + r.agree, text: GLYPH[r.agree] + ' ' + agreeText(r.agree, r.off) }));
    })));
  return h('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': t('table_caption', { chart: visualLabel(v) }),
    'data-testid': 'chart-table' }, table);
}

// -------------------------------------------------------------------------------------------------------
// 4c. Fidelity (M12-M14, S13)
// -------------------------------------------------------------------------------------------------------

/**
 * A horizontal bar chart in HTML (role=img with a text alternative). rows: [{label, value}], value may be null
 * or negative (diverging around zero). reference: optional {value, label} drawn as a vertical line.
 */
function metricChart(options) {
  const rows = options.rows;
  const values = rows.map(function (r) { return r.value; }).filter(function (x) { return x !== null; });
  const hasNegative = values.some(function (x) { return x < 0; });
  let max = Math.max.apply(null, values.map(Math.abs).concat([options.reference ? Math.abs(options.reference.value) : 0, 1e-9]));
  if (options.fixedMax) max = options.fixedMax;
  const spoken = rows.map(function (r) { return r.label + ': ' + (r.value === null ? t('no_data') : options.format(r.value)); }).join('; ');
  const chart = h('div', { class: 'metric-chart' + (hasNegative ? ' diverging' : ''), role: 'img',
    'aria-label': options.title + '. ' + spoken + (options.reference ? '. ' + options.reference.label : '') });
  rows.forEach(function (r) {
    const bar = h('span', { class: 'mbar ' + (options.barClass || '') + (r.value !== null && r.value < 0 ? ' negative' : '') });
    if (r.value !== null) {
      const width = 100 * Math.abs(r.value) / max;
      if (hasNegative) {
        bar.style.width = (width / 2) + '%';
        bar.style.insetInlineStart = r.value < 0 ? (50 - width / 2) + '%' : '50%';
      } else {
        bar.style.width = width + '%';
      }
    }
    const track = h('span', { class: 'mtrack', 'aria-hidden': 'true' }, bar);
    if (options.reference) {
      const line = h('span', { class: 'mref' });
      line.style.insetInlineStart = (100 * options.reference.value / max) + '%';
      track.append(line);
    }
    chart.append(h('div', { class: 'mrow', 'aria-hidden': 'true' },
      h('span', { class: 'mlabel', text: r.label }), track,
      h('span', { class: 'mvalue', text: r.value === null ? '—' : options.format(r.value) })));
  });
  if (options.reference) chart.append(h('p', { class: 'mref-label', 'aria-hidden': 'true' }, h('span', { class: 'mref-key' }), options.reference.label));
  return chart;
}

function directionBadge(key) { return h('span', { class: 'badge badge-direction', text: t(key) }); }

function dataTable(caption, headers, rows) {
  return h('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': caption, 'data-testid': 'fidelity-table' },
    h('table', { class: 'data-table' }, h('caption', { text: caption }),
      h('thead', null, h('tr', null, headers.map(function (x) { return h('th', { scope: 'col', text: x }); }))),
      h('tbody', null, rows.map(function (r) {
        return h('tr', null, r.map(function (cell, i) { return i === 0 ? h('th', { scope: 'row', text: cell }) : h('td', { text: cell }); }));
      }))));
}

const fidelityView = {
  build: function (main) {
    const stats = model.stats;
    const k = fmt.int(model.k);
    main.append(h('p', { class: 'lede', text: t('fid_intro', { L: fmt.int(model.L) }) }));
    main.append(h('p', { class: 'badge-line' }, h('span', { class: 'badge badge-public', text: t('badge_public') }), ' ', t('fid_reference')));

    // Overall cards.
    const o = stats.overall;
    const overall = [
      ['fid_overall_mae', fmt.orDash(o.mean_abs_error, function (x) { return fmt.num(x, 2); }), 'lower_better'],
      ['fid_overall_mpe', fmt.orDash(o.mean_proportional_error, function (x) { return fmt.pct(100 * x); }), 'lower_better'],
      ['fid_overall_coverage', fmt.orDash(o.coverage_pct, fmt.pct), 'higher_better'],
      ['fid_overall_not_official', fmt.orDash(o.not_in_official_pct, fmt.pct), 'lower_better'],
    ];
    // Newer statistics: the error of combinations of 2..L on its own, and the share of agreeing official counts.
    if (stats.multi) overall.push(['fid_multi_mpe', fmt.orDash(stats.multi.mean_proportional_error, fmt.fraction), 'lower_better']);
    if (stats.agreement) overall.push(['fid_overall_agree', fmt.orDash(stats.agreement.overall.agreeing_pct, fmt.pct), 'higher_better']);
    main.append(h('div', { class: 'card-grid metric-cards' }, overall.map(function (m) {
      const params = stats.multi ? { min: fmt.int(stats.multi.min_length), max: fmt.int(stats.multi.max_length) } : null;
      return card('metric-card', [h('h3', { text: t(m[0], params) }), h('p', { class: 'metric-value', 'data-testid': 'metric-' + m[0], text: m[1] }), directionBadge(m[2])]);
    })));

    // M12: by combination length.
    const lenSection = card('fid-section', [h('h3', null, t('fid_by_length'), ' ', helpButton('L'))]);
    main.append(lenSection);
    if (!stats.by_length.length) {
      lenSection.append(h('p', { class: 'empty-state', 'data-testid': 'empty-by-length', text: t('fid_empty_length') }));
    } else {
      const withData = stats.by_length.filter(function (r) { return r.official_combinations > 0; });
      stats.by_length.filter(function (r) { return r.official_combinations === 0; }).forEach(function (r) {
        lenSection.append(h('p', { class: 'empty-state', 'data-testid': 'empty-length-' + r.length, text: t('fid_empty_one_length', { n: fmt.int(r.length), k: k }) }));
      });
      const lenLabel = function (r) { return t('length_n', { n: fmt.int(r.length) }); };
      const baseline = model.kAnonymity && model.k > 1 ? { value: (model.k - 1) / 2, label: t('fid_baseline', { x: fmt.num((model.k - 1) / 2, 1), k: k }) } : null;
      if (withData.length) {
        lenSection.append(
          h('div', { class: 'chart-block' }, h('h4', null, t('fid_mae_title'), ' ', directionBadge('lower_better')),
            metricChart({ title: t('fid_mae_title'), rows: withData.map(function (r) { return { label: lenLabel(r), value: r.mean_abs_error }; }),
              format: function (x) { return fmt.num(x, 2); }, reference: baseline, barClass: 'mbar-error' })),
          h('div', { class: 'chart-block' }, h('h4', null, t('fid_bias_title'), ' ', directionBadge('closer_zero_better')),
            metricChart({ title: t('fid_bias_title'), rows: withData.map(function (r) { return { label: lenLabel(r), value: r.mean_signed_error }; }),
              format: function (x) { return fmt.signed(x, 2); }, barClass: 'mbar-bias' }),
            h('p', { class: 'note', text: t('fid_bias_note') })),
          h('div', { class: 'chart-block' }, h('h4', null, t('fid_coverage_title'), ' ', directionBadge('higher_better'), ' ', helpButton('suppressed')),
            metricChart({ title: t('fid_coverage_title'), rows: withData.map(function (r) { return { label: lenLabel(r), value: r.coverage_pct }; }),
              format: fmt.pct, fixedMax: 100, barClass: 'mbar-good' })),
          h('div', { class: 'chart-block' }, h('h4', null, t('fid_not_official_title'), ' ', directionBadge('lower_better'), ' ', helpButton('fabricated')),
            metricChart({ title: t('fid_not_official_title'), rows: withData.map(function (r) { return { label: lenLabel(r), value: r.not_in_official_pct }; }),
              format: fmt.pct, fixedMax: 100, barClass: 'mbar-error' })));
      }
      lenSection.append(dataTable(t('fid_by_length'), [t('th_length'), t('th_official_combos'), t('th_synthetic_combos'), t('th_common'),
        t('th_coverage'), t('th_not_official'), t('th_mae'), t('th_bias')], stats.by_length.map(function (r) {
        return [fmt.int(r.length), fmt.int(r.official_combinations), fmt.int(r.synthetic_combinations), fmt.int(r.common),
          fmt.orDash(r.coverage_pct, fmt.pct), fmt.orDash(r.not_in_official_pct, fmt.pct),
          fmt.orDash(r.mean_abs_error, function (x) { return fmt.num(x, 2); }), fmt.orDash(r.mean_signed_error, function (x) { return fmt.signed(x, 2); })];
      })));
    }

    // M13: by count bucket.
    const bucketSection = card('fid-section', [h('h3', null, t('fid_by_bucket'), ' ', helpButton('proportional_error'))]);
    main.append(bucketSection);
    if (!stats.by_bucket.length) {
      bucketSection.append(h('p', { class: 'empty-state', 'data-testid': 'empty-by-bucket', text: t('fid_empty_bucket') }));
    } else {
      const bucketLabel = function (r) { return r.high === null ? t('bucket_open', { low: fmt.int(r.low) }) : t('range', { low: fmt.int(r.low), high: fmt.int(r.high) }); };
      const filled = stats.by_bucket.filter(function (r) { return r.combinations > 0; });
      if (filled.length) {
        bucketSection.append(h('div', { class: 'chart-block' }, h('h4', null, t('fid_mpe_title'), ' ', directionBadge('lower_better')),
          metricChart({ title: t('fid_mpe_title'), rows: filled.map(function (r) { return { label: bucketLabel(r), value: r.mean_proportional_error === null ? null : 100 * r.mean_proportional_error }; }),
            format: fmt.pct, barClass: 'mbar-error' })));
      }
      bucketSection.append(h('p', { class: 'note', text: t('fid_bucket_caption', { k: k }) }));
      bucketSection.append(dataTable(t('fid_by_bucket'), [t('th_bucket'), t('th_combinations'), t('th_mae'), t('th_mpe')],
        stats.by_bucket.map(function (r) {
          return [bucketLabel(r), fmt.int(r.combinations), fmt.orDash(r.mean_abs_error, function (x) { return fmt.num(x, 2); }),
            fmt.orDash(r.mean_proportional_error, function (x) { return fmt.pct(100 * x); })];
        })));
    }
  },
  update: function () {},
};

// -------------------------------------------------------------------------------------------------------
// 4d. How privacy works: 4-step story (S5) and glossary (M18)
// -------------------------------------------------------------------------------------------------------

function toyTable(term) {
  const spec = I18N.toy(state.lang, term, fmt);
  return h('table', { class: 'data-table toy' }, h('caption', { text: t('toy_caption') }),
    h('thead', null, h('tr', null, spec.head.map(function (x) { return h('th', { scope: 'col', text: x }); }))),
    h('tbody', null, spec.rows.map(function (r) {
      return h('tr', null, r.map(function (cell, i) { return i === 0 ? h('th', { scope: 'row', text: cell }) : h('td', { text: cell }); }));
    })));
}

const pv = {};  // element references of the privacy view

const privacyView = {
  build: function (main) {
    main.append(h('p', { class: 'lede', text: t('privacy_intro') }));
    pv.story = h('div', { class: 'story card', 'data-testid': 'story' });
    main.append(pv.story);
    const glossary = h('div', { class: 'glossary', id: 'glossary' }, h('h3', { text: t('glossary_title') }));
    GLOSSARY_TERMS.forEach(function (term) {
      glossary.append(h('section', { class: 'term card', 'data-term': term },
        h('h4', { text: t('term_' + term) }), h('p', { text: t('def_' + term, agreeParams()) }),
      term === 'proportional_error' && accuracySentence() ? h('p', { 'data-testid': 'glossary-accuracy', text: t('in_this_release', { text: accuracySentence() }) }) : null,
      toyTable(term)));
    });
    main.append(glossary);
    privacyView.update();
  },
  update: function () {
    const step = state.step;
    const k = fmt.int(model.k);
    const L = fmt.int(model.L);
    const o = model.stats.overall;
    const one = byLength(1);
    const params = {
      k: k, L: L,
      coverage: fmt.orDash(o.coverage_pct, fmt.pct),
      other: fmt.orDash(o.not_in_official_pct, fmt.pct),
      mae: one && one.mean_abs_error !== null ? fmt.num(one.mean_abs_error, 1) : '—',
    };
    pv.story.textContent = '';
    const titleId = uid('story');
    pv.story.setAttribute('aria-labelledby', titleId);
    pv.story.append(
      h('p', { class: 'story-step', 'data-testid': 'story-step', text: t('step_of', { n: fmt.int(step), total: fmt.int(4) }) }),
      h('h3', { id: titleId, text: t('story_title_' + step) }),
      h('p', { text: t('story_text_' + step + (step === 2 && !model.kAnonymity ? '_dp' : ''), params) }));
    if (step === 1) pv.story.append(toyTable('risk'));
    pv.story.append(h('div', { class: 'story-nav' },
      h('button', { type: 'button', class: 'btn btn-secondary', 'data-testid': 'story-prev', disabled: step === 1,
        text: t('back'), onclick: function () { commit({ step: step - 1 }); } }),
      h('button', { type: 'button', class: 'btn', 'data-testid': 'story-next', disabled: step === 4,
        text: t('next'), onclick: function () { commit({ step: step + 1 }); } })));
  },
};

// -------------------------------------------------------------------------------------------------------
// 4e. Downloads and methodology (M16, M17, codebook)
// -------------------------------------------------------------------------------------------------------

const downloadsView = {
  build: function (main) {
    const meta = model.meta;
    main.append(card('guide', [h('h3', { text: t('which_file') }), h('ul', null,
      ['guide_aggregates', 'guide_synthetic', 'guide_codebook'].map(function (key) { return h('li', { text: t(key) }); }))]));

    const files = card('files', [h('h3', { text: t('files_title') })]);
    if (!model.downloads.length) {
      files.append(h('p', { class: 'empty-state', text: t('no_downloads') }));
    } else {
      files.append(h('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': t('files_title'), 'data-testid': 'downloads-table' },
        h('table', { class: 'data-table downloads' }, h('caption', { class: 'sr-only', text: t('files_title') }),
          h('thead', null, h('tr', null, ['th_file', 'th_description', 'th_size', 'th_sha'].map(function (key) { return h('th', { scope: 'col', text: t(key) }); }))),
          h('tbody', null, model.downloads.map(function (d) {
            return h('tr', { 'data-download': d.name },
              h('th', { scope: 'row' }, h('a', { href: d.href, download: '', 'data-testid': 'download-link', 'data-focus-key': d.name, text: d.name })),
              h('td', { 'data-testid': 'download-description', text: d.kind ? t('download_' + d.kind) : fmt.text(d.description) }),
              h('td', { 'data-bytes': String(d.bytes), text: fmt.bytes(d.bytes) }),
              h('td', null, h('code', { class: 'sha', 'data-testid': 'sha256', text: d.sha256 }), ' ',
                h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'copy-sha', 'data-focus-key': d.name,
                  'aria-label': t('copy_sha_for', { file: d.name }), text: t('copy'),
                  onclick: function () { copyText(d.sha256, t('sha_copied')); } })));
          })))));
      if (window.crypto && window.crypto.subtle) files.append(buildVerifier());
    }
    main.append(files);

    main.append(card('licence', [h('h3', { text: t('cite_release_title') }),
      h('p', { 'data-testid': 'release-citation', text: metaText('citation') || '—' }),
      metaText('citation') ? h('button', { type: 'button', class: 'btn btn-secondary', 'data-testid': 'copy-release-citation', text: t('copy'),
        onclick: function () { copyText(stripIsolates(metaText('citation')), t('sentence_copied')); } }) : null,
      h('h4', { text: t('licence_title') }), h('p', { 'data-testid': 'licence', text: metaText('licence') || '—' })]));

    const method = h('dl', { class: 'facts' });
    [[t('dc_privacy_mode'), model.kAnonymity ? t('mode_k_anonymity', { k: fmt.int(model.k) }) : t('mode_dp', { epsilon: fmt.num(meta.dp.epsilon, 3), delta: meta.dp.delta === null ? '—' : String(meta.dp.delta) })],
      [t('term_k'), fmt.int(model.k)], [t('term_L'), fmt.int(model.L)],
      [t('dc_synthesis'), meta.synthesis_mode], [t('dc_synthetic_records'), fmt.int(model.n)],
      [t('dc_official_records'), fmt.int(model.recordCount)], [t('dc_created'), fmt.date(meta.created)],
      [t('dc_run'), meta.run_id], [t('dc_pipeline'), meta.pipeline_version]].forEach(function (r) {
      method.append(h('dt', { text: r[0] }), h('dd', { text: r[1] }));
    });
    main.append(card('method', [h('h3', { text: t('method_title') }), h('p', { text: t(model.kAnonymity ? 'method_text' : 'method_text_dp', { k: fmt.int(model.k), L: fmt.int(model.L) }) }), method]));

    main.append(buildCodebook());
    main.append(card('caveats-card', [h('h3', { text: t('caveats_title') }), caveatItems()]));
  },
  update: function () {},
};

function buildVerifier() {
  const id = uid('verify');
  const result = h('p', { class: 'verify-result', role: 'status', 'data-testid': 'verify-result' });
  const input = h('input', { type: 'file', id: id, 'data-testid': 'verify-file', onchange: function () {
    const file = input.files && input.files[0];
    if (!file) return;
    result.textContent = t('verify_working');
    file.arrayBuffer().then(function (buf) { return window.crypto.subtle.digest('SHA-256', buf); }).then(function (digest) {
      const hex = Array.prototype.map.call(new Uint8Array(digest), function (b) { return (b < 16 ? '0' : '') + b.toString(16); }).join('');
      const match = model.downloads.find(function (d) { return d.sha256 === hex; });
      result.dataset.sha256 = hex;
      result.dataset.match = match ? match.name : '';
      result.className = 'verify-result ' + (match ? 'agree-green' : 'agree-red');
      result.textContent = match ? t('verify_match', { file: match.name }) : t('verify_nomatch', { sha: hex });
    }, function () { result.textContent = t('verify_error'); });
  } });
  return h('div', { class: 'verify' }, h('h4', { text: t('verify_title') }), h('label', { for: id, text: t('verify_label') }), ' ', input, result);
}

function buildCodebook() {
  const section = card('codebook', [h('h3', { id: 'codebook', text: t('codebook_title') }), h('p', { class: 'note', text: t('codebook_intro') }),
    h('p', { class: 'note', text: t('blank_cells') })]);
  model.columns.forEach(function (col, ci) {
    const title = col.kind === 'multi' ? t('pair', { column: sourceLabel(col.source), value: columnLabel(ci) }) : columnLabel(ci);
    section.append(h('details', { class: 'codebook-col' },
      h('summary', { 'data-testid': 'codebook-column', 'data-focus-key': col.id, text: title }),
      h('p', null, h('code', { text: fmt.code(col.id) }), pick(col.descriptions, '') ? ' — ' + pick(col.descriptions, '') : ''),
      h('table', { class: 'data-table' }, h('caption', { class: 'sr-only', text: title }),
        h('thead', null, h('tr', null, [t('th_code'), t('th_raw_value'), t('th_label')].map(function (x) { return h('th', { scope: 'col', text: x }); }))),
        h('tbody', null, col.values.map(function (v) {
          return h('tr', null, h('td', { text: fmt.int(v.code) }), h('td', null, h('code', { text: v.value })), h('td', { text: pick(v.labels, v.value) }));
        })))));
  });
  return section;
}

const VIEW_IMPL = { home: homeView, explore: exploreView, fidelity: fidelityView, privacy: privacyView, downloads: downloadsView };

// -------------------------------------------------------------------------------------------------------
// 5. Export of the visible counts (the CSV equals what the charts show)
// -------------------------------------------------------------------------------------------------------

function csvCell(value, isText) {
  // Exports are for machines too: no bidi isolates (they are display-only), numbers unformatted.
  let s = isText ? stripIsolates(String(value)) : String(value);
  // Spreadsheet formula guard for free text (OWASP CSV injection).
  if (isText && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]|^\s|\s$/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

function exportRows() {
  const out = [];
  const filters = state.sel.map(function (a) { return model.attrs[a].id; }).join(';');
  visibleVisualIds().forEach(function (id) {
    const v = model.visualById.get(id);
    if (v.type === 'map') return;  // a map shows its bar chart's rows, which are exported once, with that chart
    // Every value of every chart in the view: neither the value search nor the top-N cut applies.
    shownRows(v).all.forEach(function (r) {
      const attr = model.attrs[r.attr];
      out.push([
        [v.id, true], [visualLabel(v), true], [model.columns[attr.col].id, true], [attr.value, true], [r.label, true], [attr.id, true],
        [r.syn, false], [synDisplay(r.syn).text, true], [r.off.state, false], [r.off.count === null ? '' : r.off.count, false],
        [r.off.low === null ? '' : r.off.low, false], [r.off.high === null ? '' : r.off.high, false], [offDisplay(r.off).text, true],
        [r.agree, false], [filters, true],
      ]);
    });
  });
  return out;
}

function exportCsv() {
  const header = ['visual', 'visual_label', 'column', 'value', 'label', 'attribute', 'synthetic_count', 'synthetic_shown',
    'official_state', 'official_count', 'official_low', 'official_high', 'official_shown', 'agreement', 'filters'];
  const lines = [header.join(',')].concat(exportRows().map(function (row) {
    return row.map(function (c) { return csvCell(c[0], c[1]); }).join(',');
  }));
  const blob = new Blob(['\ufeff' + lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: 'explorer-view-' + model.meta.run_id.replace(/[^A-Za-z0-9._-]+/g, '_') + '.csv', hidden: true });
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  announce(t('export_done', { n: fmt.int(lines.length - 1) }));
}

// -------------------------------------------------------------------------------------------------------
// Bootstrap
// -------------------------------------------------------------------------------------------------------

function onGlobalKey(ev) {
  if (ev.key !== 'Escape') return;
  if (closeHelp()) { ev.preventDefault(); return; }
  if (ui.chooserOpen && state.view === 'explore') {
    ui.chooserOpen = false; updateChooser(); ex.chooserButton.focus(); ev.preventDefault(); return;
  }
  const tag = (ev.target && ev.target.tagName) || '';
  if (state.view === 'explore' && state.sel.length && ['INPUT', 'SELECT', 'TEXTAREA'].indexOf(tag) < 0 && !ui.caveatsDialog.open) {
    ev.preventDefault();
    clearFilters(document.activeElement && document.contains(document.activeElement) && document.activeElement !== document.body ? null : ex.filtersHeading);
  }
}

function start() {
  if (TEST_MODE) document.documentElement.classList.add('test-mode');
  const data = JSON.parse(document.getElementById('explorer-data').textContent);
  model = new Model(data);
  query = new Query(model);
  try { ui.caveatsAck = window.sessionStorage.getItem(ACK_KEY) === '1'; } catch (e) { ui.caveatsAck = false; }
  state = parseHash(location.hash);
  lastHash = location.hash;
  window.addEventListener('hashchange', onHashChange);
  document.addEventListener('keydown', onGlobalKey);
  document.addEventListener('click', function (ev) {
    if (ui.openHelp && !ui.openHelp.tip.contains(ev.target)) closeHelp();
  });
  render(null);

  // Test and debug hooks (M21).
  window.__explorer = {
    model: model,
    query: query,
    state: function () { return JSON.parse(JSON.stringify(state)); },
    renderAll: renderAllCharts,
    exportRows: function () { return exportRows().map(function (r) { return r.map(function (c) { return c[0]; }); }); },
    setStrategy: function (name) { query.setStrategy(name); ui.charts.forEach(function (c) { c._dirty = true; }); renderAllCharts(); },
    i18nMissing: I18N.missing,
    t: I18N.t,
  };
  perf.readyAt = performance.now();
  updateDebug();
  window.__explorerReady = true;
  document.documentElement.dataset.ready = '1';
}

/** Start the page, or show why it could not start. */
export function boot() {
  try {
    start();
  } catch (err) {
    // Show a readable message instead of a blank page; the error object never contains data values.
    const app = document.getElementById('app');
    app.textContent = '';
    app.append(h('p', { class: 'fatal', role: 'alert', text: 'The explorer could not start: ' + (err && err.message ? err.message : String(err)) }));
    app.removeAttribute('aria-busy');
    throw err;
  }
}
