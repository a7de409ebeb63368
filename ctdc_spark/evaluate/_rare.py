"""Which synthetic records contain each rare synthetic combination (count < k).

The counting engine keeps one record per combination (``first_record``); SDS's rare-combination
file lists every record. A combination rare in the whole synthetic dataset is rare in every subset
of it, so each ``mapInArrow`` task counts its own records with the engine, keeps the combinations
that are rare *within the task*, and emits ``(key, record_id)`` for their occurrences. A join with
the globally rare combinations then keeps exactly the wanted pairs: no lookup table travels to the
tasks and nothing is collected to the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from ctdc_spark._faults import fault_point
from ctdc_spark.combos.counting import csr_of, decode_combo
from ctdc_spark.combos.enumeration import (
    CHUNK_ROWS,
    concat_csr,
    count_combinations,
    gather,
    records_by_length,
)
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout, subset_positions

IntArray = npt.NDArray[np.int64]


def rare_occurrences(
    offsets: IntArray,
    values: npt.NDArray[np.int32],
    record_ids: IntArray,
    *,
    layout: KeyLayout,
    max_length: int,
    resolution: int,
) -> Iterator[tuple[IntArray, IntArray]]:
    """Yield ``(packed keys, record ids)`` of every occurrence of a combination rare in these records.

    Args:
        offsets, values: CSR records (sorted attribute ids).
        record_ids: Record id of each record.
        layout: Key packing.
        max_length: L.
        resolution: k; combinations with fewer than k records here are rare.

    Yields:
        Chunks of occurrences: ``(n, n_words)`` keys and ``(n,)`` record ids.
    """
    counted = count_combinations(offsets, values, record_ids, layout=layout, max_length=max_length)
    rare = counted.counts < resolution
    if not rare.any():
        return
    lookup = CombinationLookup(layout, counted.words[rare], counted.counts[rare])
    for m, rows in records_by_length(offsets).items():
        for length in range(1, min(m, max_length) + 1):
            positions = subset_positions(m, length)
            step = max(1, CHUNK_ROWS // len(positions))
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                keys = layout.pack(gather(offsets, values, chunk, m)[:, positions].reshape(-1, length))
                hit = lookup.counts_of_keys(keys) > 0
                if hit.any():
                    yield keys[hit], np.repeat(record_ids[chunk], len(positions))[hit]


def occurrences_schema(layout: KeyLayout) -> T.StructType:
    """Schema of the task output: the key words and the record id."""
    return T.StructType(
        [T.StructField(c, T.LongType(), False) for c in layout.word_columns]
        + [T.StructField("record_id", T.LongType(), False)]
    )


def _occurrences_task(
    layout: KeyLayout, max_length: int, resolution: int
) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    names = [*layout.word_columns, "record_id"]

    @fault_point("evaluate.rare_occurrences")
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # The whole task's records are counted together: the larger the group, the fewer
        # combinations look rare locally (a task holds ~50k records of a few attributes each).
        offsets, values, record_ids = concat_csr([csr_of(b) for b in batches])
        for keys, ids in rare_occurrences(
            offsets, values, record_ids, layout=layout, max_length=max_length, resolution=resolution
        ):
            arrays = [pa.array(keys[:, i]) for i in range(layout.n_words)] + [pa.array(ids)]
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    return run


def rare_members(
    records: DataFrame, *, layout: KeyLayout, max_length: int, resolution: int, partitions: int
) -> DataFrame:
    """Candidate ``(combo, record_id)`` pairs covering every globally rare combination of ``records``.

    Join the result with the globally rare combinations to drop the pairs of combinations that
    are rare only within one task.

    Args:
        records: ``record_id``, ``attrs`` (the synthetic records).
        layout: Key packing.
        max_length: L.
        resolution: k.
        partitions: Number of tasks (records are spread round-robin first).

    Returns:
        Columns ``combo`` (array<int>) and ``record_id``.
    """
    # Round-robin, as for counting: the synthetic table may sit in one file.
    spread = records.select("record_id", "attrs").repartition(partitions)
    task = _occurrences_task(layout, max_length, resolution)
    return spread.mapInArrow(task, occurrences_schema(layout)).select(
        decode_combo(layout).alias("combo"), "record_id"
    )
