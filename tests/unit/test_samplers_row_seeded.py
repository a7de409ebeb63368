"""row_seeded / value_seeded engines: the reference's draws exactly, k-safety, exact counts, determinism.

docs/spec.md 4.1 and 4.3. Driven by the same record streams, the engines must make the reference's
(:mod:`tests.oracle`) draws one for one, whatever their cache, index or local tables do.
"""

from __future__ import annotations

import numpy as np
import pytest
from _samplers_testdata import (
    ENGINE_VARIANTS,
    Table,
    make_lookup,
    random_table,
    records_of,
    reportable,
    same_batch,
    tables,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from ctdc_spark._random import RecordStream, stage_key, uniforms
from ctdc_spark.synthesize._batch import SyntheticBatch, concat_batches, shard_record_id, shard_record_ids
from ctdc_spark.synthesize._row_seeded import (
    OversamplingControl,
    consolidate,
    consolidation_available,
    row_seeded_seeds,
)
from ctdc_spark.synthesize._sampler import KSafeSampler, sample_weighted
from tests import oracle

SETTINGS = settings(max_examples=60, deadline=None)
ks = st.integers(1, 4)


def _phase1(
    table: Table, k: int, seed: int, *, cache: int = 1000, dense: int | None = None
) -> SyntheticBatch:
    sampler = KSafeSampler(table.index(dense), k, cache)
    ids = np.arange(len(table.records), dtype=np.int64)
    return row_seeded_seeds(sampler, table.indptr, table.indices, ids, stage_key(seed, "row_seeded"))


def _consolidation_quota(table: Table, k: int, phase1: SyntheticBatch) -> np.ndarray:
    single = table.single()
    return consolidation_available(single, single - phase1.attribute_counts(table.n_attributes), k)


def _suppressed(batch: SyntheticBatch, targets: np.ndarray, key: int) -> SyntheticBatch:
    """Phase 3 by the reference, visiting records in the library's order: ascending (uniform, id)."""
    order = np.lexsort((batch.record_ids, uniforms(key, batch.record_ids)))
    kept = oracle.suppress(records_of(batch), targets, order.tolist())
    return SyntheticBatch.from_records([r for _, r in kept], batch.record_ids[[i for i, _ in kept]])


def _row_seeded(table: Table, k: int, seed: int) -> tuple[SyntheticBatch, SyntheticBatch, SyntheticBatch]:
    phase1 = _phase1(table, k, seed)
    sampler = KSafeSampler(table.index(), k, 1000)
    extra = consolidate(sampler, _consolidation_quota(table, k, phase1), stage_key(seed, "consolidate"), 0)
    targets = oracle.rounded_down(table.single(), k)
    final = _suppressed(concat_batches([phase1, extra]), targets, stage_key(seed, "suppress"))
    return phase1, extra, final


def _reference(table: Table) -> oracle.PartialSupports:
    return oracle.PartialSupports(table.indptr, table.indices, table.n_attributes)


def _assert_k_safe(table: Table, records: list[list[int]], k: int) -> None:
    cols = table.attr_column
    for rec in records:
        assert len({int(cols[a]) for a in rec}) == len(rec), "two attributes of one column"
        if rec:
            assert table.support(rec) >= k, "a synthetic record is rare (or absent) in the sensitive data"
        for sub in oracle.sub_combinations(rec, 3):
            assert table.support(sub) >= k, "a rare sub-combination leaked"


@SETTINGS
@given(table=tables(), k=ks, seed=st.integers(0, 2**63))
def test_phase1_records_are_maximal_k_safe_subsets_of_their_seed(table: Table, k: int, seed: int) -> None:
    batch = _phase1(table, k, seed)
    assert batch.record_ids.tolist() == list(range(len(table.records)))
    records = records_of(batch)
    _assert_k_safe(table, records, k)
    for rec, original in zip(records, table.records, strict=True):
        assert set(rec) <= set(original)
        # The loop stops only when no remaining seed attribute keeps the record k-safe.
        for a in set(original) - set(rec):
            assert table.support([*rec, a]) < k


@SETTINGS
@given(table=tables(), k=ks, seed=st.integers(0, 2**63))
def test_phase1_and_consolidation_make_the_reference_draws(table: Table, k: int, seed: int) -> None:
    key = stage_key(seed, "row_seeded")
    expected = oracle.seeded_records(
        _reference(table), table.records, table.attr_column, k, lambda i: RecordStream(key, i).random
    )
    phase1 = _phase1(table, k, seed)
    assert records_of(phase1) == expected
    quota = _consolidation_quota(table, k, phase1)
    assert (
        quota.tolist()
        == oracle.consolidation_quota(table.single(), phase1.attribute_counts(len(quota)), k).tolist()
    )
    key = stage_key(seed, "consolidate")
    extra = consolidate(KSafeSampler(table.index(), k, 100), quota, key, 2)
    assert records_of(extra) == oracle.consolidate(
        _reference(table),
        quota,
        table.attr_column,
        k,
        lambda j: RecordStream(key, shard_record_id(2, j)).random,
    )


@SETTINGS
@given(table=tables(), k=ks, seed=st.integers(0, 2**63))
def test_row_seeded_counts_equal_reported_counts_exactly(table: Table, k: int, seed: int) -> None:
    phase1, extra, final = _row_seeded(table, k, seed)
    quota = _consolidation_quota(table, k, phase1)
    assert extra.attribute_counts(table.n_attributes).tolist() == quota.tolist()
    assert all(len(r) > 0 for r in records_of(extra)), "every consolidation record places something"
    assert extra.record_ids.tolist() == shard_record_ids(0, len(extra)).tolist()
    assert (
        final.attribute_counts(table.n_attributes).tolist() == oracle.rounded_down(table.single(), k).tolist()
    )
    assert all(len(r) > 0 for r in records_of(final))
    _assert_k_safe(table, records_of(extra) + records_of(final), k)


@settings(max_examples=30, deadline=None)
@given(table=tables(), k=ks, seed=st.integers(0, 2**63), cut=st.floats(0, 1))
def test_phase1_is_independent_of_batching_cache_and_representation(
    table: Table, k: int, seed: int, cut: float
) -> None:
    reference = _phase1(table, k, seed)
    n = len(table.records)
    ids = np.arange(n, dtype=np.int64)
    key = stage_key(seed, "row_seeded")
    for index in table.index_variants():
        for cache, nbytes, local, kind in ENGINE_VARIANTS:
            sampler = KSafeSampler(
                index, k, cache, cache_max_bytes=nbytes, local_max_rows=local, local_kind=kind
            )
            assert same_batch(row_seeded_seeds(sampler, table.indptr, table.indices, ids, key), reference)
    # Two tasks with their own samplers, each on one chunk of the seeds.
    split = int(cut * n)
    parts = []
    for lo, hi in [(0, split), (split, n)]:
        sampler = KSafeSampler(table.index(), k, 50)
        indptr = table.indptr[lo : hi + 1] - table.indptr[lo]
        indices = table.indices[table.indptr[lo] : table.indptr[hi]]
        parts.append(row_seeded_seeds(sampler, indptr, indices, ids[lo:hi], key))
    assert same_batch(concat_batches(parts), reference)


@settings(max_examples=30, deadline=None)
@given(table=tables(), k=ks, seed=st.integers(0, 2**63))
def test_consolidation_is_independent_of_cache_and_representation(table: Table, k: int, seed: int) -> None:
    quota = _consolidation_quota(table, k, _phase1(table, k, seed))
    key = stage_key(seed, "consolidate")
    outputs = [
        consolidate(
            KSafeSampler(index, k, cache, cache_max_bytes=nbytes, local_max_rows=local, local_kind=kind),
            quota,
            key,
            3,
        )
        for index in table.index_variants()
        for cache, nbytes, local, kind in ENGINE_VARIANTS
    ]
    assert all(same_batch(o, outputs[0]) for o in outputs)


@SETTINGS
@given(table=tables(), k=ks, seed=st.integers(0, 2**63))
def test_stateless_sampler_call_reproduces_phase1(table: Table, k: int, seed: int) -> None:
    sampler = KSafeSampler(table.index(), k, 0)
    key = stage_key(seed, "row_seeded")
    batch = _phase1(table, k, seed)
    for i, original in enumerate(table.records):
        stream = RecordStream(key, i)
        record: list[int] = []
        while (a := sampler.sample_next_attr_from_seed(record, np.array(original), None, stream)) is not None:
            record.append(a)
        assert sorted(record) == batch.record(i).tolist()


@given(weights=st.lists(st.integers(0, 6), min_size=1, max_size=8))
def test_sample_weighted_picks_each_key_exactly_weight_times_over_a_grid(weights: list[int]) -> None:
    w = np.array(weights)
    total = int(w.sum())
    if total == 0:
        assert sample_weighted(w, 0.5) == -1
        return
    picks = [sample_weighted(w, (j + 0.5) / total) for j in range(total)]
    assert np.bincount(picks, minlength=len(w)).tolist() == weights
    # r = 1 goes to the lightest non-zero key, ties to the lowest index.
    lightest = min((x, i) for i, x in enumerate(weights) if x > 0)[1]
    assert sample_weighted(w, 0.0) == lightest


def test_different_keys_give_different_records() -> None:
    table = random_table(seed=11, n_records=300, n_values=[3, 4, 2, 5, 3], empty_prob=0.1, skew=1.0)
    a, b = _phase1(table, 3, seed=1), _phase1(table, 3, seed=2)
    assert not same_batch(a, b)
    index = table.index()
    quota = _consolidation_quota(table, 3, a)
    x = consolidate(KSafeSampler(index, 3, 100), quota, stage_key(1, "consolidate"), 0)
    y = consolidate(KSafeSampler(index, 3, 100), quota, stage_key(2, "consolidate"), 0)
    assert not same_batch(x, y)
    z = consolidate(KSafeSampler(index, 3, 100), quota, stage_key(1, "consolidate"), 1)
    assert records_of(x) != records_of(z), "shards must draw independent streams"


def test_consolidation_accepts_a_dict_quota_and_rejects_unplaceable_attributes() -> None:
    table = random_table(seed=5, n_records=40, n_values=[2, 3], empty_prob=0.0, skew=0.0)
    index = table.index()
    sampler = KSafeSampler(index, 2, 10)
    quota = {int(a): 2 for a in np.flatnonzero(table.single() >= 2)}
    batch = consolidate(sampler, quota, 7, 0)
    assert {int(a): int(c) for a, c in enumerate(batch.attribute_counts(index.n_attributes)) if c} == quota
    rare = np.zeros(index.n_attributes, dtype=np.int64)
    rare[int(np.argmin(np.where(table.single() > 0, table.single(), 10**9)))] = 1
    with pytest.raises(ValueError, match="support below k"):
        consolidate(KSafeSampler(index, 10**6, 10), rare, 7, 0)


@SETTINGS
@given(table=tables(), k=ks, seed=st.integers(0, 2**63), length=st.integers(2, 3), tries=st.integers(1, 3))
def test_value_seeded_oversampling_respects_every_allowance(
    table: Table, k: int, seed: int, length: int, tries: int
) -> None:
    aggregates = reportable(table, k, length)
    lookup = make_lookup(aggregates, table.n_attributes, length)
    single = table.single()
    quota = consolidation_available(single, single, k)  # value_seeded without the quirk: floor(single/k)*k
    ratio, scale = 0.1, 0.5
    control = OversamplingControl(lookup, length, ratio, tries=tries, allowance_scale=scale)
    batch = consolidate(
        KSafeSampler(table.index(), k, 100), quota, stage_key(seed, "value_seeded"), 0, oversampling=control
    )
    assert batch.attribute_counts(table.n_attributes).tolist() == quota.tolist()
    records = records_of(batch)
    _assert_k_safe(table, records, k)
    for combo, count in oracle.count_combinations(records, length).items():
        if len(combo) >= 2:
            assert count <= aggregates[combo] * (1 + ratio) * scale


def test_oversampling_control_stops_records_early() -> None:
    table = random_table(seed=2, n_records=200, n_values=[3, 3, 3], empty_prob=0.0, skew=1.0)
    k, length = 2, 2
    lookup = make_lookup(reportable(table, k, length), table.n_attributes, length)
    quota = consolidation_available(table.single(), table.single(), k)
    sampler = KSafeSampler(table.index(), k, 100)
    free = consolidate(sampler, quota, 1, 0)
    tight = consolidate(sampler, quota, 1, 0, oversampling=OversamplingControl(lookup, length, 0.0, 1, 0.2))
    assert len(tight) > len(free)


def test_stateless_sampler_never_draws_a_not_allowed_attribute() -> None:
    table = random_table(seed=8, n_records=200, n_values=[3, 3, 3], empty_prob=0.0, skew=0.0)
    sampler = KSafeSampler(table.index(), 2, 100)
    blocked = np.zeros(table.n_attributes, dtype=bool)
    blocked[[0, 4]] = True
    seed = np.arange(table.n_attributes)
    drawn = {sampler.sample_next_attr_from_seed([], seed, blocked, RecordStream(5, i)) for i in range(300)}
    assert drawn.isdisjoint({0, 4})
    assert len(drawn) > 3
