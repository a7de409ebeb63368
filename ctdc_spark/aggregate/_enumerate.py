"""Vectorised enumeration and counting of attribute combinations inside one task (pure numpy).

Records arrive as Arrow list arrays, i.e. CSR ``(offsets, values)`` of sorted attribute ids.
Records with the same number of attributes ``m`` are processed together: the ``l``-subsets of
every such record are one fancy-indexing gather ``ids[:, subset_positions(m, l)]``, packed into
compact keys (:class:`KeyLayout`) and pre-aggregated in the task, so the shuffle carries one row
per distinct combination per task instead of one per occurrence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ctdc_spark.aggregate._keys import CombinationLookup, KeyLayout, subset_positions

IntArray = npt.NDArray[np.int64]

# Upper bound on combination rows materialised at once (rows x words x 8 bytes, plus the gather):
# ~2M rows keep a chunk near 100 MB even with several key words.
CHUNK_ROWS = 2_000_000
# Pre-aggregated rows kept before they are merged again; bounds a task's memory.
MERGE_ROWS = 6_000_000


@dataclass
class Counts:
    """Distinct packed combinations with their count and smallest record id."""

    words: IntArray  # (n, n_words)
    counts: IntArray  # (n,)
    min_record: IntArray  # (n,)

    @classmethod
    def empty(cls, n_words: int) -> Counts:
        """No combinations."""
        z = np.zeros(0, dtype=np.int64)
        return cls(np.zeros((0, n_words), dtype=np.int64), z, z.copy())

    def __len__(self) -> int:
        return len(self.counts)


def reduce_counts(parts: list[Counts], n_words: int) -> Counts:
    """Merge partial counts: sum counts and take the minimum record id per distinct key."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Counts.empty(n_words)
    words = np.concatenate([p.words for p in parts])
    counts = np.concatenate([p.counts for p in parts])
    min_record = np.concatenate([p.min_record for p in parts])
    if n_words == 1:
        order = np.argsort(words[:, 0], kind="stable")
    else:
        order = np.lexsort(words.T[::-1])
    words, counts, min_record = words[order], counts[order], min_record[order]
    new_group = np.empty(len(words), dtype=bool)
    new_group[0] = True
    new_group[1:] = np.any(words[1:] != words[:-1], axis=1)
    starts = np.flatnonzero(new_group)
    return Counts(
        words[starts],
        np.add.reduceat(counts, starts),
        np.minimum.reduceat(min_record, starts),
    )


def _records_by_length(offsets: IntArray) -> dict[int, IntArray]:
    lengths = np.diff(offsets)
    return {int(m): np.flatnonzero(lengths == m) for m in np.unique(lengths) if m > 0}


def _gather(
    offsets: IntArray, values: npt.NDArray[np.int32], rows: IntArray, m: int
) -> npt.NDArray[np.int32]:
    """The attribute ids of ``rows`` (all of length ``m``) as an ``(len(rows), m)`` matrix."""
    gathered: npt.NDArray[np.int32] = values[offsets[rows][:, None] + np.arange(m)]
    return gathered


def _distinct_records(
    ids: npt.NDArray[np.int32], record_ids: IntArray
) -> tuple[npt.NDArray[np.int32], IntArray, IntArray]:
    """Collapse identical records of one length: (distinct rows, multiplicity, smallest record id).

    Case data repeats itself (54.7% of CTDC's victim-perpetrator rows duplicate another row), so
    each distinct record's combinations are enumerated once and weighted by its multiplicity.
    """
    distinct, inverse = np.unique(ids, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    weights = np.bincount(inverse, minlength=len(distinct)).astype(np.int64)
    first = np.full(len(distinct), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, inverse, record_ids)
    return distinct, weights, first


def iter_combinations(
    offsets: IntArray,
    values: npt.NDArray[np.int32],
    record_ids: IntArray,
    *,
    layout: KeyLayout,
    max_length: int,
    lengths: tuple[int, ...] | None = None,
) -> Iterator[tuple[int, Counts]]:
    """Yield ``(length, counts)`` chunks covering every combination of every record.

    Args:
        offsets: CSR offsets (n + 1).
        values: Sorted attribute ids per record.
        record_ids: Stable record id of each record.
        layout: Key packing.
        max_length: Longest combination length L.
        lengths: Only these lengths (default 1..max_length).

    Yields:
        Per chunk, not yet de-duplicated keys with their weights and smallest record ids.
    """
    wanted = lengths or tuple(range(1, max_length + 1))
    for m, rows in _records_by_length(offsets).items():
        ids, weights, first = _distinct_records(_gather(offsets, values, rows, m), record_ids[rows])
        for length in wanted:
            if length > m:
                continue
            positions = subset_positions(m, length)
            per_record = len(positions)
            step = max(1, CHUNK_ROWS // per_record)
            for start in range(0, len(ids), step):
                block = slice(start, start + step)
                combos = ids[block][:, positions].reshape(-1, length)
                yield (
                    length,
                    Counts(
                        layout.pack(combos),
                        np.repeat(weights[block], per_record),
                        np.repeat(first[block], per_record),
                    ),
                )


def count_combinations(
    offsets: IntArray,
    values: npt.NDArray[np.int32],
    record_ids: IntArray,
    *,
    layout: KeyLayout,
    max_length: int,
    lengths: tuple[int, ...] | None = None,
    keep: CombinationLookup | None = None,
    keep_parents_of_length: int | None = None,
) -> Counts:
    """Count every combination of length <= ``max_length`` of a batch of records.

    Args:
        offsets, values: CSR records (sorted attribute ids).
        record_ids: Stable record id of each record.
        layout: Key packing.
        max_length: L.
        lengths: Restrict to these lengths.
        keep: Apriori pruning: a lookup of frequent combinations one shorter.
        keep_parents_of_length: With ``keep``, count a combination of this length only when every
            sub-combination one shorter is in ``keep``.

    Returns:
        Pre-aggregated counts of this batch.
    """
    parts: list[Counts] = []
    pending = 0
    for length, chunk in iter_combinations(
        offsets, values, record_ids, layout=layout, max_length=max_length, lengths=lengths
    ):
        kept = chunk
        if keep is not None and length == keep_parents_of_length and length > 1:
            mask = _all_parents_kept(layout.unpack(chunk.words)[:, :length], keep)
            kept = Counts(chunk.words[mask], chunk.counts[mask], chunk.min_record[mask])
        parts.append(reduce_counts([kept], layout.n_words))
        pending += len(parts[-1])
        if pending > MERGE_ROWS:
            parts = [reduce_counts(parts, layout.n_words)]
            pending = len(parts[0])
    return reduce_counts(parts, layout.n_words)


def _all_parents_kept(combos: npt.NDArray[np.int32], keep: CombinationLookup) -> npt.NDArray[np.bool_]:
    """True for combinations whose every drop-one sub-combination is in ``keep``."""
    length = combos.shape[1]
    ok = np.ones(len(combos), dtype=bool)
    for drop in range(length):
        parent = np.delete(combos, drop, axis=1)
        ok &= keep.counts(parent) > 0
    return ok


def shortest_rare_lengths(
    offsets: IntArray,
    values: npt.NDArray[np.int32],
    *,
    layout: KeyLayout,
    max_length: int,
    frequent: CombinationLookup,
) -> npt.NDArray[np.int32]:
    """For each record, the shortest length at which it has a combination with count < k.

    A record has a rare combination of length ``l`` exactly when not all of its ``C(m, l)``
    combinations are frequent (count >= k), so only the (small) frequent set is needed. Lengths
    are tried in order and resolved records drop out.

    Returns:
        One value per record: the shortest rare length, or 0 when none up to ``max_length``.
    """
    n = len(offsets) - 1
    result = np.zeros(n, dtype=np.int32)
    by_m = _records_by_length(offsets)
    for length in range(1, max_length + 1):
        for m, rows_of_m in by_m.items():
            if length > m:
                continue
            rows = rows_of_m[result[rows_of_m] == 0]
            if not len(rows):
                continue
            positions = subset_positions(m, length)
            step = max(1, CHUNK_ROWS // len(positions))
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                combos = _gather(offsets, values, chunk, m)[:, positions].reshape(-1, length)
                frequent_mask = (frequent.counts(combos) > 0).reshape(len(chunk), len(positions))
                has_rare = ~frequent_mask.all(axis=1)
                result[chunk[has_rare]] = length
    return result
