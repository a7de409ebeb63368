/*
 * The explorer's data model and counting engine. No DOM access, so it runs (and is unit-tested) under Node too.
 *
 * Terms (docs/spec.md 2.4, docs/explorer.md 5.0):
 *  - an *attribute* is one "column:value" pair; attributes are numbered 0..A-1 in canonical order (byte order of
 *    their "column:value" strings), so a sorted array of attribute ids IS the canonical combination key;
 *  - a *selection* is a set of attributes with at most one per column, combined with AND;
 *  - the *synthetic count* of a bar (attribute a in column c) is the number of synthetic rows matching every
 *    selection in the OTHER columns and having a (the classic cross-filter: a column's own filter is ignored
 *    when counting that column's values, so the alternatives stay visible);
 *  - the *official count* of that bar is the reportable aggregate of the key {selections in other columns} ∪ {a}.
 *
 * Speed (M22): the synthetic rows are column-stored Uint16 codes. Each attribute gets a lazily built bitset
 * (Uint32Array, one bit per row); a selection is the AND of its bitsets, and the "all rows matching every
 * selection except column c" bitsets are cached per selection. A bar's count is then popcount(base AND bits(a));
 * for columns with many values a single histogram pass over the base rows is cheaper and is used instead.
 * Official counts are found by binary search in per-length tables of sorted attribute-id tuples built in Python.
 */
/** Columns with more values than this are counted by a histogram over the base rows, not per-value bitsets. */
export const BITSET_MAX_VALUES = 24;

/** Version of the compiled model this code reads (MODEL_FORMAT in ctdc_spark/publish/_explorer/compile.py). */
export const MODEL_FORMAT = 2;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decode base64 into bytes (native decoder when the browser has one). */
function base64ToBytes(text) {
  if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(text);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Decode base64 little-endian unsigned integers of `width` bytes (2 or 4) into a typed array. */
function decodeUints(text, width) {
  const bytes = base64ToBytes(text);
  const count = bytes.length / width;
  if (LITTLE_ENDIAN && bytes.byteOffset % width === 0) {
    return width === 2 ? new Uint16Array(bytes.buffer, bytes.byteOffset, count)
      : new Uint32Array(bytes.buffer, bytes.byteOffset, count);
  }
  // Big-endian (or unaligned) platforms: read through a DataView, which is explicit about byte order.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = width === 2 ? new Uint16Array(count) : new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = width === 2 ? view.getUint16(2 * i, true) : view.getUint32(4 * i, true);
  return out;
}

/** Number of set bits in a 32-bit word (SWAR popcount). */
function popcount32(x) {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export function popcount(bits) {
  let total = 0;
  for (let i = 0; i < bits.length; i++) if (bits[i]) total += popcount32(bits[i]);
  return total;
}

function andCount(a, b) {
  let total = 0;
  for (let i = 0; i < a.length; i++) {
    const w = a[i] & b[i];
    if (w) total += popcount32(w);
  }
  return total;
}

/** Intersection of several bitsets (a new array); null for an empty list, meaning "all rows". */
function intersect(list) {
  if (!list.length) return null;
  const out = list[0].slice();
  for (let j = 1; j < list.length; j++) {
    const b = list[j];
    for (let i = 0; i < out.length; i++) out[i] &= b[i];
  }
  return out;
}

/**
 * The published data, decoded once at load: codebook, synthetic codes, per-attribute totals and the
 * aggregate tables. Immutable after construction except for the lazily built bitsets.
 */
export class Model {
  constructor(data) {
    if (data.format !== MODEL_FORMAT) throw new Error('Unsupported explorer data format');
    this.meta = data.meta;
    this.columns = data.columns;
    this.visuals = data.visuals;
    this.defaultVisuals = data.default_visuals;
    this.pages = data.pages;
    this.stats = data.stats;
    this.downloads = data.downloads;
    this.k = data.meta.k;
    this.L = data.meta.L;
    this.kAnonymity = data.meta.privacy_mode === 'k_anonymity';
    this.agreementRule = data.meta.agreement;  // {interval, relative, absolute}: see agrees()
    this.n = data.synthetic.n;
    this.words = (this.n + 31) >>> 5;

    // Attributes in canonical order: attrs[i] = {index, col, vi, value, id}.
    this.attrs = data.attrs.map(function (pair, index) {
      const col = data.columns[pair[0]];
      const value = col.values[pair[1]];
      return { index: index, col: pair[0], vi: pair[1], code: value.code, value: value.value,
        id: col.id + ':' + value.value };
    });
    this.attrById = new Map(this.attrs.map(function (a) { return [a.id, a.index]; }));
    this.visualById = new Map(this.visuals.map(function (v) { return [v.id, v]; }));

    // Column stores and code -> value-index maps (-1 for 0 = empty cell and unknown codes).
    this.codes = data.synthetic.codes.map(function (text) { return decodeUints(text, 2); });
    this.codeToValue = data.columns.map(function (col) {
      let max = 0;
      col.values.forEach(function (v) { if (v.code > max) max = v.code; });
      const map = new Int32Array(max + 1).fill(-1);
      col.values.forEach(function (v, vi) { map[v.code] = vi; });
      return map;
    });

    // Unfiltered count of every attribute: one histogram pass per column.
    this.totals = data.columns.map(function (col, ci) { return this.histogram(ci, null); }, this);

    // Aggregates: tables[length] = {m, ranks (flat, stride = length), counts}.
    this.recordCount = data.aggregates.record_count;
    this.tables = [];
    this.keyCount = 0;
    data.aggregates.tables.forEach(function (t) {
      this.tables[t.length] = { m: t.m, ranks: decodeUints(t.ranks, t.width), counts: decodeUints(t.counts, 4) };
      this.keyCount += t.m;
    }, this);

    this.bits = new Array(this.attrs.length);  // lazily built per attribute
    this.bitsetsBuilt = 0;
  }

  /** Per-value counts of column `ci` over the rows set in `base` (all rows when base is null). */
  histogram(ci, base) {
    const codes = this.codes[ci];
    const map = this.codeToValue[ci];
    const counts = new Int32Array(this.columns[ci].values.length);
    if (base === null) {
      for (let r = 0; r < codes.length; r++) {
        const v = map[codes[r]];
        if (v >= 0) counts[v]++;
      }
      return counts;
    }
    for (let w = 0; w < base.length; w++) {
      let word = base[w];
      while (word) {
        const low = word & -word;  // lowest set bit
        const row = (w << 5) + (31 - Math.clz32(low));
        const v = map[codes[row]];
        if (v >= 0) counts[v]++;
        word ^= low;
      }
    }
    return counts;
  }

  /** The bitset of rows holding attribute `a`; small columns build all their value bitsets in one pass. */
  attrBits(a) {
    if (this.bits[a]) return this.bits[a];
    const attr = this.attrs[a];
    const col = this.columns[attr.col];
    const codes = this.codes[attr.col];
    if (col.values.length <= BITSET_MAX_VALUES) {
      const map = this.codeToValue[attr.col];
      const perValue = col.values.map(function () { return new Uint32Array(this.words); }, this);
      for (let r = 0; r < codes.length; r++) {
        const v = map[codes[r]];
        if (v >= 0) perValue[v][r >>> 5] |= 1 << (r & 31);
      }
      col.values.forEach(function (v, vi) {
        if (!this.bits[v.attr]) { this.bits[v.attr] = perValue[vi]; this.bitsetsBuilt++; }
      }, this);
    } else {
      const out = new Uint32Array(this.words);
      const code = attr.code;
      for (let r = 0; r < codes.length; r++) if (codes[r] === code) out[r >>> 5] |= 1 << (r & 31);
      this.bits[a] = out;
      this.bitsetsBuilt++;
    }
    return this.bits[a];
  }

  /** Official count of a canonical key (sorted attribute ids), or -1 when the key is absent. */
  lookup(key) {
    const t = this.tables[key.length];
    if (!t || key.length === 0) return -1;
    const len = key.length;
    const ranks = t.ranks;
    let lo = 0;
    let hi = t.m - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const off = mid * len;
      let cmp = 0;
      for (let i = 0; i < len; i++) {
        cmp = ranks[off + i] - key[i];
        if (cmp !== 0) break;
      }
      if (cmp === 0) return t.counts[mid];
      if (cmp < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  /**
   * Official state of a key (M7): 'value' (a rounded count), 'zero' (published as 0, DP only),
   * 'lt_k' (length <= L but absent: fewer than k) or 'na' (longer than L: not available).
   * low/high is the range the published number stands for (N2): [a, a+k-1] for k-rounded counts.
   */
  official(key) {
    if (key.length === 0) return this.rangeOf(this.recordCount);
    if (key.length > this.L) return { state: 'na', count: null, low: null, high: null, length: key.length };
    const count = this.lookup(key);
    if (count < 0) return { state: 'lt_k', count: null, low: null, high: null, length: key.length };
    const out = this.rangeOf(count);
    out.length = key.length;
    return out;
  }

  /** The true interval an official count stands for: [a, a + interval - 1] (interval = k when k-rounded, else 1). */
  rangeOf(count) {
    return {
      state: count === 0 ? 'zero' : 'value',
      count: count,
      low: count,
      high: count + this.agreementRule.interval - 1,
      length: 0,
    };
  }

  /** Agreement light (N2) of a synthetic count against an official state (see agreementLight). */
  agreement(syn, off) {
    if (off.state === 'lt_k' || off.state === 'na') return 'grey';
    return agreementLight(syn, off.count, this.agreementRule);
  }
}

/**
 * Distance of a synthetic count s from the interval [a, a + interval - 1] that an official count a stands for.
 * @param {number} s @param {number} a @param {{interval: number}} rule
 */
export function distanceToInterval(s, a, rule) {
  return Math.max(a - s, s - (a + rule.interval - 1), 0);
}

/**
 * The agreement rule, shared with evaluation.json (the Python side implements the same): s AGREES with a when its
 * distance to a's interval is at most max(absolute, relative * a). A relative tolerance makes a 2% gap on a large
 * count agree while 92 vs 470 does not; the absolute floor keeps small counts from failing on rounding noise.
 * @param {number} s @param {number} a @param {{interval: number, relative: number, absolute: number}} rule
 */
export function agrees(s, a, rule) {
  return distanceToInterval(s, a, rule) <= Math.max(rule.absolute, rule.relative * a);
}

/**
 * Light of a checkable count: 'green' inside the interval, 'amber' outside it but agreeing, 'red' not agreeing.
 * @returns {'green'|'amber'|'red'}
 */
export function agreementLight(s, a, rule) {
  if (distanceToInterval(s, a, rule) === 0) return 'green';
  return agrees(s, a, rule) ? 'amber' : 'red';
}

export class Query {
  constructor(model) {
    this.model = model;
    this.strategy = 'auto';  // 'auto' | 'bitset' | 'histogram' (tests compare the strategies)
    this.setSelection([]);
  }

  setSelection(attrs) {
    const model = this.model;
    const byCol = new Map();
    attrs.forEach(function (a) { byCol.set(model.attrs[a].col, a); });  // last one per column wins
    this.sel = Array.from(byCol.values()).sort(function (x, y) { return x - y; });
    this.selByCol = byCol;
    this.full = intersect(this.sel.map(function (a) { return model.attrBits(a); }));
    this.matchCount = this.full === null ? model.n : popcount(this.full);
    this.baseCache = new Map();
    this.countCache = new Map();
  }

  setStrategy(name) {
    this.strategy = name;
    this.countCache = new Map();
  }

  isSelected(a) { return this.selByCol.get(this.model.attrs[a].col) === a; }
  hasSelectionIn(ci) { return this.selByCol.has(ci); }

  /** Rows matching every selection except the one in column ci (the "all but this column" cache). */
  base(ci) {
    if (!this.selByCol.has(ci)) return this.full;
    if (!this.baseCache.has(ci)) {
      const model = this.model;
      const own = this.selByCol.get(ci);
      const others = this.sel.filter(function (a) { return a !== own; });
      this.baseCache.set(ci, intersect(others.map(function (a) { return model.attrBits(a); })));
    }
    return this.baseCache.get(ci);
  }

  /** Per-value synthetic counts of column ci under its base. */
  columnCounts(ci) {
    if (this.countCache.has(ci)) return this.countCache.get(ci);
    const model = this.model;
    const base = this.base(ci);
    let counts;
    if (base === null) {
      counts = model.totals[ci];
    } else {
      const values = model.columns[ci].values;
      const useBitsets = this.strategy === 'bitset'
        || (this.strategy === 'auto' && values.length <= BITSET_MAX_VALUES);
      if (useBitsets) {
        counts = new Int32Array(values.length);
        values.forEach(function (v, vi) { counts[vi] = andCount(base, model.attrBits(v.attr)); });
      } else {
        counts = model.histogram(ci, base);
      }
    }
    this.countCache.set(ci, counts);
    return counts;
  }

  syn(a) {
    const attr = this.model.attrs[a];
    return this.columnCounts(attr.col)[attr.vi];
  }

  /** Canonical key of {selections in other columns} ∪ {a}. */
  keyWith(a) {
    const ci = this.model.attrs[a].col;
    const key = this.sel.filter(function (s) { return this.model.attrs[s].col !== ci; }, this);
    key.push(a);
    return key.sort(function (x, y) { return x - y; });
  }

  /** Everything one bar shows: synthetic count, official state and agreement light. */
  bar(a) {
    const syn = this.syn(a);
    const off = this.model.official(this.keyWith(a));
    return { attr: a, syn: syn, off: off, agree: this.model.agreement(syn, off) };
  }

  /** The selection itself (summary card, M11): matching rows vs the official count of the whole key. */
  summary() {
    const off = this.model.official(this.sel);
    return { syn: this.matchCount, off: off, agree: this.model.agreement(this.matchCount, off) };
  }
}

