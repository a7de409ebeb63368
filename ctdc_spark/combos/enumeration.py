"""Vectorised enumeration and counting of attribute combinations inside one task (pure numpy).

Records arrive as Arrow list arrays, i.e. CSR ``(offsets, values)`` of sorted attribute ids.
Records with the same number of attributes ``m`` are processed together: identical records are
collapsed (and weighted by their multiplicity), and the ``l``-subsets of every record are one
fancy-indexing gather over ``subset_positions(m, l)``.

Each ``l``-subset is keyed by its rank in the combinatorial number system (a dense int64 in
``[0, C(A, l))``, see :class:`CombinationRanks`), and the occurrences are pre-aggregated by
*sorting plain int64 values*: the rank is shifted left and the occurrence's index put in the low
bits, so one ``np.sort`` (SIMD, ~6 ns per value) groups equal combinations and, within a group,
orders occurrences by index. Records are visited in ascending record id, so the first occurrence
of each group gives the smallest record id without another reduction. This replaces a stable
``argsort`` of packed keys plus gathers of three arrays (~15x slower per occurrence). The
shuffle then carries one row per distinct combination per task, packed by :class:`KeyLayout`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from ctdc_spark.combos.keys import CombinationLookup, KeyLayout, subset_positions

IntArray = npt.NDArray[np.int64]

_WORD_BITS = 63

# Upper bound on combination rows materialised at once (rows x words x 8 bytes, plus the gather):
# ~2M rows keep a chunk near 100 MB even with several key words.
CHUNK_ROWS = 2_000_000
# Pre-aggregated rows kept before they are merged again.
MERGE_ROWS = 6_000_000
# Distinct combinations a Spark task keeps before it hands them to the shuffle (iter_counts'
# flush_rows): bounds a task's memory (~24 bytes per row, a few times that while merging) whatever
# its number of records.
FLUSH_ROWS = 4_000_000


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
        # Sums and minima do not depend on the order within a key: a plain (unstable) argsort.
        order = np.argsort(words[:, 0])
        keys = words[order, 0]
        starts = run_starts(keys)
        return Counts(
            keys[starts][:, None],
            np.add.reduceat(counts[order], starts),
            np.minimum.reduceat(min_record[order], starts),
        )
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


def sort_with_index(keys: IntArray, *, key_bits: int) -> tuple[IntArray, IntArray]:
    """Sort non-negative int64 ``keys`` below ``2**key_bits``; return them with their original positions.

    Equal keys keep their original order. When the key and the position fit 63 bits together, this
    is one ``np.sort`` of ``key << b | position`` (no ``argsort``, no gathers); otherwise a stable
    ``argsort``.
    """
    n = len(keys)
    index_bits = max(1, (n - 1).bit_length())
    if key_bits + index_bits <= _WORD_BITS:
        composite = np.left_shift(keys, index_bits) | np.arange(n, dtype=np.int64)
        composite.sort()
        return composite >> index_bits, composite & ((1 << index_bits) - 1)
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def run_starts(sorted_keys: IntArray) -> IntArray:
    """Index of the first element of each run of equal values in a sorted array."""
    if not len(sorted_keys):
        return np.zeros(0, dtype=np.int64)
    new_group = np.empty(len(sorted_keys), dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new_group[1:])
    return np.flatnonzero(new_group)


class CombinationRanks:
    """The combinatorial number system for the ``length``-subsets of ``range(n_attributes)``.

    The sorted subset ``a_0 < a_1 < ... < a_{l-1}`` has rank ``sum_i C(a_i, i + 1)``, a bijection
    onto ``[0, C(A, l))`` that preserves lexicographic order. Ranks are dense, so they need fewer
    bits than packed ids (``C(204, 4)`` fits 27 bits, packed ids 32), which leaves room for the
    occurrence index in :func:`sort_with_index`.
    """

    def __init__(self, n_attributes: int, length: int) -> None:
        """Tabulate ``C(a, i + 1)`` for every id ``a`` and slot ``i``.

        Raises:
            ValueError: when ``C(n_attributes, length)`` does not fit an int64 (see :meth:`fits`).
        """
        if not self.fits(n_attributes, length):
            raise ValueError(f"C({n_attributes}, {length}) does not fit a 62-bit rank")
        self.length = length
        self.size = math.comb(n_attributes, length)
        self.bits = max(1, (self.size - 1).bit_length())
        self.table = _binomial_table(n_attributes, length)

    @staticmethod
    def fits(n_attributes: int, length: int) -> bool:
        """True when every rank fits 62 bits."""
        return math.comb(n_attributes, length) < 2**62

    def rank(self, ids: npt.NDArray[np.int32], positions: npt.NDArray[np.int16]) -> IntArray:
        """Ranks of the subsets ``ids[r, positions[j]]``: an ``(len(ids), len(positions))`` array."""
        # Per slot: C(a, slot + 1) for every id of every record, then gathered per subset.
        ranks: IntArray = self.table[0][ids][:, positions[:, 0]]
        for slot in range(1, self.length):
            ranks += self.table[slot][ids][:, positions[:, slot]]
        return ranks

    def unrank(self, ranks: IntArray) -> npt.NDArray[np.int32]:
        """Inverse of :meth:`rank`: ``(n,)`` ranks -> ``(n, length)`` sorted ids."""
        rest = np.array(ranks, dtype=np.int64, copy=True)
        out = np.empty((len(rest), self.length), dtype=np.int32)
        for slot in range(self.length - 1, -1, -1):
            # The largest a with C(a, slot + 1) <= rest (the table is non-decreasing in a).
            ids = np.searchsorted(self.table[slot], rest, side="right") - 1
            out[:, slot] = ids
            rest -= self.table[slot][ids]
        return out


@cache
def _binomial_table(n_attributes: int, length: int) -> IntArray:
    table = np.zeros((length, max(n_attributes, 1)), dtype=np.int64)
    for slot in range(length):
        table[slot, :n_attributes] = [math.comb(a, slot + 1) for a in range(n_attributes)]
    table.setflags(write=False)
    return table


def concat_csr(
    parts: list[tuple[IntArray, npt.NDArray[np.int32], IntArray]],
) -> tuple[IntArray, npt.NDArray[np.int32], IntArray]:
    """Concatenate CSR record batches ``(offsets, values, record_ids)`` into one."""
    if not parts:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    values = np.concatenate([p[1] for p in parts])
    record_ids = np.concatenate([p[2] for p in parts])
    lengths = np.concatenate([np.diff(p[0]) for p in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, values, record_ids


def records_by_length(offsets: IntArray) -> dict[int, IntArray]:
    """The rows of a CSR batch grouped by their number of attributes ``m`` (records without any left out)."""
    lengths = np.diff(offsets)
    return {int(m): np.flatnonzero(lengths == m) for m in np.unique(lengths) if m > 0}


def gather(offsets: IntArray, values: npt.NDArray[np.int32], rows: IntArray, m: int) -> npt.NDArray[np.int32]:
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


class _LengthCounts:
    """Pre-aggregated ``(rank, count, smallest record id)`` of one combination length."""

    def __init__(self, ranks: CombinationRanks) -> None:
        self.ranks = ranks
        self.parts: list[tuple[IntArray, IntArray, IntArray]] = []
        self.pending = 0  # rows over all parts
        self.merged_rows = 0  # rows of the last merge

    def add(
        self,
        ranks: IntArray,
        weights: IntArray | None,
        first: IntArray,
        per_record: int,
        selected: IntArray | None = None,
    ) -> None:
        """Count a block of occurrences.

        Args:
            ranks: Flat ranks; occurrence ``i`` belongs to record ``i // per_record`` of the block
                (or ``selected[i] // per_record`` when a selection was applied).
            weights: Multiplicity of each record of the block (None: all 1).
            first: Smallest record id of each record of the block, ascending.
            per_record: Subsets per record.
            selected: Positions of the kept occurrences in the unselected block, if any.
        """
        if not len(ranks):
            return
        keys, order = sort_with_index(ranks, key_bits=self.ranks.bits)
        starts = run_starts(keys)
        record = order if selected is None else selected[order]
        record //= per_record
        if weights is None:
            counts = np.diff(np.append(starts, len(keys)))
        else:
            counts = np.add.reduceat(weights[record], starts)
        # Ties keep block order and records ascend by id: a group's first occurrence is its smallest.
        self.parts.append((keys[starts], counts, first[record[starts]]))
        self.pending += len(starts)
        # Merge when the parts outgrow both the bound and twice the last merge (so a large merged
        # part is not re-sorted after every block).
        if self.pending > max(MERGE_ROWS, 2 * self.merged_rows):
            self.parts = [self.merged()]
            self.pending = self.merged_rows = len(self.parts[0][0])

    def take(self, layout: KeyLayout) -> Counts:
        """The counts so far as packed keys; the accumulator starts empty again."""
        out = self.to_counts(layout)
        self.parts, self.pending, self.merged_rows = [], 0, 0
        return out

    def merged(self) -> tuple[IntArray, IntArray, IntArray]:
        """All parts reduced to one: sorted distinct ranks, summed counts, minimum record ids."""
        if len(self.parts) == 1:
            return self.parts[0]
        if not self.parts:
            z = np.zeros(0, dtype=np.int64)
            return z, z.copy(), z.copy()
        keys = np.concatenate([p[0] for p in self.parts])
        keys, order = sort_with_index(keys, key_bits=self.ranks.bits)
        starts = run_starts(keys)
        counts = np.add.reduceat(np.concatenate([p[1] for p in self.parts])[order], starts)
        first = np.minimum.reduceat(np.concatenate([p[2] for p in self.parts])[order], starts)
        return keys[starts], counts, first

    def to_counts(self, layout: KeyLayout) -> Counts:
        """The result as packed keys."""
        keys, counts, first = self.merged()
        combos = np.full((len(keys), layout.max_length), -1, dtype=np.int32)
        combos[:, : self.ranks.length] = self.ranks.unrank(keys)
        return Counts(layout.pack(combos), counts, first)


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
        Counts of these records: one row per distinct combination, by length.
    """
    parts = list(
        iter_counts(
            offsets,
            values,
            record_ids,
            layout=layout,
            max_length=max_length,
            lengths=lengths,
            keep=keep,
            keep_parents_of_length=keep_parents_of_length,
        )
    )
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Counts.empty(layout.n_words)
    return Counts(
        np.concatenate([p.words for p in parts]),
        np.concatenate([p.counts for p in parts]),
        np.concatenate([p.min_record for p in parts]),
    )


def iter_counts(
    offsets: IntArray,
    values: npt.NDArray[np.int32],
    record_ids: IntArray,
    *,
    layout: KeyLayout,
    max_length: int,
    lengths: tuple[int, ...] | None = None,
    keep: CombinationLookup | None = None,
    keep_parents_of_length: int | None = None,
    flush_rows: int | None = None,
) -> Iterator[Counts]:
    """Yield the pre-aggregated counts of a batch of records, length by length.

    Without ``flush_rows`` every distinct combination is yielded once. With it, a length's counts
    are yielded as soon as they hold more than ``flush_rows`` distinct combinations, and counting
    starts over, so memory stays bounded however many records a task has; a combination may then
    be yielded several times (partial counts that the caller sums).

    Args: as :func:`count_combinations`, plus ``flush_rows``.
    """
    wanted = tuple(length for length in (lengths or range(1, max_length + 1)) if length >= 1)
    n_ids = max(layout.n_attributes, int(values.max()) + 1 if len(values) else 0, 1)
    by_length: dict[int, _LengthCounts] = {}
    slow: list[Counts] = []  # lengths whose ranks would not fit an int64 (huge attribute sets)
    for m, rows in records_by_length(offsets).items():
        ids, weights, first = _distinct_records(gather(offsets, values, rows, m), record_ids[rows])
        by_first = np.argsort(first)
        ids, weights, first = ids[by_first], weights[by_first], first[by_first]
        unit = bool((weights == 1).all())
        for length in wanted:
            if length > m:
                continue
            positions = subset_positions(m, length)
            per_record = len(positions)
            step = max(1, CHUNK_ROWS // per_record)
            prune = keep is not None and length == keep_parents_of_length and length > 1
            if not CombinationRanks.fits(n_ids, length):
                slow.extend(
                    _count_packed(
                        ids,
                        weights=weights,
                        first=first,
                        positions=positions,
                        layout=layout,
                        keep=keep if prune else None,
                        step=step,
                    )
                )
                continue
            counter = by_length.get(length)
            if counter is None:
                counter = by_length[length] = _LengthCounts(CombinationRanks(n_ids, length))
            for start in range(0, len(ids), step):
                block = slice(start, start + step)
                ranks = counter.ranks.rank(ids[block], positions).ravel()
                selected = None
                if prune:
                    assert keep is not None
                    combos = ids[block][:, positions].reshape(-1, length)
                    selected = np.flatnonzero(all_parents_kept(combos, keep))
                    ranks = ranks[selected]
                counter.add(ranks, None if unit else weights[block], first[block], per_record, selected)
                if flush_rows is not None and counter.merged_rows > flush_rows:
                    yield counter.take(layout)
    for length in sorted(by_length):
        if by_length[length].pending:
            yield by_length[length].take(layout)
    if slow:
        yield reduce_counts(slow, layout.n_words)


def _count_packed(
    ids: npt.NDArray[np.int32],
    *,
    weights: IntArray,
    first: IntArray,
    positions: npt.NDArray[np.int16],
    layout: KeyLayout,
    keep: CombinationLookup | None,
    step: int,
) -> Iterator[Counts]:
    """Fallback for rank spaces beyond int64: pack the subsets and reduce them by lexsort."""
    length, per_record = positions.shape[1], len(positions)
    for start in range(0, len(ids), step):
        block = slice(start, start + step)
        combos = ids[block][:, positions].reshape(-1, length)
        chunk = Counts(
            layout.pack(combos), np.repeat(weights[block], per_record), np.repeat(first[block], per_record)
        )
        if keep is not None:
            mask = all_parents_kept(combos, keep)
            chunk = Counts(chunk.words[mask], chunk.counts[mask], chunk.min_record[mask])
        yield reduce_counts([chunk], layout.n_words)


def all_parents_kept(combos: npt.NDArray[np.int32], keep: CombinationLookup) -> npt.NDArray[np.bool_]:
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
    by_m = records_by_length(offsets)
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
                combos = gather(offsets, values, chunk, m)[:, positions].reshape(-1, length)
                frequent_mask = (frequent.counts(combos) > 0).reshape(len(chunk), len(positions))
                has_rare = ~frequent_mask.all(axis=1)
                result[chunk[has_rare]] = length
    return result
