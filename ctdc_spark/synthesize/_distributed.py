"""Spark wiring of the synthesis engines: partition-wise sampling under broadcast constraint tables.

The constraint tables (the sensitive row index, the reported aggregates, per-shard quotas) are
built on the driver from small or bounded inputs and travel to tasks in the ``mapInArrow``
closure (Spark-Connect-safe, like a broadcast). Each task runs the pure numpy engines of
:mod:`._row_seeded`, :mod:`._unseeded` and :mod:`._aggregate_seeded` on its seeds or quota shards.
All randomness is keyed by (seed, stage, stable id), so the output does not depend on how records
or shards are partitioned, and a recomputed task reproduces its rows exactly.

Global steps are exact and distributed: consolidation quotas are split deterministically into
shards whose quotas sum to the global ones, and suppression ranks each attribute's occurrences by
a per-record random order (drawn with the record) and drops the first ``excess`` (docs/spec.md 4.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctdc_spark._faults import fault_point
from ctdc_spark._random import stage_key, uniforms
from ctdc_spark.combos.counting import csr_of
from ctdc_spark.combos.keys import CombinationLookup
from ctdc_spark.errors import ConfigError
from ctdc_spark.synthesize._aggregate_seeded import aggregate_seeded
from ctdc_spark.synthesize._batch import SyntheticBatch, concat_batches
from ctdc_spark.synthesize._row_index import RowIndex, estimate_row_index_bytes
from ctdc_spark.synthesize._row_seeded import (
    OversamplingControl,
    consolidate,
    grown_from_combinations,
    row_seeded_seeds,
)
from ctdc_spark.synthesize._sampler import KSafeSampler
from ctdc_spark.synthesize._unseeded import unseeded

IntArray = npt.NDArray[np.int64]

SYNTHETIC_SCHEMA = T.StructType(
    [
        T.StructField("pre_id", T.LongType(), False),
        T.StructField("attrs", T.ArrayType(T.IntegerType()), False),
        T.StructField("suppress_order", T.DoubleType(), False),
    ]
)
"""Rows emitted by sampling tasks: the stable id whose stream built the record, its attributes,
and its position in the suppression order (a uniform number drawn from the record's id)."""

SEEDS_PER_PARTITION = 20_000
"""Seeds per sampling task: sampling costs far more per record than counting does."""


@dataclass(frozen=True)
class RowIndexArrays:
    """The sensitive row index as plain arrays, ready to travel in a task closure."""

    arrays: dict[str, npt.NDArray[np.generic]]

    def index(self) -> RowIndex:
        """Rebuild the index inside a task."""
        return RowIndex.from_arrays(self.arrays)


def build_row_index(
    records: DataFrame,
    *,
    n_records: int,
    n_attributes: int,
    nnz: int,
    attr_column: npt.NDArray[np.int32],
    max_broadcast_mb: int,
) -> RowIndexArrays:
    """Collect the sensitive records into the broadcast row index, failing early when too large.

    Collects ``record_id, attrs`` (about ``4 * nnz`` bytes) to the driver: the row index is by
    design a broadcast constraint table (docs/architecture.md 5).

    Raises:
        ConfigError: when the estimated index exceeds ``synthesis.max_broadcast_mb``.
    """
    n_columns = int(attr_column.max()) + 1 if len(attr_column) else 0
    estimate = estimate_row_index_bytes(n_records, n_attributes, nnz, n_columns)
    if estimate > max_broadcast_mb * 2**20:
        raise ConfigError(
            f"the sensitive row index would take about {math.ceil(estimate / 2**20)} MB, above "
            f"synthesis.max_broadcast_mb={max_broadcast_mb}; raise that setting (executors need that "
            "much memory per task), or reduce input.use_columns or input.record_limit."
        )
    table = records.select("record_id", "attrs").orderBy("record_id").toArrow()
    offsets, values, _ = csr_of(table.combine_chunks().to_batches()[0] if table.num_rows else _empty_batch())
    index = RowIndex.from_csr(offsets, values, n_attributes, attr_column)
    return RowIndexArrays(index.to_arrays())


def _empty_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([], pa.int64()), pa.array([], pa.list_(pa.int32()))], names=["record_id", "attrs"]
    )


def _attrs_array(batch: SyntheticBatch) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(batch.indptr.astype(np.int32)), pa.array(batch.indices))


def _records_table(batch: SyntheticBatch, id_column: str) -> pa.Table:
    return pa.Table.from_arrays([pa.array(batch.record_ids), _attrs_array(batch)], names=[id_column, "attrs"])


def _to_arrow(batch: SyntheticBatch, suppress_key: int) -> pa.RecordBatch:
    order = uniforms(suppress_key, batch.record_ids) if len(batch) else np.zeros(0)
    return pa.RecordBatch.from_arrays(
        [pa.array(batch.record_ids), _attrs_array(batch), pa.array(order)],
        names=["pre_id", "attrs", "suppress_order"],
    )


def _task(
    stage: str, body: Callable[[pa.RecordBatch], SyntheticBatch], suppress_key: int
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    @fault_point(f"synthesize.{stage}")
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield _to_arrow(body(batch), suppress_key)

    run.__name__ = f"synthesize_{stage}"
    return run


def sample_row_seeded(
    records: DataFrame, index: RowIndexArrays, *, k: int, cache_max_size: int, seed: int, partitions: int
) -> DataFrame:
    """Phase 1 of ``row_seeded``: one k-safe subset per sensitive record, in ``mapInArrow`` tasks."""
    key, suppress_key = stage_key(seed, "row_seeded"), stage_key(seed, "suppress")
    body = _per_record_body(row_seeded_seeds, index, k=k, cache_max_size=cache_max_size, key=key)
    return (
        records.select("record_id", "attrs")
        .repartition(partitions)
        .mapInArrow(_task("row_seeded", body, suppress_key), SYNTHETIC_SCHEMA)
    )


def _per_record_body(
    engine: Callable[[KSafeSampler, IntArray, npt.NDArray[np.int32], IntArray, int], SyntheticBatch],
    index: RowIndexArrays,
    *,
    k: int,
    cache_max_size: int,
    key: int,
) -> Callable[[pa.RecordBatch], SyntheticBatch]:
    """A task body running ``engine`` on each batch's ``record_id, attrs`` rows, with one sampler
    (and its cache) per task."""
    state: dict[str, KSafeSampler] = {}

    def body(batch: pa.RecordBatch) -> SyntheticBatch:
        sampler = state.get("sampler")
        if sampler is None:
            sampler = state["sampler"] = KSafeSampler(index.index(), k, cache_max_size)
        offsets, values, ids = csr_of(batch)
        return engine(sampler, offsets, values, ids, key)

    return body


def sample_grown_from_combinations(
    spark: SparkSession,
    starts: SyntheticBatch,
    index: RowIndexArrays,
    *,
    k: int,
    cache_max_size: int,
    seed: int,
    partitions: int,
) -> DataFrame:
    """``fitted`` candidates holding given combinations, grown k-safe in ``mapInArrow`` tasks.

    ``starts`` are combinations (their ids: stable ids such as their positions in the reportable
    aggregates); each start with support >= k gives one maximal k-safe record that holds it.
    """
    key, suppress_key = stage_key(seed, "fitted_from_combinations"), stage_key(seed, "suppress")
    body = _per_record_body(grown_from_combinations, index, k=k, cache_max_size=cache_max_size, key=key)
    frame = spark.createDataFrame(_records_table(starts, "record_id"))
    return frame.repartition(partitions).mapInArrow(
        _task("fitted_from_combinations", body, suppress_key), SYNTHETIC_SCHEMA
    )


def collect_batch(records: DataFrame) -> SyntheticBatch:
    """Bring ``pre_id, attrs`` rows to the driver as one batch, ordered by ``pre_id``.

    For candidate pools and fitted inputs, whose size the caller bounds; the order makes the result
    independent of partitioning.
    """
    table = records.select(F.col("pre_id").alias("record_id"), "attrs").orderBy("record_id").toArrow()
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else _empty_batch()
    offsets, values, ids = csr_of(batch)
    return SyntheticBatch(offsets, values, ids)


def records_frame(spark: SparkSession, records: SyntheticBatch) -> DataFrame:
    """A driver-side batch as ``pre_id, attrs`` rows."""
    return spark.createDataFrame(_records_table(records, "pre_id"))


def split_quota(available: IntArray, n_shards: int) -> npt.NDArray[np.int64]:
    """Split per-attribute counts into ``n_shards`` quotas that add up exactly.

    Attribute a gives ``available[a] // n`` to every shard and one more to ``available[a] % n``
    shards, starting at shard ``a % n`` so remainders spread evenly. Deterministic, and
    independent of how shards are later partitioned.

    Returns:
        ``int64[n_shards, A]``.
    """
    n_attributes = len(available)
    base = available // n_shards
    extra = available % n_shards
    shard = np.arange(n_shards)[:, None]
    offset = (shard - np.arange(n_attributes)[None, :]) % n_shards
    return base[None, :] + (offset < extra[None, :]).astype(np.int64)


def shard_count(total: int, shard_size: int) -> int:
    """Number of quota shards for ``total`` placements of about ``shard_size`` each."""
    return max(1, math.ceil(total / shard_size)) if total else 0


def _shard_frame(spark: SparkSession, n_shards: int, partitions: int | None) -> DataFrame:
    # Shard ids start at 1: shard 0's record ids would collide with sensitive record ids < 2^32.
    # One shard per task by default (shards are the unit of work), at most 64 tasks.
    slices = partitions or max(1, min(n_shards, 64))
    return spark.range(1, n_shards + 1, numPartitions=slices).select(
        F.col("id").alias("record_id"), F.array().cast("array<int>").alias("attrs")
    )


def sample_consolidation(
    spark: SparkSession,
    index: RowIndexArrays,
    available: IntArray,
    *,
    k: int,
    cache_max_size: int,
    seed: int,
    shard_size: int,
    oversampling: tuple[CombinationLookup, int, float, int] | None = None,
    partitions: int | None = None,
) -> DataFrame:
    """Phase 2 (and ``value_seeded``): place ``available`` exactly, one quota shard per task row.

    Args:
        spark: Session.
        index: The sensitive row index.
        available: ``int64[A]`` placements still needed per attribute.
        k: Resolution.
        cache_max_size: Sampler cache size.
        seed: Run seed.
        shard_size: Placements per shard (``synthesis.consolidation_shard_size``).
        oversampling: ``(reported lookup, L, ratio, tries)`` for value_seeded's control.
        partitions: Tasks for the shards (default: one per shard, at most 64).
    """
    n_shards = shard_count(int(available.sum()), shard_size)
    if not n_shards:
        return spark.createDataFrame([], SYNTHETIC_SCHEMA)
    quotas = split_quota(available, n_shards)
    key, suppress_key = stage_key(seed, "consolidate"), stage_key(seed, "suppress")
    state: dict[str, KSafeSampler] = {}

    def body(batch: pa.RecordBatch) -> SyntheticBatch:
        sampler = state.get("sampler")
        if sampler is None:
            sampler = state["sampler"] = KSafeSampler(index.index(), k, cache_max_size)
        parts = []
        for shard_id in batch.column("record_id").to_pylist():
            quota = quotas[shard_id - 1]
            control = None
            if oversampling is not None:
                lookup, length, ratio, tries = oversampling
                share = float(quota.sum()) / float(available.sum())
                control = OversamplingControl(lookup, length, ratio, tries, allowance_scale=share)
            parts.append(consolidate(sampler, quota, key, shard_id, oversampling=control))
        return concat_batches(parts)

    return _shard_frame(spark, n_shards, partitions).mapInArrow(
        _task("consolidate", body, suppress_key), SYNTHETIC_SCHEMA
    )


def sample_unseeded(
    spark: SparkSession,
    index: RowIndexArrays,
    *,
    n_records: int,
    k: int,
    cache_max_size: int,
    seed: int,
    partitions: int,
) -> DataFrame:
    """``unseeded``: exactly n records, record i drawn from its own stream (docs/spec.md 4.2)."""
    key, suppress_key = stage_key(seed, "unseeded"), stage_key(seed, "suppress")

    def body(batch: pa.RecordBatch) -> SyntheticBatch:
        ids = batch.column("record_id").to_numpy()
        return unseeded(index.index(), k, ids, key, cache_max_size=cache_max_size)

    ids = spark.range(0, n_records, numPartitions=partitions).select(
        F.col("id").alias("record_id"), F.array().cast("array<int>").alias("attrs")
    )
    return ids.mapInArrow(_task("unseeded", body, suppress_key), SYNTHETIC_SCHEMA)


def sample_aggregate_seeded(
    spark: SparkSession,
    lookup: CombinationLookup,
    attr_column: npt.NDArray[np.int32],
    available: IntArray,
    *,
    length: int,
    use_synthetic_counts: bool,
    weight_selection_percentile: float,
    target_number_of_records: int | None,
    count_scale: float | None,
    seed: int,
    shard_size: int,
    partitions: int | None = None,
) -> DataFrame:
    """``aggregate_seeded`` from the reported aggregates only, one quota shard per task row.

    The 1-count quotas (and a target number of records, if any) are split across shards; with
    ``use_synthetic_counts`` each shard also weighs by its share of the reported counts.
    """
    n_shards = shard_count(int(available.sum()), shard_size)
    if not n_shards:
        return spark.createDataFrame([], SYNTHETIC_SCHEMA)
    quotas = split_quota(available, n_shards)
    targets = None
    if target_number_of_records is not None:
        targets = split_quota(np.array([target_number_of_records], dtype=np.int64), n_shards)[:, 0]
    key, suppress_key = stage_key(seed, "aggregate_seeded"), stage_key(seed, "suppress")
    total = float(available.sum())

    def body(batch: pa.RecordBatch) -> SyntheticBatch:
        parts = []
        for shard_id in batch.column("record_id").to_pylist():
            quota = quotas[shard_id - 1]
            scale = count_scale or 1.0
            if use_synthetic_counts:
                # This shard weighs by its share of the reported counts; the share is at least its
                # largest per-attribute quota fraction so no quota exceeds its scaled 1-count.
                scale *= max(float(quota.sum()) / total, float(np.max(quota / np.maximum(available, 1))))
            parts.append(
                aggregate_seeded(
                    lookup,
                    attr_column,
                    available_init=quota,
                    reporting_length=length,
                    use_synthetic_counts=use_synthetic_counts,
                    weight_selection_percentile=weight_selection_percentile,
                    target_number_of_records=None if targets is None else int(targets[shard_id - 1]),
                    key=key,
                    shard_id=shard_id,
                    count_scale=scale if scale != 1.0 else None,
                )
            )
        return concat_batches(parts)

    return _shard_frame(spark, n_shards, partitions).mapInArrow(
        _task("aggregate_seeded", body, suppress_key), SYNTHETIC_SCHEMA
    )


def attribute_counts(records: DataFrame) -> DataFrame:
    """``attr_id, n``: how many records hold each attribute."""
    return (
        records.select(F.explode("attrs").alias("attr_id"))
        .groupBy("attr_id")
        .agg(F.count(F.lit(1)).alias("n"))
    )


def suppress(records: DataFrame, excess: DataFrame) -> DataFrame:
    """Drop each attribute's first ``excess`` occurrences in the records' suppression order.

    Equivalent to SDS's phase 3 (visit records in a uniformly random order and drop an attribute
    while its excess lasts), expressed as a per-attribute ranking so it is exact and distributed.
    Records left empty are removed.

    Args:
        records: ``pre_id``, ``attrs``, ``suppress_order``.
        excess: ``attr_id``, ``excess`` (> 0) for the attributes over their target.

    Returns:
        ``pre_id``, ``attrs`` (sorted), without empty records.
    """
    occurrences = records.select("pre_id", "suppress_order", F.explode("attrs").alias("attr_id"))
    ranked = occurrences.join(F.broadcast(excess), "attr_id", "left").withColumn(
        "rank",
        F.row_number().over(Window.partitionBy("attr_id").orderBy("suppress_order", "pre_id")),
    )
    kept = ranked.where(F.col("excess").isNull() | (F.col("rank") > F.col("excess")))
    return kept.groupBy("pre_id").agg(F.sort_array(F.collect_list("attr_id")).alias("attrs"))


def to_numpy_counts(frame: DataFrame, n_attributes: int, value: str = "n") -> IntArray:
    """Collect a small ``attr_id, <value>`` frame into a dense ``int64[A]`` array."""
    out = np.zeros(n_attributes, dtype=np.int64)
    for row in frame.collect():
        out[int(row["attr_id"])] = int(row[value])
    return out
