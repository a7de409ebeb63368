"""Turn raw string cells into attributes, subjects and the ``records``/``attributes``/``columns`` tables.

Pure ``DataFrame -> DataFrame`` transforms (column expressions only) implementing docs/spec.md 2.2-2.6:
value normalisation, unknown values, the "0 is not an attribute" rule, numeric bins,
multi-value expansion into ``<col>_<value>`` indicator attributes, and subject-id joining.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctdc_spark.prepare._layout import (
    COLON,
    LINE_BREAKS,
    SEMICOLON,
    InputLayout,
    SourceColumn,
    bin_labels,
    normalize_text,
)
from ctdc_spark.prepare._read import cell

# Java regex: leading/trailing Unicode whitespace, as Rust's str::trim in SDS.
_EDGE_WHITESPACE = r"^\p{IsWhite_Space}+|\p{IsWhite_Space}+$"

ENTRY = T.StructType(
    [
        T.StructField("source_index", T.IntegerType(), False),
        T.StructField("multi", T.BooleanType(), False),
        T.StructField("column", T.StringType(), False),
        T.StructField("value", T.StringType(), False),
        T.StructField("source_value", T.StringType(), False),
    ]
)


def normalize_cell(c: Column) -> Column:
    """Spark version of :func:`normalize_text`: trim, tabs and line breaks, then ``;`` and ``:``."""
    trimmed = F.regexp_replace(F.regexp_replace(c, _EDGE_WHITESPACE, ""), LINE_BREAKS.pattern, " ")
    return F.replace(F.replace(trimmed, F.lit(";"), F.lit(SEMICOLON)), F.lit(":"), F.lit(COLON))


def _java_literal_regex(text: str) -> str:
    """Escape every non-alphanumeric character so ``F.split`` splits on ``text`` literally."""
    return "".join(ch if ch.isalnum() else "\\" + ch for ch in text)


def _bin(number: Column, edges: Sequence[float]) -> Column:
    labels = bin_labels(edges)
    expr = F.when(number < F.lit(edges[0]), F.lit(labels[0]))
    for i in range(1, len(edges)):
        expr = expr.when(number < F.lit(edges[i]), F.lit(labels[i]))
    return expr.otherwise(F.lit(labels[-1]))


@dataclass(frozen=True)
class CellRules:
    """Which normalised cell values carry no attribute."""

    unknown_values: tuple[str, ...]

    @classmethod
    def from_config(cls, unknown_values: Sequence[str]) -> CellRules:
        """Normalise the configured unknown values the same way cells are normalised."""
        values = {normalize_text(v) for v in unknown_values} | {""}
        return cls(tuple(sorted(values)))

    def is_known(self, value: Column) -> Column:
        """True when ``value`` (normalised) is neither null nor an unknown value."""
        return value.isNotNull() & ~value.isin(list(self.unknown_values))

    def is_attribute(self, value: Column, column: SourceColumn) -> Column:
        """docs/spec.md 2.3: known, and not exactly ``"0"`` unless the column keeps sensitive zeros."""
        known = self.is_known(value)
        return known if column.sensitive_zero else known & (value != F.lit("0"))


def bin_problems(df: DataFrame, *, layout: InputLayout, rules: CellRules) -> Column:
    """A column naming the first binned column whose known value is not a number (else null)."""
    expr: Column = F.lit(None).cast("string")
    for col in reversed(layout.columns):
        if col.role != "binned":
            continue
        value = normalize_cell(cell(col.file_index))
        bad = rules.is_known(value) & value.try_cast("double").isNull()
        expr = F.when(bad, F.lit(f"non-numeric value in binned column {col.name}")).otherwise(expr)
    return expr


def attribute_values(rows: DataFrame, *, layout: InputLayout, rules: CellRules, key: Column) -> DataFrame:
    """Normalise every used cell once and keep only attribute values.

    Returns:
        Column ``key`` plus, per used column, ``f<i>``: the attribute value (string, null when the
        cell carries no attribute) or, for a multi-value column, the distinct attribute pieces
        (array<string>, possibly empty).
    """
    values = []
    for col in layout.columns:
        raw = cell(col.file_index)
        if col.role == "multi":
            assert col.multi_value_delimiter is not None
            pieces = F.transform(F.split(raw, _java_literal_regex(col.multi_value_delimiter)), normalize_cell)
            kept = F.array_distinct(F.filter(pieces, _attribute_filter(rules, col)))
            # An empty cell splits to null, and one null array would make the row's flatten() null.
            values.append(F.coalesce(kept, F.array().cast(T.ArrayType(T.StringType()))).alias(raw_name(col)))
            continue
        value = normalize_cell(raw)
        if col.role == "binned":
            value = F.when(rules.is_known(value), _bin(value.try_cast("double"), col.bin_edges))
        values.append(F.when(rules.is_attribute(value, col), value).alias(raw_name(col)))
    return rows.select(key.alias("key"), *values)


def _attribute_filter(rules: CellRules, col: SourceColumn) -> Callable[[Column], Column]:
    # A one-argument function: F.filter passes the element index to two-argument lambdas.
    def keep(piece: Column) -> Column:
        return rules.is_attribute(piece, col)

    return keep


def raw_name(col: SourceColumn) -> str:
    """Name of a source column's field in the positional frames."""
    return f"f{col.file_index}"


def _entries_of(col: SourceColumn) -> Column:
    """The attributes one column contributes to a row (from :func:`attribute_values`), as ENTRY structs."""
    value = F.col(raw_name(col))
    if col.role == "multi":
        return F.transform(
            value,
            lambda p: F.struct(
                F.lit(col.file_index).alias("source_index"),
                F.lit(True).alias("multi"),
                F.concat(F.lit(f"{col.name}_"), p).alias("column"),
                F.lit("1").alias("value"),
                p.alias("source_value"),
            ),
        )
    entry = F.struct(
        F.lit(col.file_index).alias("source_index"),
        F.lit(False).alias("multi"),
        F.lit(col.name).alias("column"),
        value.alias("value"),
        value.alias("source_value"),
    )
    return F.when(value.isNotNull(), F.array(entry)).otherwise(F.array().cast(T.ArrayType(ENTRY)))


def attribute_entries(values: DataFrame, *, layout: InputLayout) -> DataFrame:
    """Explode rows into one line per attribute occurrence.

    Args:
        values: Output of :func:`attribute_values`.
        layout: Resolved input layout.

    Returns:
        Columns ``key``, ``source_index``, ``multi``, ``column``, ``value``, ``source_value``.
    """
    arrays = [_entries_of(col) for col in layout.columns]
    return values.select("key", F.explode(F.flatten(F.array(*arrays))).alias("e")).select("key", "e.*")


def subject_key(layout: InputLayout) -> Column:
    """Subject ids compare trimmed and lower-cased (docs/spec.md 2.6); empty ids are null."""
    assert layout.subject_id_index is not None
    key = F.lower(F.regexp_replace(cell(layout.subject_id_index), _EDGE_WHITESPACE, ""))
    return F.when(key != F.lit(""), key)


def conflicting_columns(entries: DataFrame) -> DataFrame:
    """Single-value source columns holding different values within one subject.

    Returns:
        Column ``source_index`` (distinct); empty when the subjects can be merged.
    """
    return (
        entries.where(~F.col("multi"))
        .groupBy("key", "source_index")
        .agg(F.count_distinct("value").alias("values"))
        .where(F.col("values") > 1)
        .select("source_index")
        .distinct()
    )


def columns_table(source_columns: DataFrame, entries: DataFrame, *, run_id: str) -> DataFrame:
    """The expanded column layout (docs/spec.md 2.5).

    Single-value columns keep their place; each multi-value column is replaced, at its position,
    by its indicator columns sorted by name; a multi-value column with no values disappears.

    Args:
        source_columns: Columns ``source_index``, ``column``, ``source_column``,
            ``multi_value_delimiter`` for every used single-value column and, with a null
            ``column``, every multi-value column (its delimiter and name).
        entries: Attribute occurrences.
        run_id: Run id to tag rows with.
    """
    multi_names = source_columns.where(F.col("column").isNull()).drop("column")
    expanded = (
        entries.where(F.col("multi"))
        .select("source_index", "column")
        .distinct()
        .join(F.broadcast(multi_names), "source_index")
    )
    singles = source_columns.where(F.col("column").isNotNull())
    cols = singles.unionByName(expanded)
    order = Window.orderBy("source_index", "column")  # one row per column: a single partition is fine
    return cols.select(
        F.lit(run_id).alias("run_id"),
        (F.row_number().over(order) - 1).cast("int").alias("column_index"),
        "column",
        "source_column",
        F.col("source_index").cast("int").alias("source_index"),
        "multi_value_delimiter",
    )


def attributes_table(entries: DataFrame, columns: DataFrame, *, run_id: str) -> DataFrame:
    """The attribute dictionary with canonical ids and sensitive supports.

    Returns:
        Columns of :data:`ctdc_spark.schemas.ATTRIBUTES`; ``attr_id`` ascending in the byte order
        of ``column:value`` (Spark compares strings as UTF-8 bytes).
    """
    counted = entries.groupBy("column", "value", "source_index", "source_value").agg(
        F.count_distinct("key").alias("count")
    )
    named = counted.join(F.broadcast(columns.select("column", "column_index", "source_column")), "column")
    order = Window.orderBy(F.concat_ws(":", "column", "value"))  # the dictionary is small
    return named.select(
        F.lit(run_id).alias("run_id"),
        (F.row_number().over(order) - 1).cast("int").alias("attr_id"),
        "column",
        "value",
        "column_index",
        "source_column",
        "source_value",
        "count",
    )


def records_table(
    keys: DataFrame, entries: DataFrame, attributes: DataFrame, *, run_id: str, record_id: Column
) -> DataFrame:
    """One row per record (or subject) with its sorted attribute ids; attribute-less records kept.

    Args:
        keys: One row per record with column ``key`` (and whatever ``record_id`` needs).
        entries: Attribute occurrences keyed by ``key``.
        attributes: The dictionary.
        run_id: Run id.
        record_id: Expression over ``keys`` giving the stable record id.
    """
    ids = attributes.select("column", "value", "attr_id")
    per_key = (
        entries.join(F.broadcast(ids), ["column", "value"])
        .groupBy("key")
        .agg(F.sort_array(F.collect_set("attr_id")).alias("attrs"))
    )
    return (
        keys.select("key", record_id.alias("record_id"))
        .join(per_key, "key", "left")
        .select(
            F.lit(run_id).alias("run_id"),
            "record_id",
            F.coalesce("attrs", F.array().cast(T.ArrayType(T.IntegerType()))).alias("attrs"),
        )
    )
