"""Per-task engine of ``unseeded`` synthesis (docs/spec.md 4.2): one k-safe record per stable id.

For each record the columns are visited in a random order; in each column a value is drawn with
weight equal to its support within the rows matching the record so far, values supported by fewer
than k of those rows are folded into EMPTY (no value), and EMPTY is drawn with the size of that pool.
As in SDS, choosing EMPTY keeps only the rows that are truly empty in the column (not the rows of the
folded rare values), so a record can stop gaining values early (docs/spec.md's noted quirk).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import RecordStream
from ctdc_spark.synthesize._batch import SyntheticBatch
from ctdc_spark.synthesize._row_index import LOCAL_MAX_ROWS, IntArray, LocalCells, RowIndex
from ctdc_spark.synthesize._sampler import DEFAULT_CACHE_MAX_BYTES, PartialCache, sample_weighted


def unseeded(
    index: RowIndex,
    k: int,
    record_ids: npt.ArrayLike,
    key: int,
    *,
    cache_max_size: int = 100_000,
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
    local_max_rows: int = LOCAL_MAX_ROWS,
) -> SyntheticBatch:
    """Build one ``unseeded`` record per id.

    Record ``id`` uses ``RecordStream(key, id)``: first a Fisher-Yates shuffle of the columns, then
    one number per column that still has matching rows. Within a column the draw is
    :func:`~ctdc_spark.synthesize._sampler.sample_weighted` over EMPTY (placed first, so it wins
    weight ties) followed by the column's values in ascending id order.

    Args:
        index: Row index of the sensitive records (with its EMPTY tokens).
        k: The privacy resolution.
        record_ids: ``int64[r]`` stable ids of the records to build (Spark uses 0..n-1).
        key: ``stage_key(seed, "unseeded")``.
        cache_max_size: Maximum cached partial records (0 disables the cache).
        cache_max_bytes: Maximum bytes of cached counts.
        local_max_rows: Row count at or below which a record continues on a local table.

    Returns:
        One record (ascending attribute ids, possibly empty) per id, in input order.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    ids = np.asarray(record_ids, dtype=np.int64).reshape(-1)
    cache = PartialCache(
        index, cache_max_size, cache_max_bytes, local_max_rows=local_max_rows, local_kind="cells"
    )
    n_attributes = index.n_attributes
    columns = [index.column_attributes(c) for c in range(index.n_columns)]
    records: list[list[int]] = []
    for record_id in ids.tolist():
        stream = RecordStream(key, record_id)
        partial = cache.start()
        order = stream.shuffled(index.n_columns)
        tail: list[int] = []
        for step, c in enumerate(order):
            if partial.size == 0:
                break  # no rows left: every later column would draw nothing (SDS skips them)
            if isinstance(partial.local, LocalCells):
                # Few rows left: these deep partial records are all distinct, so finish the record
                # on the rows' cells directly instead of going through the cache.
                tail = _finish_locally(partial.local, order[step:], index, k, stream)
                break
            values = columns[c]
            counts = cache.counts(partial, values)
            i, truly_empty = _draw_value(counts, partial.size, k, stream.random())
            if i < 0:
                cache.extend(partial, index.empty_token(c), truly_empty)
            else:
                cache.extend(partial, int(values[i]), int(counts[i]))
        records.append(sorted([t for t in partial.tokens if t < n_attributes] + tail))
    return SyntheticBatch.from_records(records, ids)


def _draw_value(counts: IntArray, size: int, k: int, u: float) -> tuple[int, int]:
    """Draw one column's value for a record whose rows number ``size`` (docs/spec.md 4.2).

    Args:
        counts: Rows holding each of the column's values (ascending ids).
        size: Rows of the record so far (> 0).
        k: The privacy resolution.
        u: The uniform number of this draw.

    Returns:
        ``(index into counts, or -1 for EMPTY; number of truly empty rows)``.
    """
    frequent = np.flatnonzero(counts >= k)
    # Records hold at most one value per column, so the truly empty rows are the rest; rare
    # values are folded into EMPTY's weight. The weights sum to size > 0, so something is drawn.
    truly_empty = size - int(counts.sum())
    pool = size - int(counts[frequent].sum())
    i = sample_weighted(np.concatenate([[pool], counts[frequent]]), u)
    return (int(frequent[i - 1]) if i > 0 else -1), truly_empty


def _finish_locally(
    local: LocalCells, order: list[int], index: RowIndex, k: int, stream: RecordStream
) -> list[int]:
    """Draw the remaining columns on the record's local table, bypassing the cache.

    Same draws as the cached path: the counts are those of the same rows.
    """
    chosen: list[int] = []
    for c in order:
        if local.size == 0:
            break
        counts = local.column_counts(c)[1:]
        i, _ = _draw_value(counts, local.size, k, stream.random())
        if i < 0:
            local = local.restrict(index.empty_token(c))
        else:
            attr = int(index.column_attributes(c)[i])
            chosen.append(attr)
            local = local.restrict(attr)
    return chosen
