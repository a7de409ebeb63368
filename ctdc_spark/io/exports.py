"""Driver-visible text exports (TSV/CSV) of sorted Spark frames, written atomically.

Large exports are not collected through Python: executors write the sorted lines as one text
part (``orderBy(...).coalesce(1)`` keeps the global order, because coalescing concatenates the
range-partitioned parts in order) and the driver prepends the header lines while copying the part
into the final file under a temporary name, then renames it into place.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ctdc_spark.io.files import atomic_text_writer


def write_sorted_lines(lines: DataFrame, path: Path, *, header: Sequence[str] = ()) -> Path:
    """Write a one-column frame of text lines, already globally sorted, after ``header`` lines.

    Args:
        lines: A frame with a single string column, ordered with ``orderBy``.
        path: Target file (its folder must be visible to executors too, as for Delta tables).
        header: Lines written first.

    Returns:
        ``path``.
    """
    parts = path.parent / f".{path.name}.{uuid.uuid4().hex}.parts"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lines.coalesce(1).write.option("lineSep", "\n").text(str(parts))
        part_files = sorted(parts.glob("part-*"))
        with atomic_text_writer(path) as out:
            for line in header:
                out.write(line + "\n")
            out.flush()
            for part in part_files:
                with part.open("r", encoding="utf-8", newline="") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        return path
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def csv_text(text: str) -> str:
    """RFC 4180 quoting of one driver-side string (header cells), as :func:`csv_field` does in Spark."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


def csv_field(column: Column) -> Column:
    """RFC 4180 quoting of a string column (quotes only when needed)."""
    needs_quotes = column.rlike('[",\\r\\n]')
    quoted = F.concat(F.lit('"'), F.replace(column, F.lit('"'), F.lit('""')), F.lit('"'))
    return F.when(needs_quotes, quoted).otherwise(column)
