"""Compact keys for attribute combinations.

A combination is a sorted tuple of attribute ids (ids are assigned in canonical ``col:value`` order,
so sorted ids are the canonical combination order). It is packed into ``n_words`` int64 words:
each slot holds ``id + 1`` (0 marks an empty slot) in ``bits`` bits, ``slots_per_word`` slots per
word, using at most 63 bits so every word is a non-negative int64. With few attributes and short
combinations one word suffices (e.g. 500 attributes -> 9 bits, 7 slots); when ids do not fit, more
words are used, so packing never loses information.

Keys of the same length order like the combinations themselves: slot 0 is the most significant
slot of word 0, so comparing words lexicographically compares ids lexicographically.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

_WORD_BITS = 63


@dataclass(frozen=True)
class KeyLayout:
    """How combinations of up to ``max_length`` ids below ``n_attributes`` are packed."""

    n_attributes: int
    max_length: int

    def __post_init__(self) -> None:
        if self.n_attributes < 0 or self.max_length < 1:
            raise ValueError("KeyLayout needs n_attributes >= 0 and max_length >= 1")

    @property
    def bits(self) -> int:
        """Bits per slot: enough for ``n_attributes`` (ids are stored +1)."""
        return max(1, int(self.n_attributes).bit_length())

    @property
    def slots_per_word(self) -> int:
        """How many ids fit in one 63-bit word."""
        return max(1, _WORD_BITS // self.bits)

    @property
    def n_words(self) -> int:
        """Number of int64 words per key."""
        return -(-self.max_length // self.slots_per_word)

    @property
    def word_columns(self) -> list[str]:
        """Names of the key columns in Spark frames: ``k0, k1, ...``."""
        return [f"k{i}" for i in range(self.n_words)]

    def pack(self, combos: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """Pack an ``(n, l)`` array of sorted ids (``-1`` = no id) into ``(n, n_words)`` int64.

        Args:
            combos: Each row a sorted combination; shorter combinations are right-padded with -1.

        Returns:
            The packed words.
        """
        combos = np.asarray(combos)
        n, length = combos.shape
        if length > self.max_length:
            raise ValueError(f"combinations of length {length} exceed the layout's {self.max_length}")
        out = np.zeros((n, self.n_words), dtype=np.int64)
        shifted = combos.astype(np.int64) + 1  # -1 padding becomes 0, the empty slot
        spw, bits = self.slots_per_word, self.bits
        for slot in range(length):
            word, pos = divmod(slot, spw)
            out[:, word] |= shifted[:, slot] << ((spw - 1 - pos) * bits)
        return out

    def unpack(self, words: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
        """Inverse of :meth:`pack`: ``(n, n_words)`` -> ``(n, max_length)`` ids, ``-1`` padded."""
        words = np.asarray(words, dtype=np.int64).reshape(-1, self.n_words)
        spw, bits = self.slots_per_word, self.bits
        mask = (1 << bits) - 1
        out = np.full((words.shape[0], self.max_length), -1, dtype=np.int32)
        for slot in range(self.max_length):
            word, pos = divmod(slot, spw)
            out[:, slot] = ((words[:, word] >> ((spw - 1 - pos) * bits)) & mask).astype(np.int32) - 1
        return out


@cache
def subset_positions(m: int, length: int) -> npt.NDArray[np.int16]:
    """All ``length``-subsets of ``range(m)``: a ``(C(m, length), length)`` array, lexicographic order."""
    combos = list(itertools.combinations(range(m), length))
    if not combos:
        return np.zeros((0, length), dtype=np.int16)
    return np.asarray(combos, dtype=np.int16)


class CombinationLookup:
    """Vectorised ``combination -> count`` lookup over a packed, sorted key table.

    Built on the driver or inside a task from arrays (never from Python dicts of tuples), e.g. from
    the reportable aggregates. Absent combinations count 0.
    """

    def __init__(
        self, layout: KeyLayout, words: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]
    ) -> None:
        """Create the lookup.

        Args:
            layout: The packing layout the words were produced with.
            words: ``(n, n_words)`` packed keys (any order, unique).
            counts: ``(n,)`` counts.
        """
        self.layout = layout
        words = np.asarray(words, dtype=np.int64).reshape(-1, layout.n_words)
        order = np.lexsort(words.T[::-1]) if len(words) else np.zeros(0, dtype=np.int64)
        self._words = np.ascontiguousarray(words[order])
        self._counts = np.asarray(counts, dtype=np.int64)[order]
        self._void = self._as_void(self._words)

    @staticmethod
    def _as_void(words: npt.NDArray[np.int64]) -> npt.NDArray[np.void]:
        # Big-endian bytes of non-negative int64 words compare like the integers, so a void view
        # orders rows lexicographically and searchsorted works for any number of words.
        be = np.ascontiguousarray(words.astype(">i8"))
        return be.view(np.dtype((np.void, be.shape[1] * 8))).ravel()

    def __len__(self) -> int:
        return len(self._counts)

    @property
    def table_words(self) -> npt.NDArray[np.int64]:
        """The packed keys in table order (``(n, n_words)``), aligned with :attr:`table_counts`."""
        return self._words

    @property
    def table_counts(self) -> npt.NDArray[np.int64]:
        """The counts in table order: ``table_counts[positions(...)]`` for found combinations."""
        return self._counts

    def positions_of_keys(self, words: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Position of each packed key ``(n, n_words)`` in the table; -1 where absent."""
        words = np.asarray(words, dtype=np.int64).reshape(-1, self.layout.n_words)
        if len(self._counts) == 0 or len(words) == 0:
            return np.full(len(words), -1, dtype=np.int64)
        table: npt.NDArray[np.generic]
        probe: npt.NDArray[np.generic]
        if self.layout.n_words == 1:
            # One-word keys (up to 7 slots of 9 bits): an int64 search, much faster than bytes.
            table, probe = self._words[:, 0], words[:, 0]
        else:
            table, probe = self._void, self._as_void(words)
        pos = np.minimum(np.searchsorted(table, probe), len(table) - 1)
        return np.where(table[pos] == probe, pos, -1).astype(np.int64)

    def positions(self, combos: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """Position of each sorted combination ``(n, l)`` (``-1`` padded) in the table; -1 where absent."""
        return self.positions_of_keys(self.layout.pack(combos))

    def counts_of_keys(self, words: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Counts of packed keys ``(n, n_words)``; 0 where absent."""
        pos = self.positions_of_keys(words)
        if not len(self._counts):
            return np.zeros(len(pos), dtype=np.int64)
        return np.where(pos >= 0, self._counts[np.maximum(pos, 0)], 0)

    def counts(self, combos: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """Counts of sorted combinations ``(n, l)`` (``-1`` padded); 0 where absent."""
        return self.counts_of_keys(self.layout.pack(combos))
