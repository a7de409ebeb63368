"""Engines on a few thousand records, where row sets are large enough for every code path
(bitmap rows, per-candidate loops, CSR gathers, both local tables) to run; outputs must not
depend on which one did."""

from __future__ import annotations

import numpy as np
import pytest
from _samplers_testdata import ENGINE_VARIANTS, Table, random_table, records_of, same_batch

from ctdc_spark._random import stage_key
from ctdc_spark.synthesize._row_index import RowIndex
from ctdc_spark.synthesize._row_seeded import consolidate, consolidation_available, row_seeded_seeds
from ctdc_spark.synthesize._sampler import KSafeSampler
from ctdc_spark.synthesize._unseeded import unseeded


@pytest.fixture(scope="module")
def table() -> Table:
    return random_table(seed=17, n_records=4000, n_values=[2, 3, 5, 8, 40, 3, 2, 4], empty_prob=0.3, skew=1.2)


def _variants(table: Table) -> list[RowIndex]:
    return [table.index(), table.index(0), table.index(10**9)]


def test_row_seeded_and_consolidation_agree_across_code_paths(table: Table) -> None:
    k = 5
    n = 600
    ids = np.arange(n)
    indptr, indices = table.indptr[: n + 1], table.indices[: table.indptr[n]]
    key = stage_key(3, "row_seeded")
    outputs = [
        row_seeded_seeds(
            KSafeSampler(index, k, cache, cache_max_bytes=nbytes, local_max_rows=local, local_kind=kind),
            indptr,
            indices,
            ids,
            key,
        )
        for index in _variants(table)
        for cache, nbytes, local, kind in ENGINE_VARIANTS
    ]
    assert all(same_batch(o, outputs[0]) for o in outputs)
    for rec, seed in zip(records_of(outputs[0]), table.records, strict=False):
        assert set(rec) <= set(seed)
        assert not rec or table.support(rec) >= k

    single = table.single()
    quota = consolidation_available(single, single, k) // 20  # one small value_seeded-like shard
    shards = [
        consolidate(
            KSafeSampler(index, k, cache, cache_max_bytes=nbytes, local_max_rows=local, local_kind=kind),
            quota,
            stage_key(3, "consolidate"),
            1,
        )
        for index in _variants(table)
        for cache, nbytes, local, kind in ENGINE_VARIANTS
    ]
    assert all(same_batch(o, shards[0]) for o in shards)
    assert shards[0].attribute_counts(table.n_attributes).tolist() == quota.tolist()
    assert all(table.support(rec) >= k for rec in records_of(shards[0]))


def test_unseeded_agrees_across_code_paths(table: Table) -> None:
    k = 5
    ids = np.arange(300)
    outputs = [
        records_of(
            unseeded(
                index,
                k,
                ids,
                stage_key(4, "unseeded"),
                cache_max_size=cache,
                cache_max_bytes=nbytes,
                local_max_rows=local,
            )
        )
        for index in _variants(table)
        for cache, nbytes, local, _ in ENGINE_VARIANTS
    ]
    assert all(o == outputs[0] for o in outputs)
    assert all(not rec or table.support(rec) >= k for rec in outputs[0])
