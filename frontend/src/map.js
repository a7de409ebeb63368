/*
 * World map (choropleth) of a country column: one SVG path per country, filled by its official count, each
 * country with data a keyboard stop (roving tabindex: Tab reaches the map, arrows move between countries in the
 * chart's row order, Enter/Space selects like a bar click). Geometry: Natural Earth 1:110m via world-atlas
 * (pinned, bundled into the page; no network), projected once with d3-geo. The table alternative is the chart's
 * ordinary table (ui.js), so the map's numbers are the bar chart's.
 */
import { geoNaturalEarth1, geoPath } from 'd3-geo';
import { feature } from 'topojson-client';
import world from 'world-atlas/countries-110m.json' with { type: 'json' };
import { NUMERIC_BY_ALPHA2 } from './regions.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const WIDTH = 960;
const HEIGHT = 500;
/** Number of colour classes of official counts (plus "fewer than k" and "no data"). */
export const MAP_BINS = 5;

let shapes = null;

/** Projected outlines, computed on first use: {sphere, all: [{numeric, d}], byNumeric: Map}. */
function worldShapes() {
  if (shapes) return shapes;
  const projection = geoNaturalEarth1().fitSize([WIDTH, HEIGHT], { type: 'Sphere' });
  const path = geoPath(projection).digits(1);  // 0.1 px is far below what a screen shows
  const all = feature(world, world.objects.countries).features.map((f) => ({ numeric: f.id || null, d: path(f) }));
  shapes = { sphere: path({ type: 'Sphere' }), all, byNumeric: new Map(all.filter((s) => s.numeric).map((s) => [s.numeric, s.d])) };
  return shapes;
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  Object.keys(attrs || {}).forEach((key) => { if (attrs[key] !== null && attrs[key] !== undefined) el.setAttribute(key, String(attrs[key])); });
  return el;
}

/**
 * Upper bounds of MAP_BINS classes over the positive official counts, on a log scale (counts span several orders
 * of magnitude, so a linear scale would put nearly every country in the lowest class).
 * @param {number[]} counts @returns {number[]} ascending upper bounds; the last is the maximum
 */
export function mapBins(counts) {
  const positive = counts.filter((c) => c > 0);
  if (!positive.length) return [];
  const lo = Math.log(Math.min(...positive));
  const hi = Math.log(Math.max(...positive));
  const out = [];
  for (let i = 1; i <= MAP_BINS; i++) out.push(Math.round(Math.exp(lo + ((hi - lo) * i) / MAP_BINS)));
  out[MAP_BINS - 1] = Math.max(...positive);
  return out.filter((x, i) => i === 0 || x > out[i - 1]);
}

/** Colour class of an official state under `bins`: 'bin-0'.. or 'lt-k' / 'zero'. */
export function binClass(off, bins) {
  if (off.state === 'lt_k' || off.state === 'na') return 'lt-k';
  if (!off.count) return 'zero';
  const i = bins.findIndex((upper) => off.count <= upper);
  return 'bin-' + (i < 0 ? bins.length - 1 : i);
}

/**
 * Draw the map.
 * @param {object} options
 * @param {Array} options.rows chart rows (ui.js computeRows): {attr, syn, off, agree, label, selected}
 * @param {(row) => string} options.alpha2 the row's ISO alpha-2 code
 * @param {(row) => string} options.describe accessible name of a country (name, counts, agreement)
 * @param {number[]} options.bins from mapBins
 * @param {number|null} options.tabStop attribute holding the map's tab stop
 * @param {string} options.label accessible name of the whole map
 * @param {(attr: number) => void} options.onToggle select / unselect a country
 * @param {(attr: number) => void} options.onFocus a country received focus
 * @returns {{element: SVGSVGElement, notDrawn: Array}} rows without geometry are listed by the caller
 */
export function renderMap(options) {
  const world = worldShapes();
  // tabindex -1: the countries are the tab stops, never the drawing itself.
  const root = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'world-map', role: 'group', 'aria-label': options.label,
    'data-testid': 'map', tabindex: '-1', focusable: 'false' });
  root.append(svg('path', { d: world.sphere, class: 'map-sphere', 'aria-hidden': 'true' }));
  const withData = new Set();
  const drawn = [];
  const notDrawn = [];
  options.rows.forEach((row) => {
    const numeric = NUMERIC_BY_ALPHA2.get(options.alpha2(row));
    if (numeric && world.byNumeric.has(numeric)) { withData.add(numeric); drawn.push({ row, d: world.byNumeric.get(numeric) }); } else notDrawn.push(row);
  });
  const land = svg('g', { class: 'map-land', 'aria-hidden': 'true' });
  world.all.forEach((s) => { if (!withData.has(s.numeric)) land.append(svg('path', { d: s.d })); });
  root.append(land);
  const tabStop = drawn.some((x) => x.row.attr === options.tabStop) ? options.tabStop : (drawn[0] ? drawn[0].row.attr : null);
  const countries = svg('g', { class: 'map-countries' });
  drawn.forEach(({ row, d }) => {
    const path = svg('path', {
      d, class: 'map-country ' + binClass(row.off, options.bins) + (row.selected ? ' is-selected' : ''),
      role: 'button', tabindex: row.attr === tabStop ? '0' : '-1', 'aria-pressed': String(row.selected),
      'aria-label': options.describe(row), 'data-testid': 'map-country', 'data-attr-index': String(row.attr),
      'data-code': options.alpha2(row), 'data-syn': String(row.syn), 'data-agg': row.off.count === null ? '' : String(row.off.count),
      'data-state': row.off.state, 'data-agree': row.agree, 'data-focus-key': 'map|' + row.attr,
    });
    const tip = svg('title');
    tip.textContent = options.describe(row);
    path.append(tip);
    countries.append(path);
  });
  root.append(countries);
  const order = drawn.map((x) => x.row.attr);
  root.addEventListener('click', (ev) => {
    const target = ev.target.closest('[data-testid="map-country"]');
    if (target) options.onToggle(Number(target.dataset.attrIndex));
  });
  root.addEventListener('focusin', (ev) => {
    const target = ev.target.closest('[data-testid="map-country"]');
    if (target) options.onFocus(Number(target.dataset.attrIndex));
  });
  root.addEventListener('keydown', (ev) => {
    const current = ev.target.closest('[data-testid="map-country"]');
    if (!current) return;
    const index = order.indexOf(Number(current.dataset.attrIndex));
    let next = null;
    switch (ev.key) {
      case 'ArrowDown': case 'ArrowRight': next = order[Math.min(order.length - 1, index + 1)]; break;
      case 'ArrowUp': case 'ArrowLeft': next = order[Math.max(0, index - 1)]; break;
      case 'Home': next = order[0]; break;
      case 'End': next = order[order.length - 1]; break;
      case 'Enter': case ' ': ev.preventDefault(); options.onToggle(Number(current.dataset.attrIndex)); return;
      default: return;
    }
    ev.preventDefault();
    const target = root.querySelector(`[data-attr-index="${next}"]`);
    if (target && target !== current) {
      current.setAttribute('tabindex', '-1');
      target.setAttribute('tabindex', '0');
      target.focus();
    }
  });
  return { element: root, notDrawn };
}
