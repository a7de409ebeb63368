"""The synthesize stage: k-synthetic microdata in every SDS mode (SPEC.md section 4).

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

import logging
import math

import numpy as np
import numpy.typing as npt
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark._holdout import control_record_ids
from ctdc_spark.aggregate.stage import load_prepared
from ctdc_spark.combos.counting import lookup_of
from ctdc_spark.combos.keys import KeyLayout
from ctdc_spark.errors import StageFailedError
from ctdc_spark.schemas import COLUMNS, REPORTABLE_AGGREGATES, SYNTHETIC_RECORDS
from ctdc_spark.stage import RunContext, StageResult
from ctdc_spark.synthesize._distributed import (
    SEEDS_PER_PARTITION,
    attribute_counts,
    build_row_index,
    sample_aggregate_seeded,
    sample_consolidation,
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
from ctdc_spark.synthesize._row_seeded import consolidation_available

__all__ = ["run_synthesize"]

log = logging.getLogger(__name__)


def _targets(single: np.ndarray, k: int) -> np.ndarray:
    """Reported 1-counts: floor(count / k) * k, 0 below k (SPEC.md 3.2)."""
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


def _sensitive_modes(
    spark: SparkSession, ctx: RunContext, persisted: list[DataFrame]
) -> tuple[DataFrame, DataFrame]:
    """row_seeded, value_seeded and unseeded: sample under the sensitive row index."""
    cfg, syn = ctx.cfg, ctx.cfg.synthesis
    k, seed = cfg.privacy.resolution, ctx.synthesis_seed()
    prepared = load_prepared(spark, ctx)
    columns = ctx.tables.read(spark, COLUMNS)
    info = prepared.attributes.select("attr_id", "column_index", "count").orderBy("attr_id").collect()
    attr_column = np.array([r["column_index"] for r in info], dtype=np.int32)
    single = np.array([r["count"] for r in info], dtype=np.int64)
    control_ids = control_record_ids(prepared.n_records, cfg.evaluation.attacks, seed=seed)
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
    targets = _targets(single, k)
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
            seeded = sample_row_seeded(
                seeds,
                index,
                k=k,
                cache_max_size=syn.cache_max_size,
                seed=seed,
                partitions=partitions,
            ).persist(StorageLevel.MEMORY_AND_DISK)
            persisted.append(seeded)
            placed = to_numpy_counts(attribute_counts(seeded), len(single))
            available = consolidation_available(single, single - placed, k)
        else:  # value_seeded: consolidation only, targets = the reported 1-counts (SPEC.md 4.3 intent)
            seeded = None
            available = consolidation_available(single, single, k)
        available = np.where(supported >= k, available, 0)
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
        combined = consolidated if seeded is None else seeded.unionByName(consolidated)
        combined = combined.persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(combined)
        records = suppress(combined, _excess(combined, targets))
    return records, dictionary_from_attributes(prepared.attributes, columns)


def _aggregate_seeded(spark: SparkSession, ctx: RunContext) -> tuple[DataFrame, DataFrame]:
    """aggregate_seeded: reads only the reportable aggregates and the column layout."""
    cfg, syn = ctx.cfg, ctx.cfg.synthesis
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
    length = min(cfg.privacy.reporting_length or max_length, max_length)
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
    factor = syn.aggregate_counts_scale_factor
    available = np.ceil(ones * factor).astype(np.int64) if factor else ones
    records = sample_aggregate_seeded(
        spark,
        lookup,
        attr_column,
        available,
        length=length,
        use_synthetic_counts=syn.use_synthetic_counts,
        weight_selection_percentile=syn.weight_selection_percentile,
        target_number_of_records=syn.target_number_of_records,
        count_scale=factor,
        seed=ctx.synthesis_seed(),
        shard_size=syn.consolidation_shard_size,
    ).select("pre_id", "attrs")
    return records, dictionary


def run_synthesize(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Stage entry point."""
    result = StageResult()
    persisted: list[DataFrame] = []
    columns = ctx.tables.read(spark, COLUMNS)
    layout = SourceLayout.from_columns_table(columns)
    try:
        if ctx.cfg.synthesis.mode == "aggregate_seeded":
            records, dictionary = _aggregate_seeded(spark, ctx)
        else:
            records, dictionary = _sensitive_modes(spark, ctx, persisted)
        rendered = released_order(
            render_cells(records.withColumnRenamed("pre_id", "record_id"), dictionary, layout)
        )
        result.delta_versions[SYNTHETIC_RECORDS.name] = ctx.tables.write(
            rendered.withColumn("run_id", F.lit(ctx.run_id)), SYNTHETIC_RECORDS, stage="synthesize"
        )
    finally:
        for df in persisted:
            df.unpersist()
    result.row_counts[SYNTHETIC_RECORDS.name] = ctx.tables.rows_written(spark, SYNTHETIC_RECORDS)
    # Exports re-render from the written table: sampling never runs twice.
    synthetic = ctx.tables.read(spark, SYNTHETIC_RECORDS)
    rendered = render_cells(synthetic.select("record_id", "attrs"), dictionary, layout)
    pending = ctx.pending_dir
    result.outputs.append(str(write_wide_csv(rendered, pending / "synthetic_microdata.csv", layout)))
    if ctx.cfg.synthesis.long_format:
        result.outputs.append(str(write_long_csv(rendered, pending / "synthetic_microdata_long.csv", layout)))
    return result
