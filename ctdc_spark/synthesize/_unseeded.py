"""Per-task engine of ``unseeded`` synthesis (SPEC.md 4.2): one k-safe record per stable id.

For each record the columns are visited in a random order; in each column a value is drawn with
weight equal to its support within the rows matching the record so far, values supported by fewer
than k of those rows are folded into EMPTY (no value), and EMPTY is drawn with the size of that pool.
As in SDS, choosing EMPTY keeps only the rows that are truly empty in the column (not the rows of the
folded rare values), so a record can stop gaining values early (the SPEC's noted quirk).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import RecordStream
from ctdc_spark.synthesize._batch import SyntheticBatch
from ctdc_spark.synthesize._row_index import LOCAL_MAX_ROWS, RowIndex
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
        for c in stream.shuffled(index.n_columns):
            if partial.size == 0:
                break  # no rows left: every later column would draw nothing (SDS skips them)
            values = columns[c]
            counts = cache.counts(partial, values)
            frequent = counts >= k
            # Records hold at most one value per column, so the truly empty rows are the rest.
            truly_empty = partial.size - int(counts.sum())
            pool = truly_empty + int(counts[~frequent].sum())
            weights = np.concatenate([[pool], counts[frequent]])
            # The weights sum to partial.size > 0, so a value or EMPTY is always drawn.
            i = sample_weighted(weights, stream.random())
            if i == 0:
                cache.extend(partial, index.empty_token(c), truly_empty)
            else:
                cache.extend(partial, int(values[frequent][i - 1]), int(counts[frequent][i - 1]))
        records.append([t for t in partial.tokens if t < n_attributes])
    return SyntheticBatch.from_records(records, ids)
