"""aggregate_seeded engine: never creates an unreported short combination (docs/spec.md 4.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _samplers_testdata import Table, make_lookup, random_table, records_of, reportable, same_batch, tables
from hypothesis import given, settings
from hypothesis import strategies as st

from ctdc_spark._random import stage_key
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout
from ctdc_spark.synthesize._aggregate_seeded import (
    _AggregateSeeded,
    _SubWeightsMemo,
    aggregate_seeded,
    r8_percentile,
    round_half_away,
)
from ctdc_spark.synthesize._batch import SyntheticBatch, shard_record_ids
from ctdc_spark.synthesize._combos import IndexedLookup
from tests import oracle

SETTINGS = settings(max_examples=60, deadline=None)


def _ones(
    aggregates: dict[tuple[int, ...], int], n_attributes: int, scale: float | None = None
) -> np.ndarray:
    out = np.zeros(n_attributes, dtype=np.int64)
    for combo, count in aggregates.items():
        if len(combo) == 1:
            out[combo[0]] = math.ceil(count * scale) if scale else count
    return out


def _run(
    table: Table, aggregates: dict[tuple[int, ...], int], length: int, seed: int, **kwargs: object
) -> SyntheticBatch:
    params: dict[str, object] = {
        "available_init": _ones(aggregates, table.n_attributes, kwargs.get("count_scale")),  # type: ignore[arg-type]
        "reporting_length": length,
        "use_synthetic_counts": False,
        "weight_selection_percentile": 95.0,
        "target_number_of_records": None,
        "key": stage_key(seed, "aggregate_seeded"),
        "shard_id": 0,
    }
    params.update(kwargs)
    lookup = make_lookup(aggregates, table.n_attributes, length)
    return aggregate_seeded(lookup, table.attr_column, **params)  # type: ignore[arg-type]


def _assert_no_unreported_short_combination(
    table: Table, records: list[list[int]], aggregates: dict[tuple[int, ...], int], length: int
) -> None:
    cols = table.attr_column
    for rec in records:
        assert len({int(cols[a]) for a in rec}) == len(rec)
        for sub in oracle.sub_combinations(rec, length):
            assert sub in aggregates, "an unreported combination of length <= L was fabricated"


@SETTINGS
@given(
    table=tables(),
    k=st.integers(1, 4),
    length=st.integers(1, 3),
    seed=st.integers(0, 2**63),
    use_synthetic=st.booleans(),
    percentile=st.sampled_from([0.0, 50.0, 95.0, 100.0]),
)
def test_records_use_reported_combinations_and_place_the_quota_exactly(
    *, table: Table, k: int, length: int, seed: int, use_synthetic: bool, percentile: float
) -> None:
    aggregates = reportable(table, k, length)
    batch = _run(
        table,
        aggregates,
        length,
        seed,
        use_synthetic_counts=use_synthetic,
        weight_selection_percentile=percentile,
    )
    records = records_of(batch)
    _assert_no_unreported_short_combination(table, records, aggregates, length)
    assert (
        batch.attribute_counts(table.n_attributes).tolist() == _ones(aggregates, table.n_attributes).tolist()
    )
    assert all(records), "without a target every record places at least one attribute"
    assert batch.record_ids.tolist() == shard_record_ids(0, len(batch)).tolist()


@SETTINGS
@given(
    table=tables(),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**63),
    target=st.integers(0, 120),
    use_synthetic=st.booleans(),
)
def test_target_builds_exactly_that_many_records_resetting_the_quota(
    table: Table, k: int, seed: int, target: int, use_synthetic: bool
) -> None:
    aggregates = reportable(table, k, 2)
    batch = _run(
        table, aggregates, 2, seed, target_number_of_records=target, use_synthetic_counts=use_synthetic
    )
    assert len(batch) == target
    _assert_no_unreported_short_combination(table, records_of(batch), aggregates, 2)
    # The records split into consecutive rounds, each placing at most the quota; a new round starts
    # exactly when the previous one has placed all of it.
    ones = _ones(aggregates, table.n_attributes)
    placed = np.zeros_like(ones)
    for rec in records_of(batch):
        if ones.any() and np.array_equal(placed, ones):
            placed[:] = 0
        placed[rec] += 1
        assert np.all(placed <= ones)


@SETTINGS
@given(table=tables(), seed=st.integers(0, 2**63), scale=st.sampled_from([0.3, 1.0, 2.5]))
def test_count_scale_scales_the_quota_and_keeps_the_guarantee(table: Table, seed: int, scale: float) -> None:
    aggregates = reportable(table, 2, 2)
    batch = _run(table, aggregates, 2, seed, count_scale=scale, use_synthetic_counts=True)
    assert (
        batch.attribute_counts(table.n_attributes).tolist()
        == _ones(aggregates, table.n_attributes, scale).tolist()
    )
    _assert_no_unreported_short_combination(table, records_of(batch), aggregates, 2)


@SETTINGS
@given(table=tables(), seed=st.integers(0, 2**63))
def test_same_key_same_output_different_shard_different_stream(table: Table, seed: int) -> None:
    aggregates = reportable(table, 2, 3)
    a = _run(table, aggregates, 3, seed)
    assert same_batch(a, _run(table, aggregates, 3, seed))
    b = _run(table, aggregates, 3, seed, shard_id=5)
    assert b.record_ids.tolist() == shard_record_ids(5, len(b)).tolist()


def test_different_keys_give_different_records() -> None:
    table = random_table(seed=21, n_records=300, n_values=[3, 4, 2, 5], empty_prob=0.1, skew=1.0)
    aggregates = reportable(table, 3, 2)
    assert records_of(_run(table, aggregates, 2, 1)) != records_of(_run(table, aggregates, 2, 2))


@SETTINGS
@given(
    table=tables(),
    length=st.integers(1, 3),
    use_synthetic=st.booleans(),
    percentile=st.sampled_from([0.0, 37.5, 95.0, 100.0]),
    data=st.data(),
)
def test_candidate_weights_match_the_reference(
    table: Table, length: int, use_synthetic: bool, percentile: float, data: st.DataObject
) -> None:
    aggregates = reportable(table, 1, 6)
    lookup = IndexedLookup(make_lookup(aggregates, table.n_attributes, 6))
    state = _AggregateSeeded(
        lookup=lookup,
        attr_column=table.attr_column,
        available_init=_ones(aggregates, table.n_attributes),
        reporting_length=length,
        use_synthetic_counts=use_synthetic,
        percentile=percentile,
    )
    synthetic: dict[tuple[int, ...], int] = {}
    if use_synthetic:
        assert state.synthetic is not None
        for combo in data.draw(st.lists(st.sampled_from(sorted(aggregates)), max_size=10)):
            synthetic[combo] = synthetic.get(combo, 0) + 1
            state.synthetic[lookup.positions(np.array([combo]))[0]] += 1
    record = sorted(data.draw(st.sampled_from(table.records)))
    record = record[: data.draw(st.integers(0, len(record)))]
    used = {int(table.attr_column[a]) for a in record}
    candidates = np.array(
        [a for a in range(table.n_attributes) if table.attr_column[a] not in used], np.int32
    )

    expected = [
        oracle.aggregate_seeded_weight(
            aggregates, synthetic, record, a, reporting_length=length, percentile=percentile
        )
        for a in candidates.tolist()
    ]
    got = state.candidate_weights(np.array(record, dtype=np.int32), candidates)
    assert got.tolist() == expected


@given(values=st.lists(st.integers(1, 1000), min_size=1, max_size=30), percentile=st.floats(0, 100))
def test_r8_percentile_matches_numpy_median_unbiased(values: list[int], percentile: float) -> None:
    x = np.sort(np.array(values, dtype=float))
    expected = np.percentile(x, percentile, method="median_unbiased")
    assert r8_percentile(x[None, :], percentile)[0] == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_round_half_away_from_zero() -> None:
    assert round_half_away(np.array([0.5, 1.5, 2.5, 2.4999, 3.0])).tolist() == [1, 2, 3, 2, 3]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"available_init": np.full(4, 99)}, "exceeds"),
        ({"reporting_length": 9}, "reporting_length"),
        ({"weight_selection_percentile": 120.0}, "percentile"),
        ({"shard_id": -1}, "shard"),
        ({"count_scale": 0.0}, "count_scale"),
    ],
    ids=["quota_above_reported", "length_beyond_layout", "bad_percentile", "bad_shard", "bad_scale"],
)
def test_inconsistent_inputs_are_rejected(change: dict[str, object], message: str) -> None:
    table = Table([[0, 2], [0, 3], [1, 2], [0, 2]], np.array([0, 0, 1, 1], dtype=np.int32))
    aggregates = reportable(table, 1, 2)
    with pytest.raises(ValueError, match=message):
        _run(table, aggregates, 2, 1, use_synthetic_counts=True, **change)


@SETTINGS
@given(
    table=tables(),
    length=st.integers(1, 3),
    use_synthetic=st.booleans(),
    percentile=st.sampled_from([0.0, 30.0, 95.0]),
    data=st.data(),
)
def test_incremental_step_weights_equal_the_stateless_weights(
    *, table: Table, length: int, use_synthetic: bool, percentile: float, data: st.DataObject
) -> None:
    aggregates = reportable(table, 1, length)
    ones = _ones(aggregates, table.n_attributes)
    state = _AggregateSeeded(
        lookup=IndexedLookup(make_lookup(aggregates, table.n_attributes, length)),
        attr_column=table.attr_column,
        available_init=ones,
        reporting_length=length,
        use_synthetic_counts=use_synthetic,
        percentile=percentile,
    )
    for _ in range(3):  # a few records, so synthetic counts move between them
        memo = _SubWeightsMemo()
        record: list[int] = []
        while True:
            used = {int(table.attr_column[a]) for a in record}
            candidates = np.array(
                [a for a in range(table.n_attributes) if ones[a] > 0 and table.attr_column[a] not in used],
                dtype=np.int32,
            )
            rec = np.array(record, dtype=np.int32)
            expected = state.candidate_weights(rec, candidates)
            assert state.step_weights(rec, candidates, memo).tolist() == expected.tolist()
            eligible = np.flatnonzero(expected > 0)
            if not len(eligible):
                break
            attr = int(candidates[data.draw(st.sampled_from(eligible.tolist()))])
            if state.synthetic is not None:
                state._count_synthetic(rec, attr)
            record = sorted([*record, attr])


def test_positions_work_for_keys_wider_than_one_word() -> None:
    layout = KeyLayout(3000, 8)  # 12-bit slots, 5 per word: two words per key
    assert layout.n_words == 2
    combos = np.array(
        [[1, 5, 2999, -1, -1, -1, -1, -1], [0, 1, 2, 3, 4, 5, 6, 7], [7, 8, -1, -1, -1, -1, -1, -1]]
    )
    lookup = CombinationLookup(layout, layout.pack(combos), np.array([30, 20, 10]))
    indexed = IndexedLookup(lookup)
    probe = np.array(
        [[0, 1, 2, 3, 4, 5, 6, 7], [1, 5, 2998, -1, -1, -1, -1, -1], [7, 8, -1, -1, -1, -1, -1, -1]]
    )
    assert indexed.count_of(probe).tolist() == [20, 0, 10]
    assert indexed.count_of(probe).tolist() == lookup.counts(probe).tolist()
