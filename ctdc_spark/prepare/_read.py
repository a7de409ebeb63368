"""Read the raw input into a frame of string cells with stable row numbers.

Spark's CSV reader has traps (docs/reliability.md 4.1): PERMISSIVE mode silently nulls bad cells unless
a corrupt-record column is in the schema, FAILFAST errors quote the raw row, and undecodable bytes
silently become U+FFFD. So the reader always uses an explicit all-string schema with
``_corrupt_record``, ``multiLine`` (quoted newlines are legal CSV, and a file then stays one
ordered split), and flags rows whose bytes did not decode. Rows are numbered in file order so
``record_limit`` means "the first N data rows" and errors can name row numbers.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctdc_spark.config import SPARK_CHARSETS, InputConfig
from ctdc_spark.prepare._layout import InputLayout

CORRUPT = "_corrupt_record"
REPLACEMENT_CHARACTER = "\ufffd"


def field_name(index: int) -> str:
    """Positional name of input field ``index`` (0-based); real names stay out of Spark plans."""
    return f"f{index}"


def read_raw(spark: SparkSession, cfg: InputConfig, layout: InputLayout) -> DataFrame:
    """Read the input as strings.

    Returns:
        Columns ``f0..f{n-1}`` (string, null when empty), ``source_file`` (file name),
        ``row_number`` (1-based data row across the input, files in name order), ``file_row``
        (1-based data row within its file, header excluded) and
        ``problem`` (null, ``"fields"`` for a wrong number of fields, ``"encoding"`` for bytes
        that are not valid in ``input.encoding``), plus ``raw_record`` for quarantine.
    """
    n = layout.n_fields
    if cfg.format in ("csv", "tsv"):
        allow_charset(spark, cfg)
        schema = T.StructType(
            [T.StructField(field_name(i), T.StringType()) for i in range(n)]
            + [T.StructField(CORRUPT, T.StringType())]
        )
        df = (
            spark.read.schema(schema)
            .option("header", "true")
            .option("enforceSchema", "true")  # our positional names; headers are checked on the driver
            .option("sep", cfg.field_delimiter)
            .option("encoding", cfg.java_charset)
            .option("multiLine", "true")
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .option("nullValue", "")
            .option("quote", '"')
            .option("escape", '"')
            .csv(list(layout.files))
        )
    else:
        source = spark.read.format(cfg.format).load(
            layout.files[0] if cfg.format == "delta" else list(layout.files)
        )
        df = source.select(
            *[
                F.col(f"`{name}`").cast("string").alias(field_name(i))
                for i, name in enumerate(source.columns)
            ],
            F.lit(None).cast("string").alias(CORRUPT),
        )
    df = df.select(
        "*",
        F.col("_metadata.file_path").alias("_file"),
        F.monotonically_increasing_id().alias("_mono"),
    )
    return _number_rows(df, n)


def allow_charset(spark: SparkSession, cfg: InputConfig) -> None:
    """Let Spark read ``input.encoding``: Spark 4 accepts only a few charsets unless told otherwise.

    The legacy switch makes the reader accept every Java charset (windows-1252, windows-1256, ...),
    which is what a partner's spreadsheet export often uses.
    """
    if cfg.java_charset not in SPARK_CHARSETS:
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")


def _number_rows(df: DataFrame, n: int) -> DataFrame:
    """Attach ``row_number``: files in name order, rows in file order.

    Each file is one ordered split (multiLine), possibly sharing a partition with other files, so
    a row's position in its file is its monotonically increasing id minus the file's smallest id.
    Per-file offsets come from a tiny aggregate (one row per file) joined back by broadcast.
    """
    files = (
        df.groupBy("_file")
        .agg(F.count(F.lit(1)).alias("_rows"), F.min("_mono").alias("_first"))
        .withColumn(
            "_offset",
            # One row per input file, so this single-partition window is cheap.
            F.sum("_rows").over(Window.orderBy("_file").rowsBetween(Window.unboundedPreceding, 0))
            - F.col("_rows"),
        )
    )
    cells = [F.col(field_name(i)) for i in range(n)]
    has_bad_bytes = F.exists(F.array(*cells), lambda c: F.contains(c, F.lit(REPLACEMENT_CHARACTER)))
    return df.join(F.broadcast(files), "_file").select(
        *cells,
        F.element_at(F.split("_file", "/"), -1).alias("source_file"),
        (F.col("_offset") + F.col("_mono") - F.col("_first") + 1).alias("row_number"),
        (F.col("_mono") - F.col("_first") + 1).alias("file_row"),
        F.when(F.col(CORRUPT).isNotNull(), F.lit("fields"))
        .when(has_bad_bytes, F.lit("encoding"))
        .alias("problem"),
        F.coalesce(F.col(CORRUPT), F.concat_ws(",", *cells)).alias("raw_record"),
    )


def cell(index: int) -> Column:
    """The raw string cell of input field ``index``."""
    return F.col(field_name(index))
