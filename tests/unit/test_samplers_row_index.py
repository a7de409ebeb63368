"""RowIndex answers support and candidate-count questions exactly, in every representation."""

from __future__ import annotations

import numpy as np
import pytest
from _samplers_testdata import DENSE_CHOICES, Table, random_table, tables
from hypothesis import given, settings
from hypothesis import strategies as st

from ctdc_spark.synthesize._row_index import LocalKind, RowIndex, Rows, estimate_row_index_bytes
from tests.oracle import support

SETTINGS = settings(max_examples=60, deadline=None)


def _random_sets(table: Table, rng: np.random.Generator, n: int) -> list[list[int]]:
    """Attribute sets with at most one attribute per column, often drawn from real records."""
    out: list[list[int]] = [[]]
    for _ in range(n):
        if table.records and rng.random() < 0.7:
            rec = table.records[rng.integers(len(table.records))]
            chosen = [a for a in rec if rng.random() < 0.6]
        else:
            chosen = []
            for c in range(table.n_columns):
                attrs = np.flatnonzero(table.attr_column == c)
                if rng.random() < 0.5:
                    chosen.append(int(rng.choice(attrs)))
        out.append(sorted(chosen))
    return out


@SETTINGS
@given(table=tables(), seed=st.integers(0, 2**32 - 1))
def test_support_and_counts_match_the_reference(table: Table, seed: int) -> None:
    rng = np.random.default_rng(seed)
    all_attrs = np.arange(table.n_attributes, dtype=np.int32)
    for dense in DENSE_CHOICES:
        index = table.index(dense)
        for attrs in _random_sets(table, rng, 8):
            assert index.support_of(attrs) == table.support(attrs)
            rows = index.rows_of(attrs)
            expected = [
                table.support([*attrs, int(a)]) if a not in attrs else table.support(attrs) for a in all_attrs
            ]
            assert index.count_all(rows).tolist() == expected
            assert index.count_each(rows, all_attrs).tolist() == expected
            picked = rng.choice(all_attrs, size=min(3, len(all_attrs)), replace=False).astype(np.int32)
            assert index.counts(rows, picked).tolist() == [expected[a] for a in picked]


@SETTINGS
@given(table=tables())
def test_empty_tokens_are_the_records_without_a_value_in_the_column(table: Table) -> None:
    for dense in DENSE_CHOICES:
        index = table.index(dense)
        for c in range(table.n_columns):
            without = table.rows_without_column(c)
            assert index.support_of([index.empty_token(c)]) == len(without)
            # EMPTY combined with an attribute of another column: records of both.
            for a in np.flatnonzero(table.attr_column != c)[:3]:
                expected = support([table.records[i] for i in without], [a])
                assert index.support_of([int(a), index.empty_token(c)]) == expected


@SETTINGS
@given(table=tables())
def test_arrays_round_trip_and_memory_bound(table: Table) -> None:
    index = table.index()
    rebuilt = RowIndex.from_arrays({k: v.copy() for k, v in index.to_arrays().items()})
    rows = rebuilt.rows_of(table.records[0])
    assert rebuilt.count_all(rows).tolist() == index.count_all(index.rows_of(table.records[0])).tolist()
    bound = estimate_row_index_bytes(
        len(table.records), table.n_attributes, len(table.indices), table.n_columns
    )
    assert index.nbytes <= bound


def test_memory_bound_holds_for_a_large_sparse_and_dense_mix() -> None:
    table = random_table(seed=3, n_records=5000, n_values=[2, 3, 30, 60, 4, 1], empty_prob=0.3, skew=1.5)
    index = table.index()
    bound = estimate_row_index_bytes(5000, table.n_attributes, len(table.indices), table.n_columns)
    assert index.nbytes <= bound
    assert index.nbytes > bound // 4  # the bound is not wildly loose


@pytest.mark.parametrize(
    ("indptr", "indices", "attr_column", "message"),
    [
        ([0, 2], [1, 0], [0, 1], "strictly increasing"),
        ([0, 2], [0, 1], [0, 0], "more than one attribute in the same column"),
        ([0, 1], [5], [0, 1], r"\[0, n_attributes\)"),
        ([0, 3], [0, 1], [0, 1], "indptr"),
    ],
    ids=["unsorted", "two_values_one_column", "id_out_of_range", "bad_indptr"],
)
def test_malformed_records_are_rejected(
    indptr: list[int], indices: list[int], attr_column: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RowIndex.from_csr(indptr, indices, len(attr_column), attr_column)


def test_from_arrays_names_missing_keys() -> None:
    arrays = RowIndex.from_csr([0, 1], [0], 1, [0]).to_arrays()
    del arrays["bitmaps"]
    with pytest.raises(ValueError, match="bitmaps"):
        RowIndex.from_arrays(arrays)


@SETTINGS
@given(table=tables(), seed=st.integers(0, 2**32 - 1))
def test_single_token_counts_and_local_tables_match_the_reference(table: Table, seed: int) -> None:
    rng = np.random.default_rng(seed)
    index = table.index()
    all_attrs = np.arange(table.n_attributes, dtype=np.int32)
    for a in range(table.n_attributes):
        pairs = index.single_token_counts(a)
        assert pairs is not None
        assert pairs.tolist() == [table.support({a, int(b)}) for b in all_attrs]
    for c in range(table.n_columns):
        empty = index.single_token_counts(index.empty_token(c))
        assert empty is not None
        without = table.rows_without_column(c)
        assert empty.tolist() == [support([table.records[i] for i in without], [b]) for b in all_attrs]
    for dense in DENSE_CHOICES:
        index = table.index(dense)
        for attrs in _random_sets(table, rng, 5):
            rows = index.rows_of(attrs)
            some = np.flatnonzero(rng.random(table.n_attributes) < 0.3).astype(np.int32)
            kinds: tuple[LocalKind, ...] = ("cells", "candidates", "auto")
            for kind in kinds:
                local = index.local_table(rows, some, kind=kind)
                assert local.size == table.support(attrs)
                expected = [table.support({*attrs, int(b)}) for b in all_attrs]
                assert local.counts(all_attrs).tolist() == expected
                c = int(rng.integers(table.n_columns))
                empty_rows = [table.records[i] for i in table.rows_without_column(c)]
                narrowed = local.restrict(index.empty_token(c))
                assert narrowed.size == support(empty_rows, attrs)
                b = int(rng.integers(table.n_attributes))
                assert local.restrict(b).size == table.support({*attrs, b})


def test_arrays_are_flat_and_survive_a_bytes_round_trip() -> None:
    table = random_table(seed=9, n_records=300, n_values=[3, 4, 2, 50], empty_prob=0.2, skew=1.0)
    index = table.index()
    arrays = index.to_arrays()
    assert all(a.ndim == 1 for a in arrays.values())
    # As an Arrow or pickle transport would: raw bytes back into read-only flat arrays.
    shipped = {k: np.frombuffer(a.tobytes(), dtype=a.dtype) for k, a in arrays.items()}
    rebuilt = RowIndex.from_arrays(shipped)
    for record in table.records[:20]:
        rows = rebuilt.rows_of(record)
        assert rows.size == table.support(record)
        assert rebuilt.count_all(rows).tolist() == index.count_all(index.rows_of(record)).tolist()
    assert rebuilt.single_token_counts(0) is not None


def test_large_id_row_sets_count_dense_candidates_one_by_one() -> None:
    # Dense tokens against a few thousand ids take the per-candidate loop (too many cells for the
    # 2-D bit test); the counts must still match a scan of the records.
    table = random_table(seed=21, n_records=6000, n_values=[2, 2, 3, 2], empty_prob=0.1, skew=0.3)
    index = table.index(0)  # every token a bitmap
    ids = np.flatnonzero(np.arange(len(table.records)) % 2 == 0).astype(np.int32)
    rows = Rows(len(ids), ids=ids)
    attrs = np.arange(table.n_attributes, dtype=np.int32)
    expected = [support([table.records[i] for i in ids.tolist()], [a]) for a in attrs.tolist()]
    assert index.count_each(rows, attrs).tolist() == expected
    assert index.count_all(rows).tolist() == expected
