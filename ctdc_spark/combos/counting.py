"""Distributed support counting: enumerate in ``mapInArrow`` tasks, sum with one shuffle.

Each task turns its records into pre-aggregated ``(k0..kN, count, first_record)`` rows with the
pure numpy code of :mod:`.enumeration`; Spark sums them in one ``groupBy`` (one shuffle), and the
packed keys are decoded back to ``array<int>`` with column expressions. No row-at-a-time Python
UDF is involved. The risk analysis' per-length numbers (:func:`risk_by_length`) reuse the same
tasks against the frequent set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctdc_spark._faults import fault_point
from ctdc_spark.combos.enumeration import (
    FLUSH_ROWS,
    Counts,
    concat_csr,
    iter_counts,
    shortest_rare_lengths,
)
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout
from ctdc_spark.combos.risk import RiskByLength

RECORDS_PER_PARTITION = 500_000
"""Most records per enumeration task. Every task emits its own distinct combinations to the shuffle,
so the shuffle carries about ``tasks x distinct`` rows: fewer, larger tasks shuffle less (at 200k
CTDC-shaped records and L = 4, 4 tasks emit 11.3M rows for 4.3M distinct combinations, 8 tasks
17.2M). A task's memory does not grow with its records: it hands its counts to the shuffle every
:data:`.enumeration.FLUSH_ROWS` distinct combinations."""

_OUTPUT_BATCH = 500_000


def enumeration_partitions(n_records: int, default_parallelism: int) -> int:
    """How many tasks enumerate combinations: one per core (one wave), more only past 500k records each.

    Returns:
        A multiple of ``default_parallelism``, so the tasks spread evenly over the cores.
    """
    parallelism = max(default_parallelism, 1)
    return parallelism * max(1, math.ceil(n_records / (parallelism * RECORDS_PER_PARTITION)))


def csr_of(
    batch: pa.RecordBatch,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """``(offsets, values, record_ids)`` of a batch with columns ``record_id`` and ``attrs``."""
    attrs = batch.column("attrs")
    lengths = attrs.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = attrs.flatten().to_numpy(zero_copy_only=False).astype(np.int32)
    record_ids = batch.column("record_id").to_numpy(zero_copy_only=False).astype(np.int64)
    return offsets, values, record_ids


def counts_schema(layout: KeyLayout) -> T.StructType:
    """Schema of the per-task pre-aggregated rows."""
    return T.StructType(
        [T.StructField(c, T.LongType(), False) for c in layout.word_columns]
        + [T.StructField("count", T.LongType(), False), T.StructField("first_record", T.LongType(), False)]
    )


def _to_batches(total: Counts, layout: KeyLayout) -> Iterator[pa.RecordBatch]:
    names = [*layout.word_columns, "count", "first_record"]
    for start in range(0, len(total), _OUTPUT_BATCH):
        stop = start + _OUTPUT_BATCH
        arrays = [pa.array(total.words[start:stop, i]) for i in range(layout.n_words)]
        arrays += [pa.array(total.counts[start:stop]), pa.array(total.min_record[start:stop])]
        yield pa.RecordBatch.from_arrays(arrays, names=names)


def counting_task(
    layout: KeyLayout,
    max_length: int,
    *,
    lengths: tuple[int, ...] | None = None,
    keep: CombinationLookup | None = None,
) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    """The ``mapInArrow`` function: count a task's combinations, merged across its batches.

    ``keep`` (apriori pruning) travels in the closure rather than a broadcast variable, which
    keeps the job Spark-Connect-safe; it is the small table of frequent shorter combinations.
    """

    @fault_point("combos.count")
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # A task's records are small (~12 ids each) next to their combinations: count them in one
        # call, so each combination is reduced once per task rather than once per Arrow batch.
        offsets, values, record_ids = concat_csr([csr_of(batch) for batch in batches])
        for part in iter_counts(
            offsets,
            values,
            record_ids,
            layout=layout,
            max_length=max_length,
            lengths=lengths,
            keep=keep,
            keep_parents_of_length=lengths[0] if (keep is not None and lengths) else None,
            flush_rows=FLUSH_ROWS,
        ):
            yield from _to_batches(part, layout)

    return run


def _slot_values(layout: KeyLayout) -> list[Column]:
    """Each slot's stored value (``id + 1``, 0 when empty), extracted from the key words."""
    mask = (1 << layout.bits) - 1
    slots = []
    for slot in range(layout.max_length):
        word, pos = divmod(slot, layout.slots_per_word)
        shift = (layout.slots_per_word - 1 - pos) * layout.bits
        slots.append(F.shiftright(F.col(f"k{word}"), shift).bitwiseAND(F.lit(mask)))
    return slots


def combo_length(layout: KeyLayout) -> Column:
    """Column expression: the number of ids in the key words ``k0..`` (non-empty slots)."""
    total = F.lit(0)
    for value in _slot_values(layout):
        total = total + (value != 0).cast("int")
    return total.cast("int")


def decode_combo(layout: KeyLayout) -> Column:
    """Column expression turning key words ``k0..`` back into the sorted ``array<int>`` combination.

    Ids fill the slots from the first one, so the combination is a prefix of the slot array;
    ``slice`` keeps it. (A ``filter`` with a lambda would do too, but higher-order functions are
    interpreted row by row instead of compiled.)
    """
    ids = F.array(*[(value - 1).cast("int") for value in _slot_values(layout)])
    return F.slice(ids, F.lit(1), combo_length(layout))


def sum_counts(pre_aggregated: DataFrame, layout: KeyLayout) -> DataFrame:
    """One shuffle: total count and smallest record per combination.

    Returns:
        Columns ``length``, ``combo`` (array<int>), ``count``, ``first_record``.
    """
    summed = pre_aggregated.groupBy(*layout.word_columns).agg(
        F.sum("count").alias("count"), F.min("first_record").alias("first_record")
    )
    return summed.select(
        combo_length(layout).alias("length"), decode_combo(layout).alias("combo"), "count", "first_record"
    )


def count_supports(
    records: DataFrame,
    *,
    layout: KeyLayout,
    max_length: int,
    partitions: int,
    lengths: tuple[int, ...] | None = None,
    keep: CombinationLookup | None = None,
) -> DataFrame:
    """Count the support of every combination of length <= ``max_length`` of ``records``.

    Args:
        records: Columns ``record_id``, ``attrs`` (sorted ids).
        layout: Key packing for the run's attributes and L.
        max_length: L.
        partitions: Enumeration tasks (records are spread round-robin first).
        lengths: Only these lengths.
        keep: Apriori pruning table (see :func:`counting_task`).

    Returns:
        Columns ``length``, ``combo``, ``count``, ``first_record``.
    """
    # Round-robin: a Delta table of records may sit in one or two files, i.e. one or two tasks.
    spread = records.select("record_id", "attrs").repartition(partitions)
    task = counting_task(layout, max_length, lengths=lengths, keep=keep)
    return sum_counts(spread.mapInArrow(task, counts_schema(layout)), layout)


def lookup_of(combos: DataFrame, layout: KeyLayout) -> CombinationLookup:
    """Collect a small frame of ``combo`` (+ ``count``) into a driver-side lookup table.

    Collects to the driver: use only for frequent/reportable sets, whose size is bounded by the
    number of combinations with support >= k.
    """
    table = combos.select("combo", "count").toArrow()
    offsets = np.asarray(table.column("combo").combine_chunks().offsets, dtype=np.int64)
    values = table.column("combo").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    counts = table.column("count").to_numpy()
    n = len(counts)
    padded = np.full((n, layout.max_length), -1, dtype=np.int64)
    lengths = np.diff(offsets)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        padded[rows, :length] = values[offsets[rows][:, None] + np.arange(length)]
    return CombinationLookup(layout, layout.pack(padded), counts)


def rare_lengths_task(
    layout: KeyLayout, max_length: int, frequent: CombinationLookup
) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    """``mapInArrow`` function emitting ``(record_id, rare_length)`` for records with a rare combination."""

    @fault_point("combos.rare_lengths")
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            offsets, values, record_ids = csr_of(batch)
            lengths = shortest_rare_lengths(
                offsets, values, layout=layout, max_length=max_length, frequent=frequent
            )
            hit = lengths > 0
            yield pa.RecordBatch.from_arrays(
                [pa.array(record_ids[hit]), pa.array(lengths[hit])], names=["record_id", "rare_length"]
            )

    return run


RARE_LENGTHS_SCHEMA = T.StructType(
    [T.StructField("record_id", T.LongType(), False), T.StructField("rare_length", T.IntegerType(), False)]
)


def risk_by_length(
    spark: SparkSession,
    sensitive: DataFrame,
    records: DataFrame,
    *,
    layout: KeyLayout,
    max_length: int,
    resolution: int,
    partitions: int,
) -> list[RiskByLength]:
    """Compute the risk table for lengths 1..L.

    Computed distributedly, never by collecting records (docs/architecture.md 5):

    * rare/distinct combinations per length: a ``groupBy`` over the sensitive aggregates;
    * records made unique at length l (docs/spec.md 5.2): a combination with count 1 identifies its only
      record (``first_record``), so a ``groupBy(first_record).min(length)`` gives each record's
      shortest unique length without revisiting records;
    * records made rare at length l: a record has a combination with count < k at length l exactly
      when not all of its ``C(m, l)`` combinations are frequent, which a second enumeration pass checks
      against the (small) frequent set in ``mapInArrow`` tasks.

    Args:
        spark: Session.
        sensitive: Sensitive aggregates (``length``, ``combo``, ``count``, ``first_record``).
        records: ``record_id``, ``attrs``.
        layout: Key layout of the run.
        max_length: L.
        resolution: k.
        partitions: Enumeration tasks for the rare-record pass.

    Returns:
        One row per length (collected: L rows).
    """
    combos = {
        r["length"]: (r["n"], r["rare"])
        for r in sensitive.groupBy("length")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.when(F.col("count") < resolution, 1).otherwise(0)).alias("rare"),
        )
        .collect()
    }
    unique = (
        sensitive.where(F.col("count") == 1)
        .groupBy(F.col("first_record").alias("record_id"))
        .agg(F.min("length").alias("unique_length"))
    )
    frequent = lookup_of(sensitive.where(F.col("count") >= resolution), layout)
    rare = (
        records.select("record_id", "attrs")
        .repartition(partitions)
        .mapInArrow(rare_lengths_task(layout, max_length, frequent), RARE_LENGTHS_SCHEMA)
    )
    # docs/spec.md 5.2: a record counts as rare only if it is not unique at any length.
    rare_only = rare.join(unique, "record_id", "left_anti")
    unique_counts: dict[int, int] = {r[0]: r[1] for r in unique.groupBy("unique_length").count().collect()}
    rare_counts: dict[int, int] = {r[0]: r[1] for r in rare_only.groupBy("rare_length").count().collect()}
    return [
        RiskByLength(
            length=length,
            combinations=int(combos.get(length, (0, 0))[0]),
            rare_combinations=int(combos.get(length, (0, 0))[1] or 0),
            unique_records=int(unique_counts.get(length, 0)),
            rare_records=int(rare_counts.get(length, 0)),
        )
        for length in range(1, max_length + 1)
    ]
