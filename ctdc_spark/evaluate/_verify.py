"""Independent verification of the synthetic data's privacy guarantee (docs/spec.md 1.2).

k-synthetic modes (row_seeded, unseeded, value_seeded): the *full* attribute set of every
non-empty synthetic record must describe at least k sensitive records. This check shares no code
with the synthesizer: the sensitive records become a per-attribute bitmap index (one bit per
record; built by a Spark ``groupBy``, collected as at most the index's own size), which travels
to ``mapInArrow`` tasks in their closure (Spark-Connect-safe; PySpark ships a large closure as a
broadcast). Each task intersects the bitmaps of its distinct synthetic attribute sets with numpy
``bitwise_and`` and counts bits with ``bitwise_count``.

aggregate_seeded synthesis never reads the sensitive records, so it only promises that every
synthetic combination of at most L attributes is a reportable combination (count >= k); that
weaker statement is what is checked for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctdc_spark._faults import fault_point
from ctdc_spark.combos.counting import RARE_LENGTHS_SCHEMA, csr_of, lookup_of, rare_lengths_task
from ctdc_spark.combos.enumeration import gather, records_by_length
from ctdc_spark.combos.keys import KeyLayout
from ctdc_spark.errors import ConfigError

IntArray = npt.NDArray[np.int64]
BitmapIndex = npt.NDArray[np.uint64]

_WORD_BITS = 64
_BLOCK_BYTES = 32 << 20
"""Bytes of intersected bitmaps held at once per task (sets are processed in blocks this size)."""

K_SYNTHETIC = "k-synthetic"
K_ANONYMOUS_COMBINATIONS = "k-anonymous-combinations"
DP_AGGREGATES = "dp-aggregates"
"""Synthesis from differentially private aggregates: the DP guarantee carries over (post-processing);
what is checked is that no synthetic combination of length <= L lies outside the DP aggregates."""


def bitmap_words(records: DataFrame) -> DataFrame:
    """The non-zero 64-bit words of every attribute's record bitmap.

    Bit ``r % 64`` of word ``r // 64`` of attribute a is set when record ``r`` has a.

    Args:
        records: ``record_id``, ``attrs``.

    Returns:
        Columns ``attr_id``, ``word`` (long) and ``bits`` (the word as a signed long).
    """
    occurrences = records.select("record_id", F.explode("attrs").alias("attr_id"))
    # F.shiftleft takes a constant shift; the SQL function takes a column.
    bit = F.call_function("shiftleft", F.lit(1).cast("long"), (F.col("record_id") % _WORD_BITS).cast("int"))
    return occurrences.groupBy("attr_id", F.floor(F.col("record_id") / _WORD_BITS).alias("word")).agg(
        F.bit_or(bit).alias("bits")
    )


def bitmap_index(records: DataFrame, *, n_attributes: int, max_broadcast_mb: int) -> BitmapIndex:
    """Build the ``(n_attributes, words)`` bitmap index of the sensitive records on the driver.

    Runs two Spark jobs (the largest record id, then the non-zero words, collected through Arrow:
    at most the index's own size).

    Args:
        records: The sensitive ``records`` (``record_id``, ``attrs``).
        n_attributes: Size of the attribute dictionary.
        max_broadcast_mb: ``synthesis.max_broadcast_mb``: the largest index shipped to tasks.

    Returns:
        A C-contiguous ``uint64`` array; row a is attribute a's record bitmap.

    Raises:
        ConfigError: when the index would exceed ``max_broadcast_mb``.
    """
    largest = records.agg(F.max("record_id")).collect()[0][0]
    n_words = math.ceil((int(largest) + 1) / _WORD_BITS) if largest is not None else 0
    size_mb = n_attributes * n_words * 8 / 2**20
    if size_mb > max_broadcast_mb:
        raise ConfigError(
            f"evaluate: the k-synthetic verification needs a bitmap index of {size_mb:,.0f} MB "
            f"({n_attributes:,} attributes x {n_words * _WORD_BITS:,} records), more than "
            f"synthesis.max_broadcast_mb = {max_broadcast_mb}; raise synthesis.max_broadcast_mb (every "
            "executor then needs that much memory more), or reduce the number of attributes."
        )
    index = np.zeros((n_attributes, n_words), dtype=np.uint64)
    table = bitmap_words(records).toArrow()
    if table.num_rows:
        attr = table.column("attr_id").to_numpy().astype(np.int64)
        word = table.column("word").to_numpy().astype(np.int64)
        # The top bit makes some words negative as signed longs; reinterpret, do not convert.
        index[attr, word] = table.column("bits").to_numpy().astype(np.int64).view(np.uint64)
    return index


def full_set_supports(offsets: IntArray, values: npt.NDArray[np.int32], index: BitmapIndex) -> IntArray:
    """Support of each attribute set: the number of indexed records having all its attributes.

    Args:
        offsets, values: CSR attribute sets (ids must be rows of ``index``).
        index: Per-attribute record bitmaps (:func:`bitmap_index`).

    Returns:
        One support per set; -1 for an empty set (no constraint to check).
    """
    supports = np.full(len(offsets) - 1, -1, dtype=np.int64)
    n_words = index.shape[1]
    block = max(1, _BLOCK_BYTES // max(1, n_words * 8))
    for m, rows in records_by_length(offsets).items():
        for start in range(0, len(rows), block):
            chunk = rows[start : start + block]
            ids = gather(offsets, values, chunk, m)
            acc = index[ids[:, 0]]  # fancy indexing copies, so the index itself is never modified
            for j in range(1, m):
                np.bitwise_and(acc, index[ids[:, j]], out=acc)
            supports[chunk] = np.bitwise_count(acc).sum(axis=1, dtype=np.int64)
    return supports


SUPPORTS_SCHEMA = T.StructType(
    [T.StructField("support", T.LongType(), False), T.StructField("records", T.LongType(), False)]
)


def _supports_task(index: BitmapIndex) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    @fault_point("evaluate.supports")
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            offsets, values, _ = csr_of(batch)
            yield pa.RecordBatch.from_arrays(
                [pa.array(full_set_supports(offsets, values, index)), batch.column("records")],
                names=["support", "records"],
            )

    return run


@dataclass(frozen=True)
class Verification:
    """Outcome of the guarantee check. ``minimum_support`` is an exact sensitive count: private."""

    kind: str
    resolution: int
    max_length: int
    checked_records: int
    violating_records: int
    minimum_support: int | None

    @property
    def passed(self) -> bool:
        """No synthetic record breaks the guarantee."""
        return self.violating_records == 0

    def statement(self) -> str:
        """The guarantee in plain language."""
        if self.kind == DP_AGGREGATES:
            return (
                "the synthetic dataset was generated only from the differentially private aggregates, "
                f"and every combination of at most {self.max_length} attributes in it is among them; it "
                "therefore keeps their differential-privacy guarantee"
            )
        if self.kind == K_SYNTHETIC:
            return (
                "every combination of attributes in this synthetic dataset describes a group of at least "
                f"{self.resolution} people in the original data"
            )
        return (
            f"every combination of at most {self.max_length} attributes in this synthetic dataset "
            f"describes a group of at least {self.resolution} people in the original data; longer "
            "combinations may not exist in the original data"
        )

    def public_section(self) -> dict[str, Any]:
        """The ``guarantee`` section of the public ``metadata.json``.

        The minimum support is rounded down to a multiple of k like every published count: the
        exact value is a sensitive count and stays in the private evaluation.
        """
        section: dict[str, Any] = {
            "type": self.kind,
            "verified": self.passed,
            "statement": self.statement(),
            "checked_records": self.checked_records,
        }
        if self.kind != K_SYNTHETIC:
            section["max_combination_length"] = self.max_length
        if self.kind != DP_AGGREGATES:
            # Under DP no count derived from the exact data is published, not even rounded.
            section["k"] = self.resolution
            section["minimum_support"] = (
                None
                if self.minimum_support is None
                else (self.minimum_support // self.resolution) * self.resolution
            )
            section["minimum_support_rounding"] = f"rounded down to a multiple of k = {self.resolution}"
        return section

    def private_section(self) -> dict[str, Any]:
        """The exact outcome, for ``evaluation_private.json``."""
        return {
            "type": self.kind,
            "k": self.resolution,
            "minimum_support": self.minimum_support,
            "checked_records": self.checked_records,
            "violating_records": self.violating_records,
            "verified": self.passed,
        }


def verify_k_synthetic(
    synthetic: DataFrame,
    records: DataFrame,
    *,
    n_attributes: int,
    resolution: int,
    max_length: int,
    max_broadcast_mb: int,
    partitions: int,
) -> Verification:
    """Check that every non-empty synthetic record's full attribute set has support >= k.

    Identical synthetic records are checked once (``groupBy(attrs)``), spread round-robin over
    ``partitions`` tasks that carry the bitmap index in their closure.

    Args:
        synthetic: ``record_id``, ``attrs`` of the synthetic records.
        records: The sensitive records.
        n_attributes: Size of the attribute dictionary.
        resolution: k.
        max_length: L (reported only).
        max_broadcast_mb: Limit on the bitmap index.
        partitions: Verification tasks.

    Returns:
        The outcome (the caller raises when it did not pass).
    """
    index = bitmap_index(records, n_attributes=n_attributes, max_broadcast_mb=max_broadcast_mb)
    distinct_sets = (
        synthetic.where(F.size("attrs") > 0)
        .groupBy("attrs")
        .agg(F.min("record_id").alias("record_id"), F.count(F.lit(1)).alias("records"))
        .repartition(partitions)
    )
    supports = distinct_sets.mapInArrow(_supports_task(index), SUPPORTS_SCHEMA)
    k = F.lit(resolution)
    row = supports.agg(
        F.coalesce(F.sum("records"), F.lit(0)).alias("checked"),
        F.coalesce(F.sum(F.when(F.col("support") < k, F.col("records"))), F.lit(0)).alias("violating"),
        F.min("support").alias("minimum"),
    ).collect()[0]
    return Verification(
        kind=K_SYNTHETIC,
        resolution=resolution,
        max_length=max_length,
        checked_records=int(row["checked"]),
        violating_records=int(row["violating"]),
        minimum_support=None if row["minimum"] is None else int(row["minimum"]),
    )


def verify_reportable_combinations(
    synthetic: DataFrame,
    reportable: DataFrame,
    *,
    layout: KeyLayout,
    resolution: int,
    max_length: int,
    partitions: int,
    kind: str = K_ANONYMOUS_COMBINATIONS,
) -> Verification:
    """Check that every synthetic combination of length <= L is a reportable combination.

    Uses the engine's rare-length pass with the reportable aggregates as the "frequent" table
    (collected like the aggregate stage's frequent set: bounded by the combinations with
    support >= k). ``minimum_support`` is filled in later from the joined aggregates.

    Args:
        synthetic: ``record_id``, ``attrs`` of the synthetic records.
        reportable: ``combo``, ``protected_count``.
        layout: Key packing.
        resolution: k.
        max_length: L.
        partitions: Tasks.
        kind: :data:`K_ANONYMOUS_COMBINATIONS`, or :data:`DP_AGGREGATES` for DP aggregates.

    Returns:
        The outcome, with ``minimum_support`` None.
    """
    official = lookup_of(reportable.select("combo", F.col("protected_count").alias("count")), layout)
    outside = (
        synthetic.select("record_id", "attrs")
        .repartition(partitions)
        .mapInArrow(rare_lengths_task(layout, max_length, official), RARE_LENGTHS_SCHEMA)
    )
    checked = synthetic.where(F.size("attrs") > 0).count()
    return Verification(
        kind=kind,
        resolution=resolution,
        max_length=max_length,
        checked_records=checked,
        violating_records=outside.count(),
        minimum_support=None,
    )
