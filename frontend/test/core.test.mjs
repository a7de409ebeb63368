// Unit tests of the pure query/statistics core (run: npm test, or node --test test/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model, Query, MODEL_FORMAT, agrees, agreementLight, distanceToInterval } from '../src/core.js';

const RULE_K10 = { interval: 10, relative: 0.1, absolute: 10 };

test('an official count stands for [a, a + interval - 1]', () => {
  assert.equal(distanceToInterval(25, 20, RULE_K10), 0);
  assert.equal(distanceToInterval(29, 20, RULE_K10), 0);
  assert.equal(distanceToInterval(31, 20, RULE_K10), 2);
  assert.equal(distanceToInterval(15, 20, RULE_K10), 5);
});

test('the agreement rule is relative: a 2% gap on a large count agrees, 92 vs 470 does not', () => {
  assert.equal(agrees(6234, 6360, RULE_K10), true);    // 2% below
  assert.equal(agrees(92, 470, RULE_K10), false);      // 80% below
  assert.equal(agreementLight(6234, 6360, RULE_K10), 'amber');
  assert.equal(agreementLight(92, 470, RULE_K10), 'red');
  assert.equal(agreementLight(6365, 6360, RULE_K10), 'green');
});

test('the absolute floor keeps small counts from failing on rounding noise', () => {
  // 10% of 20 is 2, but the floor is 10: 9 below the interval still agrees, 11 below does not.
  assert.equal(agrees(11, 20, RULE_K10), true);
  assert.equal(agrees(9, 20, RULE_K10), false);
  // the boundary itself agrees (<=)
  assert.equal(agrees(10, 20, RULE_K10), true);
  const dp = { interval: 1, relative: 0.1, absolute: 0 };
  assert.equal(agrees(110, 100, dp), true);
  assert.equal(agrees(111, 100, dp), false);
});

/** A model of 6 rows, columns A (values x, y) and B (values p, q), k = 2, L = 2, built as _explorer.py does. */
function tinyModel() {
  const rows = [['x', 'p'], ['x', 'p'], ['x', 'q'], ['y', 'p'], ['y', 'q'], ['y', 'q']];
  const columns = [
    { id: 'A', values: [{ code: 1, value: 'x', attr: 0 }, { code: 2, value: 'y', attr: 1 }] },
    { id: 'B', values: [{ code: 1, value: 'p', attr: 2 }, { code: 2, value: 'q', attr: 3 }] },
  ];
  const codes = [0, 1].map((ci) => {
    const arr = new Uint16Array(rows.map((r) => (r[ci] === columns[ci].values[0].value ? 1 : 2)));
    return Buffer.from(arr.buffer).toString('base64');
  });
  const u16 = (xs) => Buffer.from(new Uint16Array(xs).buffer).toString('base64');
  const u32 = (xs) => Buffer.from(new Uint32Array(xs).buffer).toString('base64');
  return new Model({
    format: MODEL_FORMAT,
    meta: { k: 2, L: 2, privacy_mode: 'k_anonymity', agreement: { interval: 2, relative: 0.1, absolute: 2 } },
    columns,
    attrs: [[0, 0], [0, 1], [1, 0], [1, 1]],
    visuals: [],
    default_visuals: [],
    pages: [],
    stats: {},
    downloads: [],
    synthetic: { n: rows.length, codes },
    aggregates: {
      record_count: 6,
      tables: [
        { length: 1, m: 4, width: 2, ranks: u16([0, 1, 2, 3]), counts: u32([2, 4, 2, 2]) },
        { length: 2, m: 2, width: 2, ranks: u16([0, 2, 1, 3]), counts: u32([2, 2]) },
      ],
    },
  });
}

test('cross-filter counts ignore the column\'s own filter', () => {
  const model = tinyModel();
  const query = new Query(model);
  assert.deepEqual(Array.from(query.columnCounts(0)), [3, 3]);
  query.setSelection([0]);  // A = x
  assert.equal(query.matchCount, 3);
  assert.deepEqual(Array.from(query.columnCounts(0)), [3, 3]);  // own column unfiltered
  assert.deepEqual(Array.from(query.columnCounts(1)), [2, 1]);  // B under A = x
});

test('official states: value with its interval, fewer than k, not available', () => {
  const model = tinyModel();
  const query = new Query(model);
  query.setSelection([0]);
  const p = query.bar(2);  // A = x and B = p: official 2, synthetic 2
  assert.equal(p.off.state, 'value');
  assert.deepEqual([p.off.low, p.off.high], [2, 3]);
  assert.equal(p.agree, 'green');
  const q = query.bar(3);  // A = x and B = q: absent -> fewer than k
  assert.equal(q.off.state, 'lt_k');
  assert.equal(q.agree, 'grey');
  assert.equal(model.official([0, 2, 3]).state, 'na');  // longer than L
});

test('bitset and histogram strategies count the same', () => {
  const model = tinyModel();
  const a = new Query(model);
  const b = new Query(model);
  a.setStrategy('bitset');
  b.setStrategy('histogram');
  for (const sel of [[], [0], [1], [3], [0, 3]]) {
    a.setSelection(sel);
    b.setSelection(sel);
    for (const ci of [0, 1]) assert.deepEqual(Array.from(a.columnCounts(ci)), Array.from(b.columnCounts(ci)));
  }
});
