"""Random small tables for the sampler tests (no Spark, no sampler code).

Their expected values come from the reference implementation, :mod:`tests.oracle`, so the tests
check the vectorised engines against an independent formulation of docs/spec.md sections 1.2 and 4.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from ctdc_spark.combos.keys import CombinationLookup, KeyLayout
from ctdc_spark.synthesize._batch import SyntheticBatch
from ctdc_spark.synthesize._row_index import LocalKind, RowIndex
from tests.oracle import count_combinations, protect, support

# Force every token to one representation (0: all bitmaps; huge: all sorted ids) or let the index
# choose; results must not depend on it.
DENSE_CHOICES = (None, 0, 10**9)

# (cache_max_size, cache_max_bytes, local_max_rows, local_kind): no cache, a tiny LRU, a
# byte-starved LRU, and local tables of each kind from the first miss or only for very few rows.
# Results must not depend on any of it.
ENGINE_VARIANTS: tuple[tuple[int, int, int, LocalKind], ...] = (
    (0, 0, 0, "auto"),
    (2, 10**9, 0, "auto"),
    (10**6, 2000, 0, "auto"),
    (10**6, 10**9, 8192, "auto"),
    (10**6, 10**9, 8192, "candidates"),
    (10**6, 10**9, 5, "cells"),
)


@dataclass
class Table:
    """Sensitive records as sorted attribute-id lists; column c owns ids off[c]..off[c+1]-1."""

    records: list[list[int]]
    attr_column: np.ndarray
    _sets: list[frozenset[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._sets = [frozenset(r) for r in self.records]

    @property
    def n_attributes(self) -> int:
        return len(self.attr_column)

    @property
    def n_columns(self) -> int:
        return int(self.attr_column.max()) + 1

    @property
    def indptr(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(r) for r in self.records])]).astype(np.int64)

    @property
    def indices(self) -> np.ndarray:
        return np.array([a for r in self.records for a in r], dtype=np.int32)

    def index(self, dense_min_support: int | None = None) -> RowIndex:
        return RowIndex.from_csr(
            self.indptr,
            self.indices,
            self.n_attributes,
            self.attr_column,
            dense_min_support=dense_min_support,
        )

    def index_variants(self) -> list[RowIndex]:
        """The same index in every representation, and without its co-occurrence counts."""
        variants = [self.index(d) for d in DENSE_CHOICES]
        arrays = self.index().to_arrays()
        arrays["pair_counts"] = np.zeros((0, 0), dtype=np.int32)
        variants.append(RowIndex.from_arrays(arrays))
        return variants

    def support(self, attrs: Iterable[int]) -> int:
        """c_D(attrs) by scanning every record."""
        return support(self._sets, (int(a) for a in attrs))

    def single(self) -> np.ndarray:
        """How many records hold each attribute."""
        return np.bincount(self.indices, minlength=self.n_attributes).astype(np.int64)

    def rows_without_column(self, column: int) -> list[int]:
        cols = self.attr_column
        return [i for i, r in enumerate(self.records) if all(cols[a] != column for a in r)]


def random_table(seed: int, n_records: int, n_values: list[int], empty_prob: float, skew: float) -> Table:
    """A table whose cells repeat often enough (skewed values, shared latent profiles) to be
    non-trivial for k in 1..4."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(n_values)])
    attr_column = np.repeat(np.arange(len(n_values)), n_values).astype(np.int32)
    profiles = [
        [rng.choice(v, p=_skewed(v, skew, rng)) for v in n_values] for _ in range(max(1, n_records // 8))
    ]
    records = []
    for _ in range(n_records):
        base = profiles[rng.integers(len(profiles))]
        rec = []
        for c, v in enumerate(n_values):
            if rng.random() < empty_prob:
                continue
            value = base[c] if rng.random() < 0.7 else rng.choice(v, p=_skewed(v, skew, rng))
            rec.append(int(offsets[c] + value))
        records.append(rec)
    return Table(records, attr_column)


def _skewed(n: int, skew: float, rng: np.random.Generator) -> np.ndarray:
    w = (1.0 + np.arange(n)) ** (-skew) * rng.uniform(0.5, 1.5, n)
    return np.asarray(w / w.sum())


@st.composite
def tables(draw: st.DrawFn, min_records: int = 5, max_records: int = 60) -> Table:
    """Hypothesis strategy: 5-60 records, 2-6 columns, 1-4 values each, some empty cells."""
    n_columns = draw(st.integers(2, 6))
    n_values = draw(st.lists(st.integers(1, 4), min_size=n_columns, max_size=n_columns))
    return random_table(
        seed=draw(st.integers(0, 2**32 - 1)),
        n_records=draw(st.integers(min_records, max_records)),
        n_values=n_values,
        empty_prob=draw(st.sampled_from([0.0, 0.2, 0.5])),
        skew=draw(st.sampled_from([0.0, 1.0, 2.5])),
    )


def reportable(table: Table, k: int, max_length: int) -> dict[tuple[int, ...], int]:
    """k-anonymous reportable aggregates of the table's combinations up to ``max_length``."""
    return protect(count_combinations(table.records, max_length), k)


def make_lookup(counts: dict[tuple[int, ...], int], n_attributes: int, max_length: int) -> CombinationLookup:
    layout = KeyLayout(n_attributes, max_length)
    combos = np.full((len(counts), max_length), -1, dtype=np.int64)
    for i, c in enumerate(counts):
        combos[i, : len(c)] = c
    values = np.array(list(counts.values()), dtype=np.int64)
    return CombinationLookup(layout, layout.pack(combos), values)


def records_of(batch: SyntheticBatch) -> list[list[int]]:
    return [batch.record(i).tolist() for i in range(len(batch))]


def same_batch(a: SyntheticBatch, b: SyntheticBatch) -> bool:
    return (
        np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.record_ids, b.record_ids)
    )
