"""Cached frames released when their ``with`` block ends (docs/style.md 4.6: unpersist where you persist)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pyspark import StorageLevel
from pyspark.sql import DataFrame


@contextlib.contextmanager
def cached(df: DataFrame, level: StorageLevel = StorageLevel.MEMORY_AND_DISK_DESER) -> Iterator[DataFrame]:
    """Persist ``df`` for the ``with`` block and unpersist it when the block ends, also on an error.

    Caching is lazy: the first action inside the block fills the cache, later ones read it.

    Args:
        df: The frame that the block reads more than once.
        level: Where Spark keeps the cached partitions; the default is ``DataFrame.persist``'s.

    Yields:
        ``df``, now marked as cached.
    """
    df.persist(level)
    try:
        yield df
    finally:
        df.unpersist()
