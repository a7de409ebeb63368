"""Render synthetic records in the original column layout, order them, and export them.

docs/spec.md 4.0: rows are rendered in header order (unknown cells empty, multi-value columns re-joined
with their delimiter in expanded-column order), sorted lexicographically by their cells (the
empty string first), then stably by descending number of non-empty cells. A synthetic record's
id is its 0-based row in the released CSV, which the evaluation uses to name records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ctdc_spark.io.exports import csv_field, csv_text, write_sorted_lines


@dataclass(frozen=True)
class SourceLayout:
    """The original (source) columns, in file order, and which of them are multi-valued."""

    source_indices: tuple[int, ...]
    names: tuple[str, ...]
    delimiters: tuple[str | None, ...]

    @classmethod
    def from_columns_table(cls, columns: DataFrame) -> SourceLayout:
        """Collect the (small) ``columns`` table of a run: one row per expanded column."""
        rows = (
            columns.groupBy("source_index", "source_column")
            .agg(F.first("multi_value_delimiter", ignorenulls=True).alias("delimiter"))
            .orderBy("source_index")
            .collect()
        )
        return cls(
            tuple(r["source_index"] for r in rows),
            tuple(r["source_column"] for r in rows),
            tuple(r["delimiter"] for r in rows),
        )


def dictionary_from_attributes(attributes: DataFrame, columns: DataFrame) -> DataFrame:
    """Rendering dictionary from the prepared ``attributes`` table (sensitive counts not read)."""
    sources = columns.select("column", "source_index")
    return (
        attributes.select("attr_id", "column", "source_value", "column_index")
        .join(F.broadcast(sources), "column")
        .drop("column")
    )


def dictionary_from_reportable(reportable: DataFrame, columns: DataFrame) -> DataFrame:
    """Rendering dictionary rebuilt from the reportable 1-combinations and the column layout.

    ``aggregate_seeded`` must not read any table derived from sensitive records beyond the
    published aggregates, so the attribute names come from ``selections`` (``column:value``;
    neither part can contain ``:`` after normalisation).
    """
    singles = reportable.where(F.col("length") == 1).select(
        F.col("combo")[0].alias("attr_id"),
        F.substring_index("selections", ":", 1).alias("column"),
        F.expr("substring(selections, length(substring_index(selections, ':', 1)) + 2)").alias("value"),
    )
    return singles.join(F.broadcast(columns), "column").select(
        "attr_id",
        "source_index",
        "column_index",
        F.when(
            F.col("multi_value_delimiter").isNotNull(),
            F.expr("substring(column, length(source_column) + 2)"),
        )
        .otherwise(F.col("value"))
        .alias("source_value"),
    )


def render_cells(synthetic: DataFrame, dictionary: DataFrame, layout: SourceLayout) -> DataFrame:
    """Render each synthetic record as its row of cells.

    Args:
        synthetic: ``record_id`` and ``attrs`` (sorted attribute ids).
        dictionary: ``attr_id``, ``source_index``, ``source_value``, ``column_index`` of every
            attribute that can occur.
        layout: Source layout (one cell per source column, in order).

    Returns:
        ``record_id``, ``attrs`` and ``cells`` (array<string>, empty string for unknown).
    """
    # Source column indices are schema positions (not data), so they may be literals.
    indices = F.array(*[F.lit(i) for i in layout.source_indices])
    attrs = dictionary.select(
        "attr_id",
        (F.array_position(indices, F.col("source_index")) - 1).cast("int").alias("position"),
        "source_value",
        "column_index",
    )
    delimiters = F.array(*[F.lit(d or "") for d in layout.delimiters])
    cells_per_record = (
        synthetic.select("record_id", F.explode("attrs").alias("attr_id"))
        .join(F.broadcast(attrs), "attr_id")
        .groupBy("record_id", "position")
        .agg(F.sort_array(F.collect_list(F.struct("column_index", "source_value"))).alias("parts"))
        .select(
            "record_id",
            "position",
            F.transform("parts", lambda p: p["source_value"]).alias("values"),
            F.element_at(delimiters, F.col("position") + 1).alias("delimiter"),
        )
        # array_join with a per-row delimiter column (the Python API only takes a literal).
        .select("record_id", "position", F.expr("array_join(values, delimiter)").alias("cell"))
        .groupBy("record_id")
        .agg(F.map_from_entries(F.collect_list(F.struct("position", "cell"))).alias("by_position"))
    )
    n = len(layout.names)
    return synthetic.join(cells_per_record, "record_id", "left").select(
        "record_id",
        "attrs",
        F.transform(
            F.sequence(F.lit(0), F.lit(n - 1)),
            lambda i: F.coalesce(F.element_at(F.col("by_position"), i), F.lit("")),
        ).alias("cells"),
    )


def released_order(rendered: DataFrame) -> DataFrame:
    """Replace ``record_id`` by the record's 0-based row in the released file (docs/spec.md 4.0)."""
    non_empty = F.size(F.filter("cells", lambda c: c != F.lit("")))
    # One window over all synthetic records: the released order is global by definition.
    order = Window.orderBy(non_empty.desc(), F.col("cells").asc())
    return rendered.select((F.row_number().over(order) - 1).cast("long").alias("record_id"), "attrs", "cells")


def write_wide_csv(rendered: DataFrame, path: Path, layout: SourceLayout) -> Path:
    """``synthetic_microdata.csv``: header of source columns, rows in released order."""
    header = ",".join(csv_text(name) for name in layout.names)
    line = F.concat_ws(",", F.transform("cells", csv_field))
    return write_sorted_lines(rendered.orderBy("record_id").select(line.alias("line")), path, header=[header])


def write_long_csv(rendered: DataFrame, path: Path, layout: SourceLayout) -> Path:
    """``synthetic_microdata_long.csv``: ``Id,Attribute,Value``, one line per non-empty cell."""
    names = F.array(*[F.lit(name) for name in layout.names])
    cells = rendered.select("record_id", F.posexplode("cells").alias("position", "cell")).where(
        F.col("cell") != ""
    )
    line = F.concat_ws(
        ",",
        F.col("record_id").cast("string"),
        csv_field(F.element_at(names, F.col("position") + 1)),
        csv_field(F.col("cell")),
    )
    return write_sorted_lines(
        cells.orderBy("record_id", "position").select(line.alias("line")), path, header=["Id,Attribute,Value"]
    )
