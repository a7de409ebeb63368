"""unseeded engine: one k-safe record per id, SDS' EMPTY handling and determinism (docs/spec.md 4.2)."""

from __future__ import annotations

import numpy as np
from _samplers_testdata import ENGINE_VARIANTS, Table, random_table, records_of, tables
from hypothesis import given, settings
from hypothesis import strategies as st

from ctdc_spark._random import stage_key
from ctdc_spark.synthesize._row_index import LocalKind, RowIndex
from ctdc_spark.synthesize._unseeded import unseeded
from tests.oracle import sub_combinations

SETTINGS = settings(max_examples=60, deadline=None)


def _run(
    table: Table,
    k: int,
    seed: int,
    ids: np.ndarray | None = None,
    *,
    index: RowIndex | None = None,
    engine: tuple[int, int, int, LocalKind] = (1000, 10**9, 1024, "cells"),
) -> list[list[int]]:
    record_ids = np.arange(len(table.records)) if ids is None else ids
    cache, nbytes, local, _ = engine  # unseeded always builds cells tables
    batch = unseeded(
        table.index() if index is None else index,
        k,
        record_ids,
        stage_key(seed, "unseeded"),
        cache_max_size=cache,
        cache_max_bytes=nbytes,
        local_max_rows=local,
    )
    assert batch.record_ids.tolist() == np.asarray(record_ids).tolist()
    return records_of(batch)


@SETTINGS
@given(table=tables(), k=st.integers(1, 4), seed=st.integers(0, 2**63))
def test_every_record_is_k_safe_with_one_value_per_column(table: Table, k: int, seed: int) -> None:
    records = _run(table, k, seed)
    assert len(records) == len(table.records)
    cols = table.attr_column
    for rec in records:
        assert len({int(cols[a]) for a in rec}) == len(rec)
        if rec:
            assert table.support(rec) >= k
        for sub in sub_combinations(rec, 2):
            assert table.support(sub) >= k


@settings(max_examples=30, deadline=None)
@given(table=tables(), k=st.integers(1, 4), seed=st.integers(0, 2**63), cut=st.floats(0, 1))
def test_output_is_independent_of_batching_cache_and_representation(
    table: Table, k: int, seed: int, cut: float
) -> None:
    reference = _run(table, k, seed)
    for index in table.index_variants():
        for engine in ENGINE_VARIANTS:
            assert _run(table, k, seed, index=index, engine=engine) == reference
    n = len(table.records)
    split = int(cut * n)
    ids = np.arange(n)
    assert _run(table, k, seed, ids[:split]) + _run(table, k, seed, ids[split:]) == reference


def test_k_one_reproduces_the_columns_of_real_records() -> None:
    # With k = 1 nothing is rare: each record follows one path of real rows to the end, so every
    # synthetic record is exactly some sensitive record.
    table = random_table(seed=4, n_records=80, n_values=[3, 2, 4], empty_prob=0.3, skew=1.0)
    real = {tuple(r) for r in table.records}
    assert all(tuple(r) in real for r in _run(table, 1, seed=8))


def test_choosing_empty_keeps_only_truly_empty_rows() -> None:
    # Column 0: x1 in 6 records, two rare values (1 record each), never empty. Column 1: y1 everywhere.
    # With k = 2, drawing EMPTY in column 0 (pool = the 2 rare rows) leaves no truly empty row, so
    # the record can no longer take y1: SDS yields an empty record. The 2020 code kept the rare rows
    # (2 rows hold y1, so y1 would still be drawable) and never produced an empty record here.
    records = [[0, 3]] * 6 + [[1, 3], [2, 3]]
    table = Table([list(r) for r in records], np.array([0, 0, 0, 1], dtype=np.int32))
    out = _run(table, 2, seed=3, ids=np.arange(300))
    assert [] in out
    assert {tuple(r) for r in out} <= {(), (0, 3), (3,)}


def test_different_keys_give_different_records() -> None:
    table = random_table(seed=12, n_records=200, n_values=[3, 4, 2, 5], empty_prob=0.2, skew=1.0)
    assert _run(table, 3, seed=1) != _run(table, 3, seed=2)


def test_stable_ids_not_positions_drive_the_draws() -> None:
    table = random_table(seed=13, n_records=60, n_values=[3, 3, 3], empty_prob=0.2, skew=0.5)
    forward = _run(table, 2, seed=5, ids=np.arange(60))
    backward = _run(table, 2, seed=5, ids=np.arange(60)[::-1])
    assert backward == forward[::-1]
