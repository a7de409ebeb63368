/*
 * Locale formatting for one page language: Intl.NumberFormat / DateTimeFormat everywhere (including exports),
 * with the bidi isolation of bidi.js applied to every number, range and code. No DOM access.
 */
import { isolateCode, isolateNumber, isolateText } from './bidi.js';
import { direction, t } from './i18n.js';

export class Formatter {
  /** @param {string} lang */
  constructor(lang) {
    this.lang = lang;
    this.dir = direction(lang);
    this.formats = new Map();  // Intl formatters are costly to create: one per named format
    // Bound, so views can pass e.g. `fmt.pct` as a column formatter.
    for (const name of Object.getOwnPropertyNames(Formatter.prototype)) {
      if (name !== 'constructor') this[name] = this[name].bind(this);
    }
  }

  intl(name, options, Kind) {
    let format = this.formats.get(name);
    if (!format) {
      format = new (Kind || Intl.NumberFormat)(this.lang, options);
      this.formats.set(name, format);
    }
    return format;
  }

  number(text) { return isolateNumber(text, this.dir); }
  int(x) { return this.number(this.intl('int', { maximumFractionDigits: 0 }).format(x)); }
  num(x, digits = 2) {
    return this.number(this.intl('num' + digits, { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(x));
  }
  signed(x, digits = 2) {
    return this.number(this.intl('signed' + digits, { maximumFractionDigits: digits, signDisplay: 'exceptZero' }).format(x));
  }
  /** p is a percentage (0-100). */
  pct(p, signed = false) {
    return this.number(this.intl(signed ? 'pct-signed' : 'pct', { style: 'percent', maximumFractionDigits: 1,
      signDisplay: signed ? 'exceptZero' : 'auto' }).format(p / 100));
  }
  /** A fraction (0.12 = 12 %), as the statistics give proportional errors. */
  fraction(x) { return this.pct(100 * x); }
  bytes(bytes) {
    const units = [['byte', 1], ['kilobyte', 1e3], ['megabyte', 1e6], ['gigabyte', 1e9]];
    let unit = units[0];
    units.forEach((u) => { if (bytes >= u[1]) unit = u; });
    return this.number(this.intl('unit-' + unit[0], { style: 'unit', unit: unit[0], unitDisplay: 'short',
      maximumFractionDigits: 1 }).format(bytes / unit[1]));
  }
  date(iso) {
    const date = new Date(iso);
    if (isNaN(date.getTime())) return this.code(iso);
    return this.number(this.intl('date', { dateStyle: 'long', timeZone: 'UTC' }, Intl.DateTimeFormat).format(date));
  }
  /** low–high (or one number when equal): one left-to-right unit in RTL pages (see bidi.js). */
  range(low, high) {
    if (low === high) return this.int(low);
    const text = t(this.lang, 'range', { low: this.int(low), high: this.int(high) });
    // In RTL pages word joiners keep the range on one line too (the isolate alone may still break at the dash).
    return this.dir === 'rtl' ? isolateCode(text.replace('–', '\u2060–\u2060'), this.dir) : text;
  }
  /** "< n": like a range, one left-to-right unit in RTL pages (a mirrored "<" would read as "n >"). */
  lessThan(n) { return isolateCode(t(this.lang, 'lt_n', { n: this.int(n) }), this.dir); }
  /** A value, or a dash when the statistic is not published. */
  orDash(x, formatter) { return x === null || x === undefined ? '—' : formatter(x); }
  /** Text from the payload (labels, titles) or from Intl (country names). */
  text(s) { return isolateText(s, this.dir); }
  code(s) { return isolateCode(s, this.dir); }
}
