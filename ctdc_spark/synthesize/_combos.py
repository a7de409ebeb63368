"""Positions of attribute combinations in a reported-aggregates lookup, and the new sub-combinations a
record gains when one attribute is added, both vectorised.

Per-combination synthesis state (synthetic counts, allowances) lives in arrays aligned with the
lookup's keys, so whole batches of candidate combinations are checked with one ``searchsorted``
instead of one dict access each.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ctdc_spark.combos.keys import CombinationLookup, subset_positions
from ctdc_spark.synthesize._row_index import Int32Array, IntArray


class IndexedLookup:
    """A :class:`CombinationLookup` that also returns each combination's position.

    Args:
        lookup: Reported aggregate counts (all lengths up to L).
        count_scale: If set, every count becomes ``ceil(count * count_scale)`` (docs/spec.md 4.4).
    """

    def __init__(self, lookup: CombinationLookup, count_scale: float | None = None) -> None:
        """Wrap ``lookup``; positions index :attr:`counts`."""
        self.layout = lookup.layout
        self._lookup = lookup
        counts = np.asarray(lookup.table_counts, dtype=np.int64)
        if count_scale is not None:
            if not count_scale > 0:
                raise ValueError("count_scale must be > 0")
            counts = np.ceil(counts * float(count_scale)).astype(np.int64)
        self.counts: IntArray = counts

    def __len__(self) -> int:
        return len(self.counts)

    def positions(self, combos: npt.NDArray[np.integer]) -> IntArray:
        """Positions of sorted combinations ``(n, l)`` in :attr:`counts`; -1 where absent."""
        return self._lookup.positions(combos)

    def count_of(self, combos: npt.NDArray[np.integer]) -> IntArray:
        """(Scaled) counts of sorted combinations ``(n, l)``; 0 where absent."""
        pos = self.positions(combos)
        return np.where(pos >= 0, self.counts[np.maximum(pos, 0)], 0)


def combinations_with(record: Int32Array, attrs: Int32Array, length: int) -> Int32Array:
    """Every ``length``-combination of ``record + {a}`` that contains a, for each a in ``attrs``.

    Args:
        record: Ascending attribute ids of the record (none of ``attrs`` among them).
        attrs: The added attributes, one block of rows each.
        length: Combination length, ``1 <= length <= len(record) + 1``.

    Returns:
        ``(len(attrs) * C(len(record), length - 1), length)`` sorted rows; the rows of ``attrs[i]``
        are block i, in the lexicographic order of the subsets of ``record``.
    """
    rest = record[subset_positions(len(record), length - 1)] if length > 1 else np.zeros((1, 0), np.int32)
    n_sub = len(rest)
    block = np.empty((len(attrs), n_sub, length), dtype=np.int32)
    block[:, :, :-1] = rest[None, :, :]
    block[:, :, -1] = attrs[:, None]
    flat = block.reshape(-1, length)
    flat.sort(axis=1)
    return flat
