// The string tables, bidi isolation and locale formatting (pure; no DOM).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LANGUAGES, STRINGS, missing, t } from '../src/i18n.js';
import { LRI, PDI, RLI, firstStrongDirection, isolateText, stripIsolates } from '../src/bidi.js';
import { Formatter } from '../src/format.js';
import { NUMERIC_BY_ALPHA2, regionNamer } from '../src/regions.js';
import { binClass, mapBins } from '../src/map.js';

test('every language defines every English key, with the same placeholders', () => {
  assert.deepEqual(LANGUAGES, ['en', 'fr', 'es', 'de', 'ar']);
  for (const lang of LANGUAGES) {
    assert.deepEqual(missing(lang), [], lang);
    assert.deepEqual(Object.keys(STRINGS[lang]).filter((k) => !(k in STRINGS.en)), [], `${lang} has keys English lacks`);
    for (const [key, text] of Object.entries(STRINGS.en)) {
      const names = (s) => [...new Set(s.match(/\{\w+\}/g) || [])].sort();
      assert.deepEqual(names(STRINGS[lang][key]), names(text), `${lang}.${key}`);
    }
  }
});

test('every download kind has a sentence (the Python side writes the README from them)', () => {
  const kinds = ['synthetic_microdata', 'synthetic_microdata_long', 'aggregates_tsv', 'aggregates_csv', 'aggregates_tidy',
    'evaluation', 'codebook', 'readme', 'licence'];
  for (const lang of LANGUAGES) for (const kind of kinds) assert.ok(STRINGS[lang]['download_' + kind], `${lang} ${kind}`);
});

test('first strong direction', () => {
  assert.equal(firstStrongDirection('48 and over'), 'ltr');
  assert.equal(firstStrongDirection('48 فأكثر'), 'rtl');
  assert.equal(firstStrongDirection('9–17'), null);
});

test('labels are isolated in their own direction in RTL pages only; digit-only labels read left to right', () => {
  assert.equal(isolateText('48 and over', 'rtl'), LRI + '48 and over' + PDI);
  assert.equal(isolateText('أنثى', 'rtl'), RLI + 'أنثى' + PDI);
  assert.equal(isolateText('9–17', 'rtl'), LRI + '9–17' + PDI);
  assert.equal(isolateText('48 and over', 'ltr'), '48 and over');
});

test('Arabic numbers and ranges are isolated, ranges as one left-to-right unit', () => {
  const ar = new Formatter('ar');
  const n = ar.int(35719);
  assert.ok(n.startsWith(LRI) && n.endsWith(PDI));
  assert.equal(/[\u061C\u200E\u200F]/.test(ar.signed(-34, 0) + ar.pct(-1.8, true)), false);  // no Intl marks inside
  const range = ar.range(9, 17);
  assert.ok(range.startsWith(LRI) && range.endsWith(PDI));
  const inner = stripIsolates(range);
  assert.ok(inner.indexOf(stripIsolates(ar.int(9))) < inner.indexOf(stripIsolates(ar.int(17))));
  assert.equal(new Formatter('en').range(9, 17), '9–17');
  assert.equal(new Formatter('de').int(35719), '35.719');
});

test('Latin fragments of Arabic sentences are isolated, placeholders untouched', () => {
  const text = t('ar', 'mode_k_anonymity', { k: '5' });
  assert.ok(text.includes(LRI + 'k\u00a0=\u00a05' + PDI), JSON.stringify(text));  // no line break inside
  assert.equal(t('en', 'mode_k_anonymity', { k: '5' }).includes(LRI), false);
});

test('country names come from Intl in the page language, unknown codes stay codes', () => {
  assert.equal(regionNamer('de')('NP'), 'Nepal');
  assert.equal(regionNamer('fr')('CI'), 'Côte d’Ivoire');
  assert.equal(regionNamer('en')('12'), '12');
  assert.equal(NUMERIC_BY_ALPHA2.get('NP'), '524');
});

test('map classes follow official counts on a log scale', () => {
  const bins = mapBins([5, 50, 500, 5000]);
  assert.equal(bins[bins.length - 1], 5000);
  assert.deepEqual(bins, [...bins].sort((a, b) => a - b));
  assert.equal(binClass({ state: 'value', count: 5 }, bins), 'bin-0');
  assert.equal(binClass({ state: 'value', count: 5000 }, bins), 'bin-' + (bins.length - 1));
  assert.equal(binClass({ state: 'lt_k', count: null }, bins), 'lt-k');
});
