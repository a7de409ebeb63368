/*
 * The UI string table (S8). The tables are the JSON files in ctdc_spark/publish/locales/ui/ (package data: the
 * Python side reads the same files, e.g. the download_<kind> sentences for the bundle's README). English is the
 * reference; every other language defines every key (a unit test and a pytest check this). Placeholders are
 * {name}; numbers arrive already formatted (and bidi-isolated) by format.js. Value and column labels come from
 * the payload, not from here. No DOM access.
 */
import en from '../../ctdc_spark/publish/locales/ui/en.json' with { type: 'json' };
import fr from '../../ctdc_spark/publish/locales/ui/fr.json' with { type: 'json' };
import es from '../../ctdc_spark/publish/locales/ui/es.json' with { type: 'json' };
import de from '../../ctdc_spark/publish/locales/ui/de.json' with { type: 'json' };
import ar from '../../ctdc_spark/publish/locales/ui/ar.json' with { type: 'json' };

import { LRI, PDI } from './bidi.js';

/** @type {Record<string, Record<string, string>>} */
export const STRINGS = { en, fr, es, de, ar };
export const LANGUAGES = Object.keys(STRINGS);

const NAMES = { en: 'English', fr: 'Français', es: 'Español', de: 'Deutsch', ar: 'العربية' };
const RTL = new Set(['ar']);
const own = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

/** Replace {name} placeholders; unknown placeholders stay visible so a missing parameter is noticed. */
export function fill(template, params) {
  if (!params) return template;
  return template.replace(/\{(\w+)\}/g, (match, name) => (own(params, name) ? String(params[name]) : match));
}

function lookup(lang, key) {
  const table = STRINGS[lang] || STRINGS.en;
  if (own(table, key)) return table[key];
  if (own(STRINGS.en, key)) return STRINGS.en[key];
  return key;
}

const LATIN_RUN = /[A-Za-z][A-Za-z0-9-]*(?:\s*[=<>≤≥]\s*(?:[0-9]+|[\uE000-\uE0FF]))?/g;
const rtlTemplates = new Map();

/**
 * A right-to-left template with every Latin-script fragment of its own text (k, L, "k = {k}", SHA-256, CSV)
 * isolated left to right (bidi.js); placeholders are left alone (their values are isolated when formatted).
 * Without this, "(k = {k})" in an Arabic sentence displays with jumbled parentheses.
 */
function isolateLatinRuns(template) {
  let out = rtlTemplates.get(template);
  if (out === undefined) {
    const names = [];
    const masked = template.replace(/\{\w+\}/g, (m) => { names.push(m); return String.fromCharCode(0xE000 + names.length - 1); });
    // No-break spaces inside the fragment: an isolate broken across lines is reordered line by line ("k 5 =").
    out = masked.replace(LATIN_RUN, (m) => LRI + m.replace(/ /g, '\u00a0') + PDI)
      .replace(/[\uE000-\uE0FF]/g, (ch) => names[ch.charCodeAt(0) - 0xE000]);
    rtlTemplates.set(template, out);
  }
  return out;
}

/** The sentence `key` in `lang` with its placeholders filled. */
export function t(lang, key, params) {
  const template = lookup(lang, key);
  return fill(direction(lang) === 'rtl' ? isolateLatinRuns(template) : template, params);
}
export function has(lang, key) { return own(STRINGS[lang] || {}, key); }
/** @returns {'rtl'|'ltr'} */
export function direction(lang) { return RTL.has(lang) ? 'rtl' : 'ltr'; }
export function languageName(lang) { return NAMES[lang] || lang; }

/** Keys of the English table missing from `lang` (tests assert none are missing). */
export function missing(lang) {
  const table = STRINGS[lang] || {};
  return Object.keys(STRINGS.en).filter((key) => !own(table, key));
}

/**
 * Toy tables of the glossary (M18) and the privacy story, built from the translated words.
 * fmt: {int, pct, range, text} from format.js, so numbers and ranges are localised and isolated like the rest.
 */
export function toy(lang, term, fmt) {
  const w = (key) => lookup(lang, key);
  const fewer10 = fill(w('fewer_than'), { n: fmt.int(10) });
  const plus = ' + ';
  const female = w('toy_female');
  const male = w('toy_male');
  const a = w('toy_country_a');
  const young = fmt.range(18, 29);
  const old = fill(w('age_and_over'), { n: fmt.int(60) });
  const n = fmt.int;
  switch (term) {
    case 'risk': return { head: [w('toy_person'), w('toy_sex'), w('toy_age'), w('toy_country')], rows: [
      [n(1), female, young, a], [n(2), female, young, a], [n(3), male, old, w('toy_country_b')]] };
    case 'k': return { head: [w('toy_combination'), w('toy_true_count'), w('toy_published')], rows: [
      [female, n(27), n(20)], [female + plus + young, n(12), n(10)], [male + plus + old, n(4), fewer10]] };
    case 'L': return { head: [w('toy_combination'), w('toy_length'), w('toy_official')], rows: [
      [female, n(1), n(20)], [female + plus + young, n(2), n(10)], [female + plus + young + plus + a, n(3), w('na_short')]] };
    case 'synthetic': return { head: [w('toy_combination'), w('toy_sharing'), w('toy_can_appear')], rows: [
      [female + plus + young, n(12), w('toy_yes')], [female + plus + a, n(25), w('toy_yes')], [male + plus + old, n(4), w('toy_no')]] };
    case 'aggregate': return { head: [w('toy_combination'), w('toy_true_count'), w('toy_official')], rows: [
      [female, n(27), n(20)], [a, n(31), n(30)], [male + plus + old, n(4), fewer10]] };
    case 'suppressed': return { head: [w('toy_combination'), w('toy_official'), w('toy_synthetic'), w('toy_status')], rows: [
      [female + plus + young, n(10), n(11), w('toy_in_both')], [female + plus + a, n(20), n(18), w('toy_in_both')],
      [male + plus + w('toy_country_b'), n(10), n(0), w('toy_suppressed')]] };
    case 'fabricated': return { head: [w('toy_combination'), w('toy_official'), w('toy_synthetic'), w('toy_status')], rows: [
      [female + plus + a, n(20), n(18), w('toy_in_both')], [male + plus + young, n(10), n(9), w('toy_in_both')],
      [male + plus + old + plus + a, fewer10, n(2), w('toy_not_official')]] };
    case 'agreement': return { head: [w('toy_official'), w('toy_synthetic'), w('toy_status')], rows: [
      [n(6360), n(6234), w('toy_agrees')], [n(470), n(92), w('toy_disagrees')], [n(10), n(25), w('toy_agrees')]] };
    case 'blank': return { head: [w('toy_person'), w('toy_sex'), w('toy_age')], rows: [
      [n(1), female, young], [n(2), '', young], [n(3), male, '']] };
    default: return { head: [w('toy_official'), w('toy_synthetic'), w('toy_prop_error')], rows: [
      [n(100), n(90), fmt.pct(10)], [n(20), n(25), fmt.pct(25)], [n(10), n(10), fmt.pct(0)]] };
  }
}
