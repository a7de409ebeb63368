"""Differentially private marginals on Spark ("DP Marginals", docs/spec.md 3.4 Steps A-C).

Step A (budget split, sigmas, protected record count) is :mod:`ctdc_spark.dp`. Step B runs level
by level ``k = 1..L``:

1. **Candidates** ``V_k``: every attribute at ``k = 1``; afterwards joins over the survivors
   ``S_{k-1}`` (:func:`next_level_candidates`), never a driver loop.
2. **Histogram** of ``|W_u|`` (valid tuples per record) from ``mapInArrow`` tasks, summed by Spark;
   only the histogram reaches the driver, never a per-record value.
3. **Allowed sensitivity** ``Delta_k`` on the driver by the configured percentile mechanism
   (:func:`ctdc_spark.dp.allowed_sensitivity`; ``rank`` by default, see that module for why).
4. **Bounded counts**: every record keeps ``Delta_k`` of its valid tuples chosen by a keyed hash
   (:mod:`._dp_tasks`), counted in tasks and summed with one shuffle, then left-joined onto ``V_k``
   so that every candidate, including those no record holds, gets noise.
5. **Noise and threshold** inside tasks: discrete Gaussian noise from the run's noise source
   (``ctx.noise_source``, OpenDP's exact sampler in production), so noisy counts are integers; the
   level-1 threshold is the discrete-noise version of SDS's ``rho_1``
   (:func:`ctdc_spark.dp.released_threshold`). Written to the private ``dp_noisy_candidates`` table
   *before anything reads it*; the survivors ``S_k`` are read back from Delta (docs/reliability.md 0.2).

Step C post-processes the released combinations with joins (:func:`post_process`).

**Exactly once, also across reruns.** The driver-side DP outputs (protected record count,
``Delta_k``) and the secret contribution key are stored in ``private/<run_id>/dp_state.json``
before they are used, and a rerun of the same run id reuses them. Each level's noisy table is
written with Delta ``txnVersion = k``, so a rerun never replaces a committed level; it reads the
committed noise back. A rerun after a failure therefore neither draws a committed measurement
again nor mixes old and new noise.

**Budget ledger.** Before the first level, the run's ``(epsilon, delta)`` is recorded in the private
``privacy_ledger`` table under ``(run_id, dataset_id)``; one row per run id, so a rerun never counts
twice. The cumulative budget of a dataset is the sum over its runs (basic composition).
``dataset_id`` is ``privacy.dp.dataset_id`` or, when unset, ``input.path``.

**Public inputs.** The mechanism treats as public: the configuration, the number of expanded
columns (it bounds ``|W_u|`` by ``C(columns, k)`` for the ``rank`` percentile) and each attribute's
column. For plain columns these come from the schema. For multi-value columns the expanded columns
are the values seen in the data, as in SDS; publish their value sets (e.g. CTDC's codebook) if that
distinction matters. Level 1's candidates are the attributes seen in the data; the threshold
``rho_1`` is what makes that safe (the ``delta / 2`` of the proof), so the noisy table, which
holds every candidate, stays private.

**Noise source.** Every draw (record count, ``Delta_k``, counts, the contribution key) comes from
``ctx.noise_source``, which is :data:`ctdc_spark.dp.PRODUCTION_NOISE` unless a test builds the
context with its own source; nothing reads the environment. A test source keys the count noise by
(level, candidate), so a test run is reproducible for any partitioning. The privacy spent is stated
as OpenDP states it (:func:`ctdc_spark.dp.privacy_accounting`) in the manifest and the metadata.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctdc_spark._caching import cached
from ctdc_spark._faults import fault_point
from ctdc_spark.aggregate._dp_tasks import (
    bounded_tuple_counts,
    noisy_release,
    tuple_count_histogram,
)
from ctdc_spark.combos.counting import csr_of, decode_combo, lookup_of
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout
from ctdc_spark.config import DpConfig
from ctdc_spark.dp import (
    OPENDP_VERSION,
    NoiseParameters,
    NoiseSource,
    PercentileMechanism,
    PrivacyAccounting,
    ThresholdSpec,
    allowed_sensitivity,
    noise_parameters_for,
    privacy_accounting,
    released_threshold,
    thresholds_for,
)
from ctdc_spark.errors import ConfigError
from ctdc_spark.io import delta as delta_io
from ctdc_spark.io.files import write_json
from ctdc_spark.schemas import DP_NOISY_CANDIDATES, PRIVACY_LEDGER
from ctdc_spark.stage import RunContext

if TYPE_CHECKING:
    from ctdc_spark.aggregate.stage import PreparedRun

__all__ = [
    "BudgetTotals",
    "DpLevel",
    "DpMarginals",
    "add_missing_parents",
    "dataset_id_of",
    "level_one_candidates",
    "manifest_privacy",
    "metadata_privacy",
    "next_level_candidates",
    "normalise_counts",
    "post_process",
    "release_record_count",
    "run_dp_marginals",
]

log = logging.getLogger(__name__)

STATE_FILE = "dp_state.json"
_MECHANISMS: tuple[PercentileMechanism, ...] = ("rank", "sds_compatible")
_HISTOGRAM_SCHEMA = T.StructType(
    [T.StructField("tuples", T.LongType(), False), T.StructField("records", T.LongType(), False)]
)
_NOISY_SCHEMA = T.StructType(
    [
        T.StructField("combo", T.ArrayType(T.IntegerType()), False),
        # Integers (discrete noise); double only because DP_NOISY_CANDIDATES declares double.
        T.StructField("noisy_count", T.DoubleType(), False),
        T.StructField("above_threshold", T.BooleanType(), False),
    ]
)


# --------------------------------------------------------------------------------------------
# Configuration read here until config.py has the keys
# --------------------------------------------------------------------------------------------


def dataset_id_of(dp: DpConfig, input_path: str) -> str:
    """``privacy.dp.dataset_id``, the name under which refreshes share one budget; default the input path."""
    return dp.dataset_id or input_path


# --------------------------------------------------------------------------------------------
# Candidate generation (Step B.1) and post-processing (Step C): pure transforms
# --------------------------------------------------------------------------------------------


def level_one_candidates(attributes: DataFrame) -> DataFrame:
    """``V_1``: every attribute of the data as a one-element combination.

    Returns:
        Column ``combo`` (array<int>).
    """
    return attributes.select(F.array(F.col("attr_id")).alias("combo"))


def next_level_candidates(survivors: DataFrame, attributes: DataFrame, *, length: int) -> DataFrame:
    """``V_k`` from the survivors ``S_{k-1}`` (docs/spec.md 3.4 Step B.1), with joins.

    SDS extends every survivor by every attribute of another column and keeps the combinations
    whose every sub-combination of length ``2..k-1`` survived. Because the survivors of each
    level already passed that test, it is equivalent to: all ``(k-1)``-subsets survived, and (for
    ``k = 2``) the two attributes are in different columns. So ``k = 2`` is a cross join of the
    (few) surviving attributes, broadcast, and ``k >= 3`` the apriori join: two survivors sharing
    their first ``k - 2`` attributes give one candidate, which is kept when its other ``k - 2``
    subsets of length ``k - 1`` survived as well (two anti-joins). No candidate is generated twice.

    Args:
        survivors: Column ``combo`` (sorted ids, all of length ``length - 1``).
        attributes: The attribute dictionary (``attr_id``, ``column_index``).
        length: ``k >= 2``.

    Returns:
        Column ``combo``: the candidates, sorted ids of length ``k``.

    Raises:
        ValueError: If ``length < 2``.
    """
    if length < 2:
        raise ValueError(f"length: candidates are built from survivors for k >= 2, got {length}.")
    if length == 2:
        singles = survivors.select(F.element_at("combo", 1).alias("attr_id")).join(
            attributes.select("attr_id", "column_index"), "attr_id"
        )
        left = singles.select(F.col("attr_id").alias("a"), F.col("column_index").alias("a_column"))
        right = singles.select(F.col("attr_id").alias("b"), F.col("column_index").alias("b_column"))
        return (
            left.crossJoin(F.broadcast(right))
            .where((F.col("a") < F.col("b")) & (F.col("a_column") != F.col("b_column")))
            .select(F.array("a", "b").alias("combo"))
        )
    parents = survivors.select("combo")
    ends = parents.select(
        F.slice("combo", 1, length - 2).alias("prefix"), F.element_at("combo", -1).alias("last")
    )
    grown = ends.join(
        ends.select(F.col("prefix").alias("other_prefix"), F.col("last").alias("other_last")),
        (F.col("prefix") == F.col("other_prefix")) & (F.col("last") < F.col("other_last")),
    ).select(F.concat("prefix", F.array("last", "other_last")).alias("combo"))
    # The two joined parents drop the candidate's last or second-to-last attribute; the subsets
    # dropping any earlier attribute must have survived too.
    others = _subsets(length, [length - 1], drop_last_two=True)
    missing = (
        grown.select("combo", F.explode(others).alias("parent"))
        .join(parents.select(F.col("combo").alias("parent")), "parent", "left_anti")
        .select("combo")
    )
    return grown.join(missing, "combo", "left_anti")


def _subsets(length: int, sizes: Iterable[int], *, drop_last_two: bool = False) -> Column:
    """``array<array<int>>`` of the sub-combinations of ``combo`` (known ``length``) of ``sizes``.

    With ``drop_last_two``, subsets that keep both of the last two attributes only (the ones an
    apriori join has not checked yet).
    """
    picks = [
        subset
        for size in sizes
        for subset in itertools.combinations(range(length), size)
        if not drop_last_two or {length - 2, length - 1} <= set(subset)
    ]
    return F.array(*[F.array(*[F.col("combo")[i] for i in pick]) for pick in picks])


def _union_all(frames: list[DataFrame]) -> DataFrame:
    return functools.reduce(DataFrame.unionByName, frames)


def add_missing_parents(aggregates: DataFrame, *, max_length: int) -> DataFrame:
    """SDS ``add_missing_parent_combinations`` (docs/spec.md 3.4 Step C.2), with joins.

    Every sub-combination of length ``2..len-1`` of a reported combination that is not reported
    itself is added with the largest count among the reported combinations containing it.

    Args:
        aggregates: Columns ``length``, ``combo``, ``count``.
        max_length: L.

    Returns:
        The same columns, with the missing parents added.
    """
    children = [
        aggregates.where(F.col("length") == size).select(
            F.explode(_subsets(size, range(2, size))).alias("combo"), "count"
        )
        for size in range(3, max_length + 1)
    ]
    if not children:
        return aggregates
    missing = (
        _union_all(children)
        .join(aggregates.select("combo"), "combo", "left_anti")
        .groupBy("combo")
        .agg(F.max("count").alias("count"))
    )
    return aggregates.unionByName(missing.select(F.size("combo").alias("length"), "combo", "count"))


def normalise_counts(aggregates: DataFrame, *, max_length: int) -> DataFrame:
    """SDS ``normalize_noisy_combinations`` (docs/spec.md 3.4 Step C.3), with joins.

    A combination whose count exceeds the count of one of its sub-combinations (any length) gets
    the smallest such count. SDS computes every new count from the counts before the pass; since
    a sub-combination's sub-combinations are the combination's too, the result is the same as
    repeating the pass until nothing changes.

    Args:
        aggregates: Columns ``length``, ``combo``, ``count`` (downward closed).
        max_length: L.

    Returns:
        The same columns with normalised counts.
    """
    subs = [
        aggregates.where(F.col("length") == size).select(
            "combo", F.explode(_subsets(size, range(1, size))).alias("sub")
        )
        for size in range(2, max_length + 1)
    ]
    if not subs:
        return aggregates
    lowest = (
        _union_all(subs)
        .join(aggregates.select(F.col("combo").alias("sub"), F.col("count").alias("sub_count")), "sub")
        .groupBy("combo")
        .agg(F.min("sub_count").alias("lowest"))
    )
    return aggregates.join(lowest, "combo", "left").select(
        "length", "combo", F.least("count", F.coalesce("lowest", "count")).alias("count")
    )


def post_process(released: DataFrame, *, max_length: int) -> DataFrame:
    """Step C: round, drop zeros, add missing parents, normalise.

    Args:
        released: The candidates above their threshold: ``length``, ``combo``, ``noisy_count``.
        max_length: L.

    Returns:
        Columns ``length`` (int), ``combo``, ``count`` (long): the DP aggregates.
    """
    # Discrete noise makes the noisy counts integers already; the round keeps SDS's f64::round
    # (half away from zero, Spark's HALF_UP for positive values) for any other input.
    rounded = released.select(
        F.col("length").cast("int").alias("length"),
        "combo",
        F.round("noisy_count").cast("long").alias("count"),
    ).where(F.col("count") > 0)
    return rounded.transform(add_missing_parents, max_length=max_length).transform(
        normalise_counts, max_length=max_length
    )


# --------------------------------------------------------------------------------------------
# Tasks (mapInArrow functions over the pure numpy of ._dp_tasks)
# --------------------------------------------------------------------------------------------


def _histogram_task(
    length: int, keep: CombinationLookup | None
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """``mapInArrow`` function: one partial ``|W_u|`` histogram per task (``tuples``, ``records``)."""

    @fault_point("aggregate.dp_histogram")
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        total = np.zeros(1, dtype=np.int64)
        for batch in batches:
            offsets, values, _ = csr_of(batch)
            part = tuple_count_histogram(offsets, values, length=length, keep=keep)
            if len(part) > len(total):
                total = np.pad(total, (0, len(part) - len(total)))
            total[: len(part)] += part
        sizes = np.flatnonzero(total)
        yield pa.RecordBatch.from_arrays(
            [pa.array(sizes.astype(np.int64)), pa.array(total[sizes])], names=["tuples", "records"]
        )

    return run


def _bounded_counts_task(
    layout: KeyLayout, length: int, keep: CombinationLookup | None, allowed: int, key: int
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """``mapInArrow`` function: bounded counts of a task's records, pre-aggregated (``k0..``, ``count``)."""

    @fault_point("aggregate.dp_bounded_counts")
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            offsets, values, record_ids = csr_of(batch)
            counts = bounded_tuple_counts(
                offsets,
                values,
                record_ids,
                layout=layout,
                length=length,
                keep=keep,
                allowed=allowed,
                key=key,
            )
            arrays = [pa.array(counts.words[:, i]) for i in range(layout.n_words)]
            yield pa.RecordBatch.from_arrays(
                [*arrays, pa.array(counts.counts)], names=[*layout.word_columns, "count"]
            )

    return run


def _noise_task(
    layout: KeyLayout, length: int, scale: float, threshold: float, source: NoiseSource
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """``mapInArrow`` function: noisy count and threshold flag of every candidate (``combo``, ``count``)."""

    @fault_point("aggregate.dp_noise")
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            combos = batch.column("combo")
            ids = combos.flatten().to_numpy(zero_copy_only=False).astype(np.int32).reshape(-1, length)
            counts = batch.column("count").to_numpy(zero_copy_only=False).astype(np.int64)
            noisy, above = noisy_release(
                counts, source=source, scale=scale, threshold=threshold, length=length, words=layout.pack(ids)
            )
            yield pa.RecordBatch.from_arrays(
                [combos, pa.array(noisy.astype(np.float64)), pa.array(above)],
                names=["combo", "noisy_count", "above_threshold"],
            )

    return run


def _words_schema(layout: KeyLayout) -> T.StructType:
    return T.StructType(
        [T.StructField(c, T.LongType(), False) for c in layout.word_columns]
        + [T.StructField("count", T.LongType(), False)]
    )


# --------------------------------------------------------------------------------------------
# The level loop
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DpLevel:
    """What one level did; every field is a DP output or public, except ``candidates`` at k = 1.

    Attributes:
        length: The combination length k.
        candidates: ``|V_k|`` (at k = 1 the number of distinct attributes: not DP, keep private).
        allowed_sensitivity: ``Delta_k``.
        noise_scale: ``sigma_k sqrt(Delta_k)``, the scale of the discrete Gaussian noise (0 if
            ``Delta_k = 0``).
        threshold: The released threshold (:func:`ctdc_spark.dp.released_threshold`; ``inf`` if
            ``Delta_k = 0``: nothing is released).
        released: Candidates above the threshold (before Step C).
    """

    length: int
    candidates: int
    allowed_sensitivity: int
    noise_scale: float
    threshold: float
    released: int


@dataclass(frozen=True)
class BudgetTotals:
    """Cumulative budget of one dataset over all its recorded runs (basic composition)."""

    releases: int
    epsilon: float
    delta: float


@dataclass(frozen=True)
class DpMarginals:
    """Result of :func:`run_dp_marginals`.

    Attributes:
        parameters: Step A (budget split, sigmas, protected record count).
        mechanism: The percentile mechanism used.
        levels: One entry per level that ran (levels after an empty one are skipped).
        cumulative: The dataset's budget including this run.
        aggregates: The DP aggregates: ``length``, ``combo``, ``count``.
    """

    parameters: NoiseParameters
    mechanism: PercentileMechanism
    levels: tuple[DpLevel, ...]
    cumulative: BudgetTotals
    aggregates: DataFrame

    def accounting(self) -> PrivacyAccounting:
        """The privacy this release spent, as OpenDP's privacy maps state it."""
        return privacy_accounting(
            self.parameters, [level.allowed_sensitivity for level in self.levels], self.mechanism
        )


class _DpState:
    """Driver-side DP outputs and secrets of one run, stored before use.

    Kept in ``private/<run_id>/dp_state.json`` (mode 0600), next to the run's other secrets.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def once(self, name: str, compute: Callable[[], int]) -> int:
        """The stored value of ``name``, or ``compute()`` stored before it is returned."""
        if name not in self._data:
            self._data[name] = int(compute())
            write_json(self._path, self._data)
            os.chmod(self._path, 0o600)
        return int(self._data[name])


def _step_a(
    dp: DpConfig, length: int, n_records: int, state: _DpState, source: NoiseSource
) -> NoiseParameters:
    if dp.number_of_records_epsilon_proportion is None:
        return noise_parameters_for(dp, length=length, n_true=n_records)
    protected = state.once(
        "protected_number_of_records",
        lambda: cast(
            "int",
            noise_parameters_for(
                dp, length=length, n_true=n_records, source=source
            ).protected_number_of_records,
        ),
    )
    return noise_parameters_for(dp, length=length, n_true=n_records, protected_n=protected)


def _record_budget(
    spark: SparkSession, ctx: RunContext, params: NoiseParameters, mechanism: PercentileMechanism
) -> BudgetTotals:
    dp = cast("DpConfig", ctx.cfg.privacy.dp)
    dataset_id = dataset_id_of(dp, ctx.cfg.input.path)
    row = spark.createDataFrame(
        [(ctx.run_id, dataset_id, params.epsilon, params.delta, mechanism)], PRIVACY_LEDGER.schema
    )
    ctx.tables.write(row, PRIVACY_LEDGER, stage="aggregate")
    totals = (
        delta_io.read_table(spark, PRIVACY_LEDGER, root=ctx.root)
        .where(F.col("dataset_id") == F.lit(dataset_id))
        .agg(F.count("run_id"), F.sum("epsilon"), F.sum("delta"))
        .collect()[0]
    )
    return BudgetTotals(int(totals[0]), float(totals[1]), float(totals[2]))


def _histogram(records: DataFrame, *, length: int, keep: CombinationLookup | None) -> npt.NDArray[np.int64]:
    rows = (
        records.mapInArrow(_histogram_task(length, keep), _HISTOGRAM_SCHEMA)
        .groupBy("tuples")
        .agg(F.sum("records").alias("records"))
        .collect()
    )
    hist = np.zeros(max((int(r["tuples"]) for r in rows), default=0) + 1, dtype=np.int64)
    for r in rows:
        hist[int(r["tuples"])] = int(r["records"])
    return hist


def _bounded_counts(
    records: DataFrame,
    *,
    layout: KeyLayout,
    length: int,
    keep: CombinationLookup | None,
    allowed: int,
    key: int,
) -> DataFrame:
    summed = (
        records.mapInArrow(_bounded_counts_task(layout, length, keep, allowed, key), _words_schema(layout))
        .groupBy(*layout.word_columns)
        .agg(F.sum("count").alias("count"))
    )
    return summed.select(decode_combo(layout).alias("combo"), "count")


@dataclass(frozen=True)
class _LevelInputs:
    spark: SparkSession
    ctx: RunContext
    records: DataFrame
    attributes: DataFrame
    layout: KeyLayout
    n_columns: int
    params: NoiseParameters
    spec: ThresholdSpec
    mechanism: PercentileMechanism
    state: _DpState
    key: int
    source: NoiseSource
    written: frozenset[int]


def _read_level(inputs: _LevelInputs, length: int) -> DataFrame:
    return inputs.ctx.tables.read(inputs.spark, DP_NOISY_CANDIDATES).where(F.col("length") == length)


def _write_noisy_level(
    inputs: _LevelInputs,
    length: int,
    *,
    candidates: DataFrame,
    keep: CombinationLookup | None,
    allowed: int,
    scale: float,
    threshold: float,
) -> None:
    """Bound, count, add noise and write the level; the noise is drawn in the write's own tasks."""
    counts = _bounded_counts(
        inputs.records, layout=inputs.layout, length=length, keep=keep, allowed=allowed, key=inputs.key
    )
    noisy = (
        candidates.join(counts, "combo", "left")
        .select("combo", F.coalesce("count", F.lit(0).cast("long")).alias("count"))
        .mapInArrow(_noise_task(inputs.layout, length, scale, threshold, inputs.source), _NOISY_SCHEMA)
        .select(F.lit(inputs.ctx.run_id).alias("run_id"), F.lit(length).alias("length"), "*")
    )
    # txnVersion = k: a rerun of this run never replaces a committed level (it reuses its noise).
    inputs.ctx.tables.write(
        noisy, DP_NOISY_CANDIDATES, stage="aggregate", txn_version=length, partition_values={"length": length}
    )


def _written_levels(spark: SparkSession, ctx: RunContext) -> frozenset[int]:
    """Levels of this run already committed by an earlier attempt (their noise is reused)."""
    path = delta_io.table_path(ctx.root, DP_NOISY_CANDIDATES.name)
    if not delta_io.table_exists(spark, path):
        return frozenset()
    table = ctx.tables.read(spark, DP_NOISY_CANDIDATES)
    return frozenset(int(r["length"]) for r in table.select("length").distinct().collect())


def _run_level(inputs: _LevelInputs, length: int, survivors: DataFrame | None) -> DpLevel:
    """Steps B.1-B.7 for one level."""
    if survivors is None:
        candidates = level_one_candidates(inputs.attributes)
        keep = None
    else:
        candidates = next_level_candidates(survivors, inputs.attributes, length=length)
        # Collected to the driver and shipped in the task closures: bounded by |S_{k-1}|.
        keep = lookup_of(survivors.select("combo", F.lit(1).cast("long").alias("count")), inputs.layout)
    dp = cast("DpConfig", inputs.ctx.cfg.privacy.dp)
    allowed = inputs.state.once(
        f"allowed_sensitivity_{length}",
        lambda: allowed_sensitivity(
            _histogram(inputs.records, length=length, keep=keep),
            mechanism=inputs.mechanism,
            q_percent=dp.percentile_percentage,
            epsilon=inputs.params.percentile_epsilon,
            upper_bound=math.comb(inputs.n_columns, length),
            source=inputs.source,
        ),
    )
    if allowed == 0:
        log.warning("DP level %d: allowed sensitivity is 0, so this and longer lengths are empty", length)
        return DpLevel(length, candidates.count(), 0, 0.0, math.inf, 0)
    scale = inputs.params.noise_scale(length, allowed)
    threshold = released_threshold(
        length, inputs.params.sigma_for(length), allowed, inputs.params.delta, inputs.spec
    )
    if length not in inputs.written:
        _write_noisy_level(
            inputs,
            length,
            candidates=candidates,
            keep=keep,
            allowed=allowed,
            scale=scale,
            threshold=threshold,
        )
    stats = (
        _read_level(inputs, length)
        .agg(F.count("combo"), F.count(F.when(F.col("above_threshold"), True)))
        .collect()[0]
    )
    released = int(stats[1])
    log.info(
        "DP level %d: allowed sensitivity %d, threshold %.3f, %d combinations above it",
        length,
        allowed,
        threshold,
        released,
    )
    return DpLevel(length, int(stats[0]), allowed, scale, threshold, released)


def run_dp_marginals(spark: SparkSession, ctx: RunContext, prepared: PreparedRun) -> DpMarginals:
    """Compute the DP aggregates of a run (docs/spec.md 3.4) and record the budget it spends.

    Writes the private ``dp_noisy_candidates`` table (every candidate of every level with its
    noisy count), the ``privacy_ledger`` row of the run and ``private/<run_id>/dp_state.json``.

    Args:
        spark: The session.
        ctx: The run (``cfg.privacy.dp`` must be set).
        prepared: The run's prepared records, attribute dictionary and column count.

    Returns:
        The :class:`DpMarginals`; its ``aggregates`` frame reads the noisy table back from Delta.

    Raises:
        ConfigError: If the DP configuration is invalid (checked before any noise is drawn).
        StageFailedError: If the noisy record count comes out <= 0.
    """
    dp = ctx.cfg.privacy.dp
    if dp is None:
        raise ConfigError("privacy.dp: DP marginals need the privacy.dp settings.")
    mechanism = dp.percentile_mechanism
    length = prepared.max_length
    spec = thresholds_for(dp, length)
    source = ctx.noise_source
    state = _DpState(ctx.private_dir / STATE_FILE)
    params = _step_a(dp, length, prepared.n_records, state, source)
    cumulative = _record_budget(spark, ctx, params, mechanism)
    # The key must be secret: with it, anyone could tell which tuples each record kept.
    key = state.once("contribution_key", source.secret_key)
    written = _written_levels(spark, ctx)
    levels: list[DpLevel] = []
    # Spread round-robin once and keep: every level reads the records twice (histogram, counts).
    spread = prepared.records.select("record_id", "attrs").repartition(prepared.partitions)
    with cached(spread) as records:
        inputs = _LevelInputs(
            spark=spark,
            ctx=ctx,
            records=records,
            attributes=prepared.attributes,
            layout=prepared.layout,
            n_columns=prepared.n_columns,
            params=params,
            spec=spec,
            mechanism=mechanism,
            state=state,
            key=key,
            source=source,
            written=written,
        )
        survivors: DataFrame | None = None
        for k in range(1, length + 1):
            level = _run_level(inputs, k, survivors)
            levels.append(level)
            if level.released == 0:
                break
            survivors = _read_level(inputs, k).where("above_threshold").select("combo")
    if delta_io.table_exists(spark, delta_io.table_path(ctx.root, DP_NOISY_CANDIDATES.name)):
        released = (
            ctx.tables.read(spark, DP_NOISY_CANDIDATES)
            .where(F.col("above_threshold") & (F.col("length") <= len(levels)))
            .select("length", "combo", "noisy_count")
        )
    else:  # level 1 drew Delta_1 = 0: nothing was written, nothing is released
        released = spark.createDataFrame([], "length int, combo array<int>, noisy_count double")
    return DpMarginals(
        parameters=params,
        mechanism=mechanism,
        levels=tuple(levels),
        cumulative=cumulative,
        aggregates=post_process(released, max_length=length),
    )


# --------------------------------------------------------------------------------------------
# What the run manifest and the public metadata say
# --------------------------------------------------------------------------------------------


def release_record_count(release: DpMarginals, *, n_records: int) -> tuple[str, int]:
    """The count label and ``record_count`` of the SDS-format reportable aggregates file.

    docs/spec.md 3.4 Step C.4: ``protected_count`` and the noisy record count when the count is
    protected; otherwise SDS labels the counts ``count`` and prints the true number of records
    (``metadata.json`` then says the count is exact).

    Args:
        release: The DP release.
        n_records: The true number of records.

    Returns:
        ``(header label, record count)``.
    """
    protected = release.parameters.protected_number_of_records
    return ("protected_count", protected) if protected is not None else ("count", n_records)


def manifest_privacy(release: DpMarginals) -> dict[str, float]:
    """The manifest's ``privacy`` map: (epsilon, delta), its split, per-level values and the ledger.

    Private (it holds ``|V_1|``); the public subset is :func:`metadata_privacy`.
    """
    p = release.parameters
    out: dict[str, float] = {
        "epsilon": p.epsilon,
        "delta": p.delta,
        "rho": p.rho,
        "percentile_epsilon": p.percentile_epsilon,
        "percentile_mechanism_rank": 1.0 if release.mechanism == "rank" else 0.0,
        "cumulative_releases": float(release.cumulative.releases),
        "cumulative_epsilon": release.cumulative.epsilon,
        "cumulative_delta": release.cumulative.delta,
    }
    for entry in p.budget_split():
        out[f"epsilon_{entry.component}"] = entry.epsilon
        out[f"delta_{entry.component}"] = entry.delta
    for rho in p.rho_split():
        out[f"rho_{rho.component}_{rho.length}"] = rho.rho
    accounting = release.accounting()
    out["opendp_rho"] = accounting.rho
    out["opendp_epsilon"] = accounting.epsilon
    if p.protected_number_of_records is not None:
        out["protected_number_of_records"] = float(p.protected_number_of_records)
    for level in release.levels:
        prefix = f"length_{level.length}_"
        out[prefix + "candidates"] = float(level.candidates)
        out[prefix + "allowed_sensitivity"] = float(level.allowed_sensitivity)
        out[prefix + "noise_scale"] = level.noise_scale
        out[prefix + "threshold"] = level.threshold
        out[prefix + "released"] = float(level.released)
    return out


def metadata_privacy(release: DpMarginals) -> dict[str, Any]:
    """The public ``privacy`` section of ``metadata.json`` (only DP outputs and parameters)."""
    p = release.parameters
    exact_count = p.protected_number_of_records is None
    eps, delta = f"{p.epsilon:g}", f"{p.delta:.3g}"
    if release.mechanism == "rank":
        guarantee = "(ε, δ)-differential privacy"
        statement = (
            f"The reportable aggregates satisfy (ε = {eps}, δ = {delta})-differential privacy: adding or "
            "removing any one record changes the probability of any published result by at most a "
            f"factor e^{eps}, except with probability {delta}. Synthetic data generated from these "
            "aggregates alone keeps the same guarantee."
        )
    else:
        guarantee = "SDS-compatible DP marginals (nominal (ε, δ), not proven)"
        statement = (
            f"The reportable aggregates were computed with nominal ε = {eps}, δ = {delta} using the "
            "percentile step of Microsoft's Synthetic Data Showcase, which is not proven to be "
            "differentially private; treat the figures as nominal."
        )
    if exact_count:
        statement += " The number of records is published exactly and is not protected."
    return {
        "guarantee": guarantee,
        "statement": statement,
        "epsilon": p.epsilon,
        "delta": p.delta,
        "unit": "one record (one subject after joining its rows)",
        "mechanism": (
            "DP marginals (Gopi, Mahabadi & Yekhanin; Microsoft Synthetic Data Showcase): discrete Gaussian "
            "noise on the counts of attribute combinations of length 1..L, selected level by level, with "
            "per-record contribution bounds from a DP percentile and suppression thresholds, and the "
            "record count with discrete Laplace noise; every draw by OpenDP's exact samplers"
        ),
        "percentile_mechanism": release.mechanism,
        "reporting_length": p.reporting_length,
        "delta_rule": p.delta_rule,
        "budget": {
            entry.component: {"epsilon": entry.epsilon, "delta": entry.delta} for entry in p.budget_split()
        },
        "rho": p.rho,
        "accounting": _accounting_section(release.accounting()),
        "percentile_epsilon_per_length": p.percentile_epsilon,
        "protected_number_of_records": p.protected_number_of_records,
        "record_count_is_exact": exact_count,
        "levels": [
            {
                "length": level.length,
                "allowed_sensitivity": level.allowed_sensitivity,
                "noise_standard_deviation": level.noise_scale,
                "threshold": None if math.isinf(level.threshold) else level.threshold,
                "released_before_post_processing": level.released,
            }
            for level in release.levels
        ],
        "cumulative": {
            "releases": release.cumulative.releases,
            "epsilon": release.cumulative.epsilon,
            "delta": release.cumulative.delta,
            "composition": "basic (sum over the dataset's releases)",
        },
    }


def _accounting_section(accounting: PrivacyAccounting) -> dict[str, Any]:
    """The ``privacy.accounting`` part of ``metadata.json``: OpenDP's figures for what ran."""
    return {
        "library": f"OpenDP {OPENDP_VERSION}",
        "statement": (
            "Privacy loss of each measurement from its OpenDP privacy map; the zCDP losses add up to "
            "rho, which OpenDP converts to (epsilon, delta / 2)-DP (make_zCDP_to_approxDP, "
            "make_fix_delta); the length-1 threshold spends the other delta / 2 and the record count's "
            "discrete Laplace epsilon adds to the total (basic composition)."
            + (
                ""
                if accounting.proven
                else " Nominal: the SDS-compatible percentile scores do not have sensitivity 1, which "
                "the percentile's privacy map assumes."
            )
        ),
        "measurements": [
            {
                "component": loss.component,
                "length": loss.length,
                "mechanism": loss.mechanism,
                "measure": loss.measure,
                ("epsilon" if loss.measure == "pure DP" else "rho"): loss.value,
            }
            for loss in accounting.losses
        ],
        "rho": accounting.rho,
        "marginals": {"epsilon": accounting.marginals_epsilon, "delta": accounting.delta},
        "number_of_records_epsilon": accounting.number_of_records_epsilon,
        "epsilon": accounting.epsilon,
        "delta": accounting.delta,
        "proven": accounting.proven,
    }
