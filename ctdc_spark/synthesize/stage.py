"""The synthesize stage: k-synthetic microdata in every SDS mode (docs/spec.md section 4), and ``fitted``
(guarantee-safe candidates weighed to the released aggregates, :mod:`._fit`).

Writes the public ``synthetic_records`` Delta table and ``synthetic_microdata.csv`` (plus the
optional long format). The CSV files go to ``private/<run_id>/pending/`` first: they reach the
release bundle only after the evaluate stage's independent k-synthetic verification passes.

The modes that sample under the sensitive row index leave the attack evaluation's control records
(:mod:`ctdc_spark._holdout`) out of it: they seed no record and support no combination. The
attribute targets stay the official 1-counts of all records, which consolidation tops up from the
other records, so the control records reach the synthetic data only through counts that are
published anyway.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark._caching import cached
from ctdc_spark._holdout import control_record_ids
from ctdc_spark._random import stage_key
from ctdc_spark.aggregate.stage import PreparedRun, load_prepared
from ctdc_spark.combos.counting import lookup_of
from ctdc_spark.combos.keys import CombinationLookup, KeyLayout
from ctdc_spark.errors import StageFailedError
from ctdc_spark.schemas import COLUMNS, REPORTABLE_AGGREGATES, SYNTHETIC_RECORDS
from ctdc_spark.stage import RunContext, StageResult
from ctdc_spark.synthesize._batch import SyntheticBatch, concat_batches
from ctdc_spark.synthesize._distributed import (
    SEEDS_PER_PARTITION,
    RowIndexArrays,
    attribute_counts,
    build_row_index,
    collect_batch,
    records_frame,
    sample_aggregate_seeded,
    sample_consolidation,
    sample_grown_from_combinations,
    sample_row_seeded,
    sample_unseeded,
    suppress,
    to_numpy_counts,
)
from ctdc_spark.synthesize._export import (
    SourceLayout,
    dictionary_from_attributes,
    dictionary_from_reportable,
    released_order,
    render_cells,
    write_long_csv,
    write_wide_csv,
)
from ctdc_spark.synthesize._fit import (
    NOISY_TARGET_LOSS,
    RELATIVE_LOSS,
    FitLoss,
    fit_candidates,
    fitted_records,
    integer_copies,
    thin_candidates,
    uncovered_combinations,
    unique_candidates,
)
from ctdc_spark.synthesize._row_index import Int32Array, IntArray
from ctdc_spark.synthesize._row_seeded import consolidation_available

__all__ = ["run_synthesize"]

LONG_PASS_QUOTA = 5
"""fitted, DP mode: the later passes' 1-count quota, as a multiple of the released 1-counts, so that
records stop growing where the released combinations end rather than where the quota does."""

log = logging.getLogger(__name__)


def _targets(single: np.ndarray, k: int) -> np.ndarray:
    """Reported 1-counts: floor(count / k) * k, 0 below k (docs/spec.md 3.2)."""
    return np.where(single >= k, single // k * k, 0).astype(np.int64)


def _excess(records: DataFrame, targets: np.ndarray) -> DataFrame:
    spark = records.sparkSession
    current = to_numpy_counts(attribute_counts(records), len(targets))
    over = current - targets
    rows = [(int(a), int(e)) for a, e in enumerate(over) if e > 0]
    return spark.createDataFrame(rows, "attr_id int, excess long")


def _without_control(records: DataFrame, control_ids: npt.NDArray[np.int64]) -> tuple[DataFrame, DataFrame]:
    """``(seeds, indexed)``: the records without the control records, and all records with the
    control records' attributes removed (their rows stay, so index rows keep matching record ids).

    The control ids (at most ``evaluation.attacks.control_max``) are joined as a broadcast table.
    """
    if len(control_ids) == 0:
        return records, records
    spark = records.sparkSession
    control = F.broadcast(
        spark.createDataFrame([(int(i),) for i in control_ids], "record_id long").withColumn(
            "held_out", F.lit(True)
        )
    )
    marked = records.select("record_id", "attrs").join(control, "record_id", "left")
    seeds = marked.where(F.col("held_out").isNull()).select("record_id", "attrs")
    indexed = marked.select(
        "record_id",
        F.when(F.col("held_out"), F.array().cast("array<int>")).otherwise(F.col("attrs")).alias("attrs"),
    )
    return seeds, indexed


@dataclass(frozen=True)
class _SensitiveInputs:
    """What the modes sampling under the sensitive row index start from."""

    prepared: PreparedRun
    columns: DataFrame
    seeds: DataFrame
    index: RowIndexArrays
    single: IntArray
    supported: IntArray
    partitions: int


def _sensitive_inputs(spark: SparkSession, ctx: RunContext) -> _SensitiveInputs:
    cfg, syn = ctx.cfg, ctx.cfg.synthesis
    prepared = load_prepared(spark, ctx)
    columns = ctx.tables.read(spark, COLUMNS)
    info = prepared.attributes.select("attr_id", "column_index", "count").orderBy("attr_id").collect()
    attr_column = np.array([r["column_index"] for r in info], dtype=np.int32)
    single = np.array([r["count"] for r in info], dtype=np.int64)
    control_ids = control_record_ids(prepared.n_records, cfg.evaluation.attacks, seed=ctx.synthesis_seed())
    seeds, indexed = _without_control(prepared.records, control_ids)
    # Consolidation may only place attributes the index supports k times; one that reaches k only
    # with the control records stays short of its official count (benchmarks/attacks.md counts them).
    supported = single if len(control_ids) == 0 else to_numpy_counts(attribute_counts(seeds), len(single))
    index = build_row_index(
        indexed,
        n_records=prepared.n_records,
        n_attributes=prepared.n_attributes,
        nnz=int(single.sum()),
        attr_column=attr_column,
        max_broadcast_mb=syn.max_broadcast_mb,
    )
    partitions = max(
        spark.sparkContext.defaultParallelism, math.ceil(prepared.n_records / SEEDS_PER_PARTITION)
    )
    return _SensitiveInputs(prepared, columns, seeds, index, single, supported, partitions)


@contextlib.contextmanager
def _sensitive_modes(spark: SparkSession, ctx: RunContext) -> Iterator[tuple[DataFrame, DataFrame]]:
    """row_seeded, value_seeded and unseeded: sample under the sensitive row index.

    Yields the records and their dictionary. The samples they are built from are cached (read by
    the attribute counts and by suppression) until the ``with`` block ends: write them inside it.
    """
    cfg, syn = ctx.cfg, ctx.cfg.synthesis
    k, seed = cfg.privacy.resolution, ctx.synthesis_seed()
    inputs = _sensitive_inputs(spark, ctx)
    prepared, index, single, partitions = inputs.prepared, inputs.index, inputs.single, inputs.partitions
    targets = _targets(single, k)
    with contextlib.ExitStack() as caches:
        if syn.mode == "unseeded":
            records = sample_unseeded(
                spark,
                index,
                n_records=prepared.n_records,
                k=k,
                cache_max_size=syn.cache_max_size,
                seed=seed,
                partitions=partitions,
            ).select("pre_id", "attrs")
        else:
            if syn.mode == "row_seeded":
                sampled = sample_row_seeded(
                    inputs.seeds,
                    index,
                    k=k,
                    cache_max_size=syn.cache_max_size,
                    seed=seed,
                    partitions=partitions,
                )
                seeded = caches.enter_context(cached(sampled, StorageLevel.MEMORY_AND_DISK))
                placed = to_numpy_counts(attribute_counts(seeded), len(single))
                available = consolidation_available(single, single - placed, k)
            else:
                # value_seeded: consolidation only, targets = the reported 1-counts (docs/spec.md 4.3 intent)
                seeded = None
                available = consolidation_available(single, single, k)
            available = np.where(inputs.supported >= k, available, 0)
            oversampling = None
            if syn.mode == "value_seeded" and syn.oversampling_ratio is not None:
                layout = KeyLayout(max(prepared.n_attributes, 1), prepared.max_length)
                reported = ctx.tables.read(spark, REPORTABLE_AGGREGATES)
                lookup = lookup_of(reported.select("combo", F.col("protected_count").alias("count")), layout)
                oversampling = (lookup, prepared.max_length, syn.oversampling_ratio, syn.oversampling_tries)
            consolidated = sample_consolidation(
                spark,
                index,
                available,
                k=k,
                cache_max_size=syn.cache_max_size,
                seed=seed,
                shard_size=syn.consolidation_shard_size,
                oversampling=oversampling,
            )
            union = consolidated if seeded is None else seeded.unionByName(consolidated)
            combined = caches.enter_context(cached(union, StorageLevel.MEMORY_AND_DISK))
            records = suppress(combined, _excess(combined, targets))
        yield records, dictionary_from_attributes(prepared.attributes, inputs.columns)


@dataclass(frozen=True)
class _ReportedInputs:
    """What the modes building records from the published aggregates alone start from."""

    dictionary: DataFrame
    lookup: CombinationLookup
    attr_column: Int32Array
    ones: IntArray
    length: int


def _reported_inputs(spark: SparkSession, ctx: RunContext) -> _ReportedInputs:
    """The reportable aggregates (and the column layout) as the aggregate-seeded engine needs them."""
    reported = ctx.tables.read(spark, REPORTABLE_AGGREGATES)
    columns = ctx.tables.read(spark, COLUMNS)
    dictionary = dictionary_from_reportable(reported, columns)
    info = dictionary.select("attr_id", "column_index").collect()
    if not info:
        raise StageFailedError(
            "no combination is reportable (every count is below k); nothing to synthesize."
        )
    n_attributes = max(r["attr_id"] for r in info) + 1
    attr_column = np.full(n_attributes, -1, dtype=np.int32)
    for r in info:
        attr_column[r["attr_id"]] = r["column_index"]
    # Attributes that are not reportable never occur; give them a column of their own so the
    # engine's per-column bookkeeping stays well-formed.
    unused = attr_column < 0
    attr_column[unused] = attr_column.max() + 1 + np.arange(int(unused.sum()))
    max_length = int(reported.agg(F.max("length")).collect()[0][0])
    length = min(ctx.cfg.privacy.reporting_length or max_length, max_length)
    layout = KeyLayout(n_attributes, max(length, 1))
    lookup = lookup_of(
        reported.where(F.col("length") <= length).select("combo", F.col("protected_count").alias("count")),
        layout,
    )
    ones = to_numpy_counts(
        reported.where(F.col("length") == 1).select(
            F.col("combo")[0].alias("attr_id"), F.col("protected_count").alias("n")
        ),
        n_attributes,
    )
    return _ReportedInputs(dictionary, lookup, attr_column, ones, length)


def _aggregate_seeded(spark: SparkSession, ctx: RunContext) -> tuple[DataFrame, DataFrame]:
    """aggregate_seeded: reads only the reportable aggregates and the column layout."""
    syn = ctx.cfg.synthesis
    inputs = _reported_inputs(spark, ctx)
    factor = syn.aggregate_counts_scale_factor
    available = np.ceil(inputs.ones * factor).astype(np.int64) if factor else inputs.ones
    records = sample_aggregate_seeded(
        spark,
        inputs.lookup,
        inputs.attr_column,
        available,
        length=inputs.length,
        use_synthetic_counts=syn.use_synthetic_counts,
        weight_selection_percentile=syn.weight_selection_percentile,
        target_number_of_records=syn.target_number_of_records,
        count_scale=factor,
        seed=ctx.synthesis_seed(),
        shard_size=syn.consolidation_shard_size,
    ).select("pre_id", "attrs")
    return records, inputs.dictionary


def _record_target(spark: SparkSession, ctx: RunContext) -> int | None:
    """fitted: the number of records to hold the fit to (the published record count), if asked."""
    if ctx.cfg.synthesis.fit_record_count == "free":
        return None
    return ctx.tables.release_facts(spark).published_record_count


def _fit_and_draw(
    spark: SparkSession,
    ctx: RunContext,
    pool: SyntheticBatch,
    targets: CombinationLookup,
    *,
    max_length: int,
    loss: FitLoss,
) -> DataFrame:
    """Weigh the pool to the released counts and draw the fitted records (on the driver, within
    ``synthesis.fit_max_mb``)."""
    syn, seed = ctx.cfg.synthesis, ctx.synthesis_seed()
    candidates, thinned = thin_candidates(
        unique_candidates(pool),
        max_length,
        budget_bytes=syn.fit_max_mb * 2**20,
        key=stage_key(seed, "fitted_thin"),
    )
    if thinned:
        log.warning(
            "fitted: %d of %d candidates left out to stay within synthesis.fit_max_mb=%d; raise it "
            "(with the driver's memory) to fit them all",
            thinned,
            thinned + len(candidates),
            syn.fit_max_mb,
        )
    fit = fit_candidates(
        candidates,
        targets,
        max_length=max_length,
        record_target=_record_target(spark, ctx),
        iterations=syn.fit_iterations,
        loss=loss,
    )
    if fit.dropped:
        log.warning("fitted: %d candidate(s) held an unreleased combination and were left out", fit.dropped)
    copies = integer_copies(fit.weights, stage_key(seed, "fitted_copies"))
    return records_frame(spark, fitted_records(fit.candidates, copies))


def _fitted_from_records(spark: SparkSession, ctx: RunContext) -> tuple[DataFrame, DataFrame]:
    """fitted, k mode: k-safe candidates grown under the sensitive row index, weighed to the
    reportable aggregates. Every candidate has support >= k, so every fitted record does."""
    cfg, syn = ctx.cfg, ctx.cfg.synthesis
    k, seed = cfg.privacy.resolution, ctx.synthesis_seed()
    inputs = _sensitive_inputs(spark, ctx)
    prepared = inputs.prepared
    orders = [
        collect_batch(
            sample_row_seeded(
                inputs.seeds,
                inputs.index,
                k=k,
                cache_max_size=syn.cache_max_size,
                seed=stage_key(seed, f"fitted_order_{order}"),
                partitions=inputs.partitions,
            )
        )
        for order in range(syn.fit_orders)
    ]
    layout = KeyLayout(max(prepared.n_attributes, 1), prepared.max_length)
    reported = ctx.tables.read(spark, REPORTABLE_AGGREGATES)
    targets = lookup_of(reported.select("combo", F.col("protected_count").alias("count")), layout)
    seeded = unique_candidates(concat_batches(orders))
    # Rare reportable combinations are seldom kept by any seeded order; each one missing from the
    # pool seeds a candidate of its own that holds it (when the row index supports it k times).
    missing = uncovered_combinations(seeded, targets, prepared.max_length)
    grown = missing
    if len(missing):
        grown = collect_batch(
            sample_grown_from_combinations(
                spark,
                missing,
                inputs.index,
                k=k,
                cache_max_size=syn.cache_max_size,
                seed=seed,
                partitions=inputs.partitions,
            )
        )
    pool = concat_batches([seeded, grown])
    records = _fit_and_draw(spark, ctx, pool, targets, max_length=prepared.max_length, loss=RELATIVE_LOSS)
    return records, dictionary_from_attributes(prepared.attributes, inputs.columns)


def _fitted_from_aggregates(spark: SparkSession, ctx: RunContext) -> tuple[DataFrame, DataFrame]:
    """fitted, DP mode: aggregate-seeded candidates weighed to the DP aggregates (post-processing;
    reads no sensitive table). The second and later passes grow records as long as the released
    combinations allow, which the quota-bound first pass cannot."""
    syn = ctx.cfg.synthesis
    inputs = _reported_inputs(spark, ctx)
    n_published = ctx.tables.release_facts(spark).published_record_count
    passes = []
    for order in range(syn.fit_orders):
        long_records = order > 0
        passes.append(
            collect_batch(
                sample_aggregate_seeded(
                    spark,
                    inputs.lookup,
                    inputs.attr_column,
                    inputs.ones * LONG_PASS_QUOTA if long_records else inputs.ones,
                    length=inputs.length,
                    use_synthetic_counts=False,
                    weight_selection_percentile=syn.weight_selection_percentile,
                    target_number_of_records=n_published if long_records else None,
                    count_scale=None,
                    seed=stage_key(ctx.synthesis_seed(), f"fitted_order_{order}"),
                    shard_size=syn.consolidation_shard_size,
                )
            )
        )
    records = _fit_and_draw(
        spark, ctx, concat_batches(passes), inputs.lookup, max_length=inputs.length, loss=NOISY_TARGET_LOSS
    )
    return records, inputs.dictionary


def run_synthesize(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Stage entry point."""
    result = StageResult()
    columns = ctx.tables.read(spark, COLUMNS)
    layout = SourceLayout.from_columns_table(columns)
    with contextlib.ExitStack() as caches:
        if ctx.cfg.synthesis.mode == "aggregate_seeded":
            records, dictionary = _aggregate_seeded(spark, ctx)
        elif ctx.cfg.synthesis.mode == "fitted":
            fitted = _fitted_from_aggregates if ctx.cfg.privacy.dp is not None else _fitted_from_records
            records, dictionary = fitted(spark, ctx)
        else:
            records, dictionary = caches.enter_context(_sensitive_modes(spark, ctx))
        rendered = released_order(
            render_cells(records.withColumnRenamed("pre_id", "record_id"), dictionary, layout)
        )
        result.delta_versions[SYNTHETIC_RECORDS.name] = ctx.tables.write(
            rendered.withColumn("run_id", F.lit(ctx.run_id)), SYNTHETIC_RECORDS, stage="synthesize"
        )
    result.row_counts[SYNTHETIC_RECORDS.name] = ctx.tables.rows_written(spark, SYNTHETIC_RECORDS)
    # Exports re-render from the written table: sampling never runs twice.
    synthetic = ctx.tables.read(spark, SYNTHETIC_RECORDS)
    rendered = render_cells(synthetic.select("record_id", "attrs"), dictionary, layout)
    pending = ctx.pending_dir
    result.outputs.append(str(write_wide_csv(rendered, pending / "synthetic_microdata.csv", layout)))
    if ctx.cfg.synthesis.long_format:
        result.outputs.append(str(write_long_csv(rendered, pending / "synthetic_microdata_long.csv", layout)))
    return result
