"""SDS-format aggregate files (docs/architecture.md 3.3) and the combination strings they use."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctdc_spark._faults import fault_point
from ctdc_spark.io.exports import csv_field, write_sorted_lines

#: The public aggregates with one column per attribute slot (:func:`write_aggregates_tidy_csv`).
TIDY_AGGREGATES_CSV = "aggregates_tidy.csv"


def with_selections(df: DataFrame, attributes: DataFrame) -> DataFrame:
    """Add ``selections``: the canonical ``col:value;col:value`` string of ``combo``.

    Attribute ids follow the byte order of ``col:value``, so mapping the sorted ids to strings
    in place yields the canonical order. The dictionary (every attribute string, indexed by id)
    reaches the tasks as a Spark broadcast variable, so no value becomes a literal in the query
    plan, and each task maps its combinations with one Arrow ``take``. Joining the dictionary to
    every row instead (a cross join with one array column) copies the whole dictionary per row:
    with an ID-like column of 100,000 values that cost grew with combinations x attributes.
    """
    strings = attributes.select("attr_id", F.concat_ws(":", "column", "value").alias("s")).toArrow()
    ids = strings.column("attr_id").to_numpy()
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(ids[order], np.arange(len(ids))):
        raise ValueError("attribute ids must be 0..n-1, as the prepare stage numbers them")
    names = df.sparkSession.sparkContext.broadcast(strings.column("s").combine_chunks().take(pa.array(order)))
    schema = T.StructType([*df.schema.fields, T.StructField("selections", T.StringType(), False)])

    @fault_point("combos.selections")
    def add_selections(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        dictionary = names.value
        for batch in batches:
            combos = batch.column(batch.schema.get_field_index("combo"))
            attribute_strings = pa.ListArray.from_arrays(combos.offsets, dictionary.take(combos.values))
            yield batch.append_column("selections", pc.binary_join(attribute_strings, ";"))

    return df.mapInArrow(add_selections, schema)


def _sorted_lines(df: DataFrame, line: Column, count_col: str) -> DataFrame:
    # SDS order: length ascending, count descending; the combination string breaks ties so the
    # file is byte-identical across runs.
    return df.orderBy(F.col("length").asc(), F.col(count_col).desc(), F.col("selections").asc()).select(
        line.alias("line")
    )


def write_aggregates_tsv(
    df: DataFrame, path: Path, *, count_col: str, header_label: str, record_count: int
) -> Path:
    """Write ``selections<TAB><count>`` lines after the SDS header and ``record_count`` lines.

    Args:
        df: Columns ``length``, ``selections`` and ``count_col``.
        path: Target file.
        count_col: Column with the counts to write.
        header_label: ``count`` (raw) or ``protected_count``.
        record_count: Number of records (protected when the counts are).
    """
    line = F.concat_ws("\t", F.col("selections"), F.col(count_col).cast("string"))
    return write_sorted_lines(
        _sorted_lines(df, line, count_col),
        path,
        header=[f"selections\t{header_label}", f"record_count\t{record_count}"],
    )


def write_aggregates_csv(df: DataFrame, path: Path, *, count_col: str) -> Path:
    """Spreadsheet-friendly ``selections,length,protected_count`` CSV (same order as the TSV)."""
    line = F.concat_ws(
        ",", csv_field(F.col("selections")), F.col("length").cast("string"), F.col(count_col).cast("string")
    )
    return write_sorted_lines(
        _sorted_lines(df, line, count_col), path, header=["selections,length,protected_count"]
    )


def tidy_aggregates_header(max_length: int) -> str:
    """``length,column_1,value_1,...,column_L,value_L,count``: one column per attribute slot.

    Example:
        >>> tidy_aggregates_header(2)
        'length,column_1,value_1,column_2,value_2,count'
    """
    slots = [f"column_{i},value_{i}" for i in range(1, max_length + 1)]
    return ",".join(["length", *slots, "count"])


def write_aggregates_tidy_csv(df: DataFrame, path: Path, *, count_col: str, max_length: int) -> Path:
    """One row per combination with its attributes in separate columns (same order as the TSV).

    A spreadsheet or a data frame library reads it without splitting ``col:value;col:value`` by
    hand; shorter combinations leave their last slots empty.

    Args:
        df: Columns ``length``, ``selections`` and ``count_col``.
        path: Target file.
        count_col: Column with the counts to write.
        max_length: L, the number of attribute slots.
    """
    # Normalised column names and values never contain ";" or ":" (docs/spec.md 2.2).
    attributes = F.split(F.col("selections"), ";")
    cells = [F.col("length").cast("string")]
    for i in range(1, max_length + 1):
        pair = F.split(F.element_at(attributes, i), ":", 2)
        present = F.size(attributes) >= i
        cells.append(F.when(present, csv_field(pair[0])).otherwise(F.lit("")))
        cells.append(F.when(present, csv_field(pair[1])).otherwise(F.lit("")))
    cells.append(F.col(count_col).cast("string"))
    return write_sorted_lines(
        _sorted_lines(df, F.concat_ws(",", *cells), count_col),
        path,
        header=[tidy_aggregates_header(max_length)],
    )
