"""Micro-benchmark of the per-task synthesis engines on CTDC-like random data (no Spark).

Generates a sensitive table shaped like CTDC (default 50k records, ~150 attributes in 40 columns,
~10 attributes per record, skewed values drawn around shared latent profiles so combinations
repeat), then times one core running each engine.

Times are CPU seconds of this process (fair on a shared machine); wall time is shown too.

Usage::

    PYTHONPATH=. python benchmarks/bench_samplers.py [--records 50000] [--k 10] [--seeds 20000]
    PYTHONPATH=. python benchmarks/bench_samplers.py --records 1000000 --seeds 10000 --unseeded 2000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from ctdc_spark._random import stage_key
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout
from ctdc_spark.synthesize._aggregate_seeded import aggregate_seeded
from ctdc_spark.synthesize._batch import SyntheticBatch
from ctdc_spark.synthesize._row_index import RowIndex, estimate_row_index_bytes
from ctdc_spark.synthesize._row_seeded import consolidate, consolidation_available, row_seeded_seeds
from ctdc_spark.synthesize._sampler import KSafeSampler
from ctdc_spark.synthesize._unseeded import unseeded
from tests import oracle


def ctdc_like(n_records: int, n_columns: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR records and the attribute->column map of a CTDC-shaped random table."""
    rng = np.random.default_rng(seed)
    n_values = rng.integers(2, 7, n_columns)  # ~4.5 values per column, ~150 attributes for 40 columns
    offsets = np.concatenate([[0], np.cumsum(n_values)])
    attr_column = np.repeat(np.arange(n_columns), n_values).astype(np.int32)
    # A few columns are nearly always known (sex, age, country), most are often unknown.
    fill = np.clip(rng.beta(1.2, 3.0, n_columns), 0.02, 0.98)
    fill[:4] = 0.95
    fill *= 10.0 / fill.sum()  # ~10 known cells per record
    fill = np.clip(fill, 0.0, 0.98)
    n_profiles = 60
    profile_values = np.stack([rng.integers(0, v, n_profiles) for v in n_values], axis=1)
    zipf = [(1.0 + np.arange(v)) ** -1.2 for v in n_values]
    profile = rng.integers(0, n_profiles, n_records)
    known = rng.random((n_records, n_columns)) < fill
    keep_profile = rng.random((n_records, n_columns)) < 0.8
    cells = np.empty((n_records, n_columns), dtype=np.int64)
    for c in range(n_columns):
        noise = rng.choice(n_values[c], size=n_records, p=zipf[c] / zipf[c].sum())
        cells[:, c] = np.where(keep_profile[:, c], profile_values[profile, c], noise) + offsets[c]
    lengths = known.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = cells[known].astype(np.int32)  # row-major: ascending columns, hence ascending ids
    return indptr, indices, attr_column


def _timed(label: str, n_items: int, unit: str, fn: Callable[[], object]) -> object:
    # CPU time of this process is the fair measure on a shared machine; wall time is shown too.
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<44} {cpu:7.2f} s cpu ({wall:6.2f} s wall)  {n_items / cpu:9.0f} {unit}/s")
    return out


def reportable_lookup(
    indptr: np.ndarray, indices: np.ndarray, n_attr: int, k: int, length: int
) -> CombinationLookup:
    """The reference implementation's k-anonymous aggregates of every combination up to ``length``."""
    combos, counts = oracle.count_encoded(indptr, indices, length)
    reported = oracle.rounded_down(counts, k)
    layout = KeyLayout(n_attr, length)
    return CombinationLookup(layout, layout.pack(combos[reported > 0]), reported[reported > 0])


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--columns", type=int, default=40)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=20_000, help="seeds timed in phase 1")
    parser.add_argument(
        "--shard", type=int, default=20_000, help="placements in the timed consolidation shard"
    )
    parser.add_argument("--unseeded", type=int, default=5_000, help="unseeded records timed")
    parser.add_argument("--aggregate", type=int, default=2_000, help="aggregate_seeded records timed")
    parser.add_argument("--length", type=int, default=3, help="reporting length L for aggregate_seeded")
    args = parser.parse_args()

    indptr, indices, attr_column = ctdc_like(args.records, args.columns, seed=7)
    n_attr = len(attr_column)
    print(
        f"records={args.records} attributes={n_attr} columns={args.columns} "
        f"attrs/record={len(indices) / args.records:.1f} k={args.k} (CPU time of one core)"
    )
    index = _timed(
        "build RowIndex", len(indices), "nnz", lambda: RowIndex.from_csr(indptr, indices, n_attr, attr_column)
    )
    assert isinstance(index, RowIndex)
    bound = estimate_row_index_bytes(args.records, n_attr, len(indices), args.columns)
    print(f"RowIndex {index.nbytes / 2**20:.1f} MiB (estimate_row_index_bytes bound {bound / 2**20:.1f} MiB)")
    _timed("build ColumnCodes (once per executor)", args.records, "records", index.column_codes)

    n_seeds = min(args.seeds, args.records)
    ids = np.arange(n_seeds, dtype=np.int64)
    key = stage_key(1, "row_seeded")
    seeds = (indptr[: n_seeds + 1], indices[: indptr[n_seeds]])
    phase1 = None
    for label, cache in [("cache off", 0), ("cache on (100k)", 100_000)]:
        sampler = KSafeSampler(index, args.k, cache)
        phase1 = _timed(
            f"row_seeded phase 1, {label}",
            n_seeds,
            "records",
            partial(row_seeded_seeds, sampler, seeds[0], seeds[1], ids, key),
        )
    assert isinstance(phase1, SyntheticBatch)

    # One consolidation shard: the quota the whole run would need (phase-1 counts scaled from the
    # timed seeds), cut down proportionally to --shard placements, as the Spark side shards it.
    single = index.support
    placed = phase1.attribute_counts(n_attr) * (args.records / n_seeds)
    quota = consolidation_available(single, single - np.rint(placed).astype(np.int64), args.k)
    shard = np.floor(quota * min(1.0, args.shard / max(1, int(quota.sum())))).astype(np.int64)
    sampler = KSafeSampler(index, args.k, 100_000)
    extra = _timed(
        f"consolidation shard ({int(shard.sum())} placements)",
        int(shard.sum()),
        "placements",
        lambda: consolidate(sampler, shard, stage_key(1, "consolidate"), 0),
    )
    assert isinstance(extra, SyntheticBatch)
    print(f"  -> {len(extra)} records; the full run needs ~{int(quota.sum())} placements")

    n_unseeded = min(args.unseeded, args.records)
    _timed(
        "unseeded, cache on (100k)",
        n_unseeded,
        "records",
        lambda: unseeded(index, args.k, np.arange(n_unseeded), stage_key(1, "unseeded")),
    )

    # Aggregates of at most 100k records keep this step's memory small; the engine only sees them.
    n_agg = min(args.records, 100_000)
    lookup = reportable_lookup(indptr[: n_agg + 1], indices[: indptr[n_agg]], n_attr, args.k, args.length)
    ones = lookup.counts(np.arange(n_attr)[:, None])
    for use_synthetic in (False, True):
        _timed(
            f"aggregate_seeded L={args.length}, synthetic counts {'on' if use_synthetic else 'off'}",
            args.aggregate,
            "records",
            partial(
                aggregate_seeded,
                lookup,
                attr_column,
                available_init=ones,
                reporting_length=args.length,
                use_synthetic_counts=use_synthetic,
                weight_selection_percentile=95.0,
                target_number_of_records=args.aggregate,
                key=stage_key(1, "aggregate_seeded"),
                shard_id=0,
            ),
        )


if __name__ == "__main__":
    main()
