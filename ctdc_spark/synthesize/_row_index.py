"""Which sensitive records hold an attribute set: the constraint table behind k-safe sampling.

A :class:`RowIndex` answers two questions fast and vectorised (docs/spec.md 4.0): the support of an
attribute set, and, given the rows of a partial record, the support of the partial record plus each
of a whole array of candidate attributes.

Representation. Records are positions ``0..n-1``. Every *token* (an attribute, or the EMPTY value of
a column: the records with no attribute in that column, docs/spec.md 4.2) stores its rows either as sorted
int32 ids (4 bytes per row) or as a packed bitmap of ``W = ceil(n / 64)`` uint64 words (``8 W``
bytes), whichever is smaller: a token is *dense* when its support is at least ``2 W`` (about n/32).
The records themselves are kept as CSR so that the attributes of a small row set can be gathered.

Memory. Because each token takes the cheaper representation, the attribute tokens need at most
``4 * nnz`` bytes, each EMPTY token at most one bitmap, and the CSR ``8 (n + 1) + 4 nnz`` bytes;
with at most :data:`PAIR_COUNTS_MAX_ATTRIBUTES` attributes the index also keeps the ``A x A``
co-occurrence counts (``4 A^2`` bytes), which answer every first extension of a record without
touching rows. :func:`estimate_row_index_bytes` gives the upper bound so a Spark job can refuse,
with a clear message, an index that would exceed its broadcast budget. On first use an executor
also derives :class:`ColumnCodes` (``n x C`` bytes, never shipped).

Cost model (measured with numpy 2 on one core; the constants only decide between exact methods,
so they change speed, never results):

* bitmap AND + popcount: about 1.5 ns per 64-row word, for a dense candidate against bitmap rows;
* bit test: about 2.5 ns per id plus ~3 us per candidate, for ids against a dense candidate (a 2-D
  form at ~10 ns per id and candidate avoids the per-candidate overhead for small row sets) or for
  a sparse candidate against bitmap rows;
* sorted-id search: about 50 ns per searched id, for sparse candidates against id rows;
* gather: about 5 ns per stored attribute of the rows, to count *every* attribute at once from the
  CSR (``bincount``), which wins when rows are few but candidates are many;
* code gather: about 3 ns per row and column read through :class:`ColumnCodes`.

Row sets of partial records are bitmaps while they hold at least ``W / 2`` rows (where AND +
popcount beats bit tests) and sorted ids below. Id sets of at most :data:`LOCAL_MAX_ROWS` rows can
become a *local table* (:class:`LocalCells` or :class:`LocalCandidates`) whose every later step
is a few numpy operations on that many rows, with no intersection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
WordArray = npt.NDArray[np.uint64]

# Relative costs in nanoseconds (see the module docstring); only their ratios matter.
_NS_WORD_AND_POPCOUNT = 1.5
_NS_BIT_TEST = 2.5
_NS_PER_CANDIDATE_CALL = 3000.0
_NS_BIT_TEST_2D = 10.0
_NS_SORTED_SEARCH = 50.0
_NS_GATHER = 5.0
_NS_CODE_GATHER = 3.0  # per row and column read through ColumnCodes
_LOCAL_STEPS = 3  # typical draws left when a record turns local
# Above this many (row, candidate) cells the 2-D bit test thrashes the cache; loop per candidate.
_MAX_2D_CELLS = 16_384

PAIR_COUNTS_MAX_ATTRIBUTES = 4096
"""Keep the ``A x A`` co-occurrence counts only up to this many attributes (64 MiB as int32)."""

LOCAL_MAX_ROWS = 8192
"""Row sets held as ids (fewer than ``W / 2`` rows) and at most this large may become a local table
(:meth:`RowIndex.local_table`), after which each later step of the record costs a few
microseconds per thousand rows instead of an intersection plus a count. Such deep partial records
are nearly all distinct, so the cache would rarely serve them anyway."""

_ONE = np.uint64(1)
_LOW6 = np.uint64(63)


def _n_words(n_records: int) -> int:
    return (n_records + 63) // 64


def estimate_row_index_bytes(
    n_records: int, n_attributes: int, nnz: int, n_columns: int | None = None
) -> int:
    """Upper bound of the memory a :class:`RowIndex` (and its :meth:`RowIndex.to_arrays`) takes.

    Call it on the driver before broadcasting the index, and fail early when it exceeds the budget.

    Args:
        n_records: Number of sensitive records n.
        n_attributes: Number of attribute ids A.
        nnz: Total number of (record, attribute) pairs.
        n_columns: Number of columns; ``None`` assumes the worst case of one column per attribute.

    Returns:
        Bytes, an upper bound for an index built with the default ``dense_min_support``. Each
        executor additionally derives ``n_records * n_columns`` bytes of :class:`ColumnCodes`
        on first use (twice that with more than 255 values in a column); they are not shipped.

    Example:
        >>> estimate_row_index_bytes(1_000_000, 150, 10_000_000, 40) // 2**20
        88
    """
    columns = n_attributes if n_columns is None else n_columns
    n_tokens = n_attributes + columns
    csr = 8 * (n_records + 1) + 4 * nnz
    # Every attribute token costs min(4 * support, 8 W) <= 4 * support; EMPTY tokens at most 8 W.
    tokens = 4 * nnz + columns * 8 * _n_words(n_records)
    # Token offsets, dense slots and supports; attribute columns and their per-column grouping.
    per_token = 8 * (n_tokens + 1) + 4 * n_tokens + 8 * n_tokens + 8 * n_attributes + 8 * (columns + 2)
    pairs = 4 * n_attributes**2 if n_attributes <= PAIR_COUNTS_MAX_ATTRIBUTES else 0
    return csr + tokens + per_token + pairs


@dataclass(frozen=True, slots=True)
class Rows:
    """A set of record positions: all records, sorted int32 ids, or a packed bitmap.

    Attributes:
        size: Number of rows in the set.
        ids: Sorted int32 record positions, or ``None``.
        bits: Packed bitmap (bit ``r % 64`` of word ``r // 64`` is record r), or ``None``.
            Both ``None`` means all records. Arrays may be views into the index: never mutate them.
    """

    size: int
    ids: Int32Array | None = None
    bits: WordArray | None = None


def _bit_positions(ids: Int32Array) -> tuple[Int32Array, WordArray]:
    """Word index and bit shift of each record id, shared by bit tests of several bitmaps."""
    return ids >> 6, ids.astype(np.uint64) & _LOW6


def _bit_test(bits: WordArray, ids: Int32Array) -> npt.NDArray[np.bool_]:
    """Whether each record id is set in ``bits``."""
    word, shift = _bit_positions(ids)
    hits: npt.NDArray[np.bool_] = ((bits[word] >> shift) & _ONE).astype(bool)
    return hits


def _bits_to_ids(bits: WordArray) -> Int32Array:
    """Sorted record ids of the set bits.

    Peels the lowest set bit of every non-zero word per pass, so the work is proportional to the
    set bits (row sets converted here hold fewer than ~n/128 rows, mostly one per word).
    """
    words_at = np.flatnonzero(bits != 0)  # several times faster than on the uint64 words
    words = bits[words_at]
    found_words: list[IntArray] = []
    found_bits: list[IntArray] = []
    while len(words):
        lowest = words & (~words + _ONE)
        # A power of two converts exactly to float64; frexp's exponent is its bit position + 1.
        found_bits.append(np.frexp(lowest.astype(np.float64))[1].astype(np.int64) - 1)
        found_words.append(words_at)
        words = words & (words - _ONE)
        keep = words != 0
        words, words_at = words[keep], words_at[keep]
    if not found_words:
        return np.zeros(0, dtype=np.int32)
    ids: Int32Array = np.sort(np.concatenate(found_words) * 64 + np.concatenate(found_bits)).astype(np.int32)
    return ids


def _ids_to_bits(ids: Int32Array, n_words: int) -> WordArray:
    mask = np.zeros(n_words * 64, dtype=bool)
    mask[ids] = True
    return np.packbits(mask, bitorder="little").view("<u8").astype(np.uint64, copy=False)


def _ranges(starts: IntArray, lengths: IntArray) -> IntArray:
    """Concatenation of ``arange(s, s + l)`` for every (start, length), in one vectorised step."""
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def _sorted_intersection(a: Int32Array, b: Int32Array) -> Int32Array:
    """Intersection of two sorted unique id arrays, searching the smaller in the larger."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if len(small) == 0 or len(large) == 0:
        return small[:0]
    pos = np.minimum(np.searchsorted(large, small), len(large) - 1)
    common: Int32Array = small[large[pos] == small]
    return common


def _stable_order(keys: Int32Array, n_keys: int) -> IntArray:
    """Stable argsort of small non-negative keys (numpy radix-sorts 16-bit keys in linear time)."""
    if n_keys <= np.iinfo(np.int16).max:
        return np.argsort(keys.astype(np.int16), kind="stable")
    return np.argsort(keys, kind="stable")


def _pair_counts(indptr: IntArray, indices: Int32Array, n_attributes: int) -> npt.NDArray[np.int32]:
    """``A x A`` co-occurrence counts (the diagonal holds the supports), from the CSR.

    Records of equal length are stacked into a matrix and their ordered pairs counted in chunks of
    a few million, so the work is one ``bincount`` per chunk instead of a Python loop per record.
    """
    a2 = n_attributes * n_attributes
    out = np.zeros(a2, dtype=np.int64)
    lengths = np.diff(indptr)
    for length in np.unique(lengths[lengths > 0]).tolist():
        starts = indptr[:-1][lengths == length]
        chunk = max(1, 4_000_000 // (length * length))
        for lo in range(0, len(starts), chunk):
            mat = indices[starts[lo : lo + chunk, None] + np.arange(length)].astype(np.int64)
            keys = mat[:, :, None] * n_attributes + mat[:, None, :]
            out += np.bincount(keys.ravel(), minlength=a2)
    return out.reshape(n_attributes, n_attributes).astype(np.int32)


class ColumnCodes:
    """Every record's value in every column as a small code: ``(records, columns)`` uint8/uint16.

    Code 0 is EMPTY and code ``i + 1`` the i-th attribute (ascending id) of the column. Built once
    per index on first use (``O(nnz)``) and never shipped: ``n x C`` bytes (40 MB for a million
    records and 40 columns) on each executor that runs ``unseeded`` or local cells tables.
    """

    __slots__ = ("attr_code", "attr_column", "codes", "column_attrs", "n_attributes")

    def __init__(self, index: RowIndex) -> None:
        """Build the codes of ``index``'s records."""
        self.attr_column = index.attr_column
        self.column_attrs = [index.column_attributes(c) for c in range(index.n_columns)]
        sizes = np.array([len(a) + 1 for a in self.column_attrs], dtype=np.int64)
        self.attr_code = np.zeros(index.n_attributes, dtype=np.int64)
        for attrs in self.column_attrs:
            self.attr_code[attrs] = np.arange(1, len(attrs) + 1)
        dtype = np.uint8 if sizes.max(initial=1) <= 256 else np.uint16 if sizes.max() <= 65536 else np.int32
        # Row-major: a row set's codes are a gather of contiguous rows (8x faster than gathering
        # per column for counting all columns; as fast for reading one column).
        self.codes = np.zeros((index.n_records, index.n_columns), dtype=dtype)
        record_of = np.repeat(np.arange(index.n_records), np.diff(index.indptr))
        self.codes[record_of, index.attr_column[index.indices]] = self.attr_code[index.indices]
        self.n_attributes = index.n_attributes

    def token_code(self, tokens: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        """Column and code of each token (an attribute, or ``A + c`` for EMPTY in column c)."""
        toks = np.asarray(tokens, dtype=np.int64)
        is_attr = toks < self.n_attributes
        safe = np.where(is_attr, toks, 0)
        column = np.where(is_attr, self.attr_column[safe], toks - self.n_attributes).astype(np.int64)
        code = np.where(is_attr, self.attr_code[safe], 0).astype(np.int64)
        return column, code


class LocalCells:
    """A small row set read through :class:`ColumnCodes`: counting one column's values and
    restricting to any token (attribute or EMPTY) are a gather and a comparison over the set's
    rows, with no intersection and no cache."""

    __slots__ = ("_alive", "_codes", "_index")

    def __init__(self, index: RowIndex, alive: Int32Array) -> None:
        """Wrap the sorted record positions ``alive``; use :meth:`RowIndex.local_table`."""
        self._index = index
        self._codes = index.column_codes()
        self._alive = alive

    @property
    def size(self) -> int:
        """Number of rows."""
        return len(self._alive)

    def column_counts(self, column: int) -> IntArray:
        """Rows per code of ``column``: index 0 counts EMPTY, index ``i + 1`` its i-th attribute."""
        values = self._codes.codes[self._alive, column]
        return np.bincount(values, minlength=len(self._codes.column_attrs[column]) + 1)

    def count_all(self) -> IntArray:
        """How many of the rows hold each attribute, ``int64[A]`` (a CSR gather, ~2x codes)."""
        return self._index.count_all(Rows(len(self._alive), ids=self._alive))

    def counts(self, attrs: Int32Array) -> IntArray:
        """How many of the rows hold each attribute of ``attrs``."""
        columns = np.unique(self._codes.attr_column[attrs])
        if len(columns) > 2:
            return self.count_all()[attrs]
        out = np.zeros(len(attrs), dtype=np.int64)
        for c in columns.tolist():
            in_column = self._codes.attr_column[attrs] == c
            out[in_column] = self.column_counts(c)[self._codes.attr_code[attrs[in_column]]]
        return out

    def restrict(self, token: int) -> LocalCells:
        """The rows that hold ``token`` (an attribute, or ``A + c`` for EMPTY in column c)."""
        columns, codes = self._codes.token_code([token])
        keep = self._codes.codes[self._alive, int(columns[0])] == codes[0]
        return LocalCells(self._index, self._alive[keep])


class LocalCandidates:
    """A small row set with the membership of each row in a set of candidate tokens, ``(rows, c)``.

    Cheaper than :class:`LocalCells` when candidates are few (a row-seeded record only ever draws
    from its seed); tokens outside the set get their membership column on first use.
    """

    __slots__ = ("_hits", "_ids", "_index", "_tokens")

    def __init__(
        self, index: RowIndex, ids: Int32Array, tokens: Int32Array, hits: npt.NDArray[np.bool_]
    ) -> None:
        """Wrap a membership matrix; use :meth:`RowIndex.local_table`."""
        self._index = index
        self._ids = ids
        self._tokens = tokens
        self._hits = hits

    @property
    def size(self) -> int:
        """Number of rows."""
        return len(self._ids)

    def _columns(self, tokens: Int32Array) -> IntArray:
        """Columns of ``tokens`` in the membership matrix, adding the missing ones (call it before
        reading ``_hits``, which it may replace)."""
        pos = np.searchsorted(self._tokens, tokens)
        known = pos < len(self._tokens)
        known[known] = self._tokens[pos[known]] == tokens[known]
        if not known.all():
            new = np.unique(tokens[~known])
            merged = np.concatenate([self._tokens, new])
            order = np.argsort(merged, kind="stable")
            self._tokens = merged[order]
            self._hits = np.hstack([self._hits, self._index.membership(self._ids, new)])[:, order]
            pos = np.searchsorted(self._tokens, tokens)
        return pos

    def counts(self, attrs: Int32Array) -> IntArray:
        """How many of the rows hold each attribute of ``attrs``."""
        columns = self._columns(attrs)
        counts: IntArray = np.count_nonzero(self._hits[:, columns], axis=0).astype(np.int64)
        return counts

    def restrict(self, token: int) -> LocalCandidates:
        """The rows that hold ``token``."""
        column = int(self._columns(np.array([token], dtype=np.int32))[0])
        keep = self._hits[:, column]
        return LocalCandidates(self._index, self._ids[keep], self._tokens, self._hits[keep])


LocalTable = LocalCells | LocalCandidates
LocalKind = Literal["auto", "cells", "candidates"]


class RowIndex:
    """Per-token rows of the sensitive records, shippable to executors as a few numpy arrays.

    Tokens ``0..A-1`` are the attributes; token ``A + c`` is the EMPTY value of column ``c`` (the
    records with no attribute in column c), used by ``unseeded``. Build with :meth:`from_csr` on the
    driver or :meth:`from_arrays` on an executor.
    """

    _ARRAY_KEYS = (
        "indptr",
        "indices",
        "attr_column",
        "support",
        "dense_slot",
        "bitmaps",
        "tok_indptr",
        "tok_rows",
        "pair_counts",
        "dense_min_support",
    )

    def __init__(self, arrays: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """Wrap already-built arrays; use :meth:`from_csr` or :meth:`from_arrays` instead."""
        # Every array may arrive flat (e.g. from Arrow buffers); the 2-D ones are reshaped from
        # the sizes implied by the 1-D ones.
        self.indptr: IntArray = np.asarray(arrays["indptr"], dtype=np.int64).reshape(-1)
        self.indices: Int32Array = np.asarray(arrays["indices"], dtype=np.int32).reshape(-1)
        self.attr_column: Int32Array = np.asarray(arrays["attr_column"], dtype=np.int32).reshape(-1)
        self.token_support: IntArray = np.asarray(arrays["support"], dtype=np.int64).reshape(-1)
        self._dense_slot: Int32Array = np.asarray(arrays["dense_slot"], dtype=np.int32).reshape(-1)
        self._tok_indptr: IntArray = np.asarray(arrays["tok_indptr"], dtype=np.int64).reshape(-1)
        self._tok_rows: Int32Array = np.asarray(arrays["tok_rows"], dtype=np.int32).reshape(-1)
        self._dense_min = int(np.asarray(arrays["dense_min_support"]).reshape(-1)[0])
        self.n_records = len(self.indptr) - 1
        self.n_attributes = len(self.attr_column)
        self.n_columns = len(self.token_support) - self.n_attributes
        self.n_words = _n_words(self.n_records)
        bitmaps = np.asarray(arrays["bitmaps"], dtype=np.uint64).reshape(-1)
        flat_pairs = np.array(arrays["pair_counts"], dtype=np.int32).reshape(-1)
        if len(bitmaps) % max(1, self.n_words) or len(flat_pairs) not in {0, self.n_attributes**2}:
            raise ValueError("RowIndex arrays are inconsistent; rebuild them with RowIndex.from_csr")
        self._bitmaps: WordArray = (
            bitmaps.reshape(-1, self.n_words) if self.n_words else bitmaps.reshape(0, 0)
        )
        n_pairs = self.n_attributes if len(flat_pairs) else 0
        pairs: npt.NDArray[np.int32] = flat_pairs.reshape(n_pairs, n_pairs)
        pairs.setflags(write=False)  # rows of it are handed out as read-only count vectors
        self._pairs = pairs
        # Row sets keep a bitmap while AND + popcount beats bit tests (and always when every token
        # is forced dense, so tests exercise the bitmap paths).
        self._rows_bitmap_min = min(self._dense_min, max(1, self.n_words // 2))
        self._mean_length = len(self.indices) / max(1, self.n_records)
        col_order = np.argsort(self.attr_column, kind="stable").astype(np.int32)
        col_sizes = np.bincount(self.attr_column, minlength=self.n_columns)
        self._col_indptr = np.concatenate([[0], np.cumsum(col_sizes)]).astype(np.int64)
        self._col_attrs = col_order
        self._all = Rows(self.n_records)
        self._column_codes: ColumnCodes | None = None
        if not (
            len(self._dense_slot) == len(self.token_support) == len(self._tok_indptr) - 1
            and len(self._bitmaps) == int(np.count_nonzero(self._dense_slot >= 0))
        ):
            raise ValueError("RowIndex arrays are inconsistent; rebuild them with RowIndex.from_csr")

    @classmethod
    def from_csr(
        cls,
        indptr: npt.ArrayLike,
        indices: npt.ArrayLike,
        n_attributes: int,
        attr_column: npt.ArrayLike,
        *,
        dense_min_support: int | None = None,
    ) -> RowIndex:
        """Build the index from the sensitive records in CSR form.

        Args:
            indptr: ``int64[n + 1]``; record r holds ``indices[indptr[r]:indptr[r + 1]]``.
            indices: ``int32[nnz]``, strictly increasing attribute ids within each record.
            n_attributes: Number of attribute ids A (``len(attr_column)``).
            attr_column: ``int32[A]``, the column of each attribute (columns ``0..C-1``).
            dense_min_support: Tokens with at least this support are stored as bitmaps; ``None``
                chooses the smaller representation (support >= ``2 * ceil(n / 64)``). Tests force
                0 (all bitmaps) or a huge value (all ids) to exercise every code path.

        Returns:
            The index.

        Raises:
            ValueError: If the arrays are malformed or a record has two attributes of one column.
        """
        indptr_a = np.asarray(indptr, dtype=np.int64)
        indices_a = np.asarray(indices, dtype=np.int32)
        attr_column_a = np.asarray(attr_column, dtype=np.int32)
        n = len(indptr_a) - 1
        if attr_column_a.shape != (n_attributes,):
            raise ValueError("attr_column must have one entry per attribute (n_attributes)")
        if n < 0 or indptr_a[0] != 0 or indptr_a[-1] != len(indices_a) or np.any(np.diff(indptr_a) < 0):
            raise ValueError("indptr must start at 0, be non-decreasing and end at len(indices)")
        if len(indices_a) and (indices_a.min() < 0 or indices_a.max() >= n_attributes):
            raise ValueError("attribute ids must lie in [0, n_attributes)")
        if len(attr_column_a) and attr_column_a.min() < 0:
            raise ValueError("column indexes must be non-negative")
        lengths = np.diff(indptr_a)
        record_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
        same_record = record_of[1:] == record_of[:-1]
        if np.any(np.diff(indices_a)[same_record] <= 0):
            raise ValueError("attribute ids must be strictly increasing within each record")
        n_columns = int(attr_column_a.max()) + 1 if n_attributes else 0
        # Group (column, record) pairs by column; records stay ascending within a column because
        # the sort is stable, so a repeated record next to itself means two values in one column.
        col_of = attr_column_a[indices_a]
        col_order = _stable_order(col_of, n_columns)
        col_records = record_of[col_order]
        col_sorted = col_of[col_order]
        if np.any((col_sorted[1:] == col_sorted[:-1]) & (col_records[1:] == col_records[:-1])):
            raise ValueError("a record has more than one attribute in the same column")

        # Rows of every attribute, then of every EMPTY value, as one token CSR (rows sorted).
        attr_order = _stable_order(indices_a, n_attributes)
        support_attr = np.bincount(indices_a, minlength=n_attributes).astype(np.int64)
        attr_rows = record_of[attr_order].astype(np.int32)
        col_bounds = np.concatenate([[0], np.cumsum(np.bincount(col_of, minlength=n_columns))])
        empty_rows: list[Int32Array] = []
        for c in range(n_columns):
            has = np.zeros(n, dtype=bool)
            has[col_records[col_bounds[c] : col_bounds[c + 1]]] = True
            empty_rows.append(np.flatnonzero(~has).astype(np.int32))
        support = np.concatenate([support_attr, [len(r) for r in empty_rows]]).astype(np.int64)
        all_rows = np.concatenate([attr_rows, *empty_rows]) if n_columns else attr_rows
        all_indptr = np.concatenate([[0], np.cumsum(support)]).astype(np.int64)

        words = _n_words(n)
        threshold = 2 * words if dense_min_support is None else dense_min_support
        dense = support >= threshold
        dense_slot = np.where(dense, np.cumsum(dense) - 1, -1).astype(np.int32)
        bitmaps = np.zeros((int(dense.sum()), words), dtype=np.uint64)
        for t in np.flatnonzero(dense):
            bitmaps[dense_slot[t]] = _ids_to_bits(all_rows[all_indptr[t] : all_indptr[t + 1]], words)
        sparse_len = np.where(dense, 0, support)
        tok_indptr = np.concatenate([[0], np.cumsum(sparse_len)]).astype(np.int64)
        keep = np.repeat(~dense, support)
        if n_attributes <= PAIR_COUNTS_MAX_ATTRIBUTES:
            pairs = _pair_counts(indptr_a, indices_a, n_attributes)
        else:
            pairs = np.zeros((0, 0), dtype=np.int32)
        return cls(
            {
                "indptr": indptr_a,
                "indices": indices_a,
                "attr_column": attr_column_a,
                "support": support,
                "dense_slot": dense_slot,
                "bitmaps": bitmaps,
                "tok_indptr": tok_indptr,
                "tok_rows": all_rows[keep],
                "pair_counts": pairs,
                "dense_min_support": np.array([threshold], dtype=np.int64),
            }
        )

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[np.generic]]) -> RowIndex:
        """Rebuild an index from :meth:`to_arrays` output without recomputing it."""
        missing = [k for k in cls._ARRAY_KEYS if k not in arrays]
        if missing:
            raise ValueError(f"RowIndex arrays lack {missing}; ship every key of RowIndex.to_arrays()")
        return cls(arrays)

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """The ten flat numpy arrays that fully describe the index (for Arrow/broadcast shipping).

        Every array is 1-D (``bitmaps`` and ``pair_counts`` are flattened row-major), so each can
        travel as one Arrow column or buffer; :meth:`from_arrays` restores the index without
        recomputing anything.
        """
        return {
            "indptr": self.indptr,
            "indices": self.indices,
            "attr_column": self.attr_column,
            "support": self.token_support,
            "dense_slot": self._dense_slot,
            "bitmaps": self._bitmaps.reshape(-1),
            "tok_indptr": self._tok_indptr,
            "tok_rows": self._tok_rows,
            "pair_counts": self._pairs.reshape(-1),
            "dense_min_support": np.array([self._dense_min], dtype=np.int64),
        }

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays."""
        return sum(int(a.nbytes) for a in self.to_arrays().values()) + int(
            self._col_indptr.nbytes + self._col_attrs.nbytes
        )

    @property
    def support(self) -> IntArray:
        """Support (1-count) of every attribute, ``int64[A]``."""
        return self.token_support[: self.n_attributes]

    def empty_token(self, column: int) -> int:
        """Token of the EMPTY value of ``column`` (records without an attribute in it)."""
        return self.n_attributes + column

    def column_attributes(self, column: int) -> Int32Array:
        """Sorted attribute ids of ``column``."""
        return self._col_attrs[self._col_indptr[column] : self._col_indptr[column + 1]]

    def single_token_counts(self, token: int) -> npt.NDArray[np.int32] | None:
        """Counts of ``{token, a}`` for every attribute a, from the co-occurrence counts.

        Returns a read-only row for an attribute; for an EMPTY token, the attribute's support minus
        its co-occurrences with the column's values (a record has at most one value per column).
        ``None`` when the index keeps no co-occurrence counts.
        """
        if not len(self._pairs):
            return None
        if token < self.n_attributes:
            row: npt.NDArray[np.int32] = self._pairs[token]
            return row
        values = self.column_attributes(token - self.n_attributes)
        empty: npt.NDArray[np.int32] = (self.support - self._pairs[values].sum(axis=0)).astype(np.int32)
        return empty

    def all_rows(self) -> Rows:
        """The set of all records."""
        return self._all

    def token_rows(self, token: int) -> Rows:
        """Rows of one token, as a view into the index."""
        slot = int(self._dense_slot[token])
        size = int(self.token_support[token])
        if slot >= 0:
            return Rows(size, bits=self._bitmaps[slot])
        return Rows(size, ids=self._tok_rows[self._tok_indptr[token] : self._tok_indptr[token + 1]])

    def intersect(self, rows: Rows, token: int, size: int | None = None) -> Rows:
        """Rows of ``rows`` that also hold ``token``.

        Args:
            rows: A row set of this index.
            token: An attribute id or an :meth:`empty_token`.
            size: The size of the result when already known (saves a popcount).

        Returns:
            The intersection, as a bitmap while it is large and as sorted ids below.
        """
        tok = self.token_rows(token)
        if rows.ids is None and rows.bits is None:
            return tok
        if rows.ids is not None:
            if tok.bits is not None:
                ids = rows.ids[_bit_test(tok.bits, rows.ids)]
            else:
                assert tok.ids is not None
                ids = _sorted_intersection(rows.ids, tok.ids)
            return Rows(len(ids), ids=ids)
        assert rows.bits is not None
        if tok.ids is not None:
            ids = tok.ids[_bit_test(rows.bits, tok.ids)]
            return Rows(len(ids), ids=ids)
        assert tok.bits is not None
        bits = rows.bits & tok.bits
        n = int(np.bitwise_count(bits).sum(dtype=np.uint32)) if size is None else size
        if n >= self._rows_bitmap_min:
            return Rows(n, bits=bits)
        return Rows(n, ids=_bits_to_ids(bits))

    def rows_of(self, tokens: npt.ArrayLike) -> Rows:
        """Rows holding every token of a set (all records for the empty set).

        Intersects in ascending support order, so every step is bounded by the smallest set.
        """
        toks = np.asarray(tokens, dtype=np.int64).reshape(-1)
        rows = self._all
        for t in toks[np.argsort(self.token_support[toks], kind="stable")]:
            rows = self.intersect(rows, int(t))
            if rows.size == 0:
                break
        return rows

    def support_of(self, tokens: npt.ArrayLike) -> int:
        """Support ``c_D(A)`` of a token set: the number of records holding all of it."""
        return self.rows_of(tokens).size

    def local_table(self, rows: Rows, attrs: Int32Array, *, kind: LocalKind = "auto") -> LocalTable:
        """Expand a small row set into a local table for counting ``attrs`` from now on.

        Args:
            rows: The row set (at most ~LOCAL_MAX_ROWS rows).
            attrs: The candidates about to be counted.
            kind: ``"cells"`` or ``"candidates"`` to force the table; ``"auto"`` picks the cheaper
                for a few more draws among ``attrs`` (few candidates favour a candidate table,
                many a cells table; ``unseeded`` moves from column to column and asks for cells).

        Returns:
            A :class:`LocalCells` or :class:`LocalCandidates` over the rows.
        """
        ids = self._ids_of(rows)
        m = len(ids)
        if kind == "auto":
            # Cells cost nothing to build but every later count gathers one code per row and
            # column; a candidate table gathers one code per row and candidate up front, then each
            # count is a cheap boolean reduction. Compare over a typical few more steps.
            candidates_cost = (_NS_CODE_GATHER + _LOCAL_STEPS) * m * len(attrs)
            n_cols = min(len(np.unique(self.attr_column[attrs])), self.n_columns)
            cells_cost = _LOCAL_STEPS * (_NS_CODE_GATHER * m + _NS_PER_CANDIDATE_CALL) * n_cols
            kind = "candidates" if candidates_cost < cells_cost else "cells"
        if kind == "candidates":
            tokens = np.unique(attrs)
            return LocalCandidates(self, ids, tokens, self.membership(ids, tokens))
        return LocalCells(self, ids)

    def column_codes(self) -> ColumnCodes:
        """The records' per-column codes, built on first use (see :class:`ColumnCodes`)."""
        if self._column_codes is None:
            self._column_codes = ColumnCodes(self)
        return self._column_codes

    def membership(self, ids: Int32Array, tokens: Int32Array) -> npt.NDArray[np.bool_]:
        """Whether each row of ``ids`` holds each token, ``bool[len(ids), len(tokens)]``.

        Reads the rows' codes, whatever the token's storage: whole rows first (one contiguous copy
        per row), then the tokens' columns, 3-6x faster than gathering every (row, token) cell on its
        own, and the more so the larger the table is next to the CPU caches.
        """
        codes = self.column_codes()
        column, code = codes.token_code(tokens)
        rows = np.take(codes.codes, ids, axis=0)
        out: npt.NDArray[np.bool_] = rows[:, column] == code[None, :]
        return out

    def _ids_of(self, rows: Rows) -> Int32Array:
        if rows.ids is not None:
            return rows.ids
        if rows.bits is not None:
            return _bits_to_ids(rows.bits)
        return np.arange(self.n_records, dtype=np.int32)

    def prefer_count_all(self, rows: Rows, attrs: Int32Array) -> bool:
        """Whether counting every attribute by gathering beats counting ``attrs`` one by one.

        Gathering reads the CSR of the rows once (cost ~ rows x mean record length) and yields
        the counts of all attributes, so a cache can answer later candidates for free.
        """
        if rows.ids is None and rows.bits is None:
            return False  # the supports are stored
        m = rows.size
        slots = self._dense_slot[attrs]
        n_dense = int(np.count_nonzero(slots >= 0))
        sparse_support = self.token_support[attrs[slots < 0]]
        gather = _NS_GATHER * m * self._mean_length
        if rows.bits is not None:
            each = _NS_WORD_AND_POPCOUNT * self.n_words * n_dense + _NS_BIT_TEST * float(sparse_support.sum())
            gather += _NS_WORD_AND_POPCOUNT * self.n_words + _NS_BIT_TEST * m  # bitmap -> ids first
            return gather <= each
        if m * n_dense <= _MAX_2D_CELLS:
            each = _NS_BIT_TEST_2D * m * n_dense
        else:
            each = (_NS_PER_CANDIDATE_CALL + _NS_BIT_TEST * m) * n_dense
        # Sparse candidates: search the smaller side into the larger one (see count_each).
        small = sparse_support <= m
        each += _NS_SORTED_SEARCH * float(sparse_support[small].sum())
        each += (_NS_PER_CANDIDATE_CALL + _NS_SORTED_SEARCH * m) * int(np.count_nonzero(~small))
        return gather <= each

    def count_all(self, rows: Rows) -> IntArray:
        """Count of ``rows`` ∩ rows(a) for every attribute a, ``int64[A]``."""
        if rows.ids is None and rows.bits is None:
            return self.support.copy()
        ids = self._ids_of(rows)
        starts = self.indptr[ids]
        lengths = self.indptr[ids.astype(np.int64) + 1] - starts
        return np.bincount(self.indices[_ranges(starts, lengths)], minlength=self.n_attributes)

    def count_each(self, rows: Rows, attrs: Int32Array) -> IntArray:
        """Count of ``rows`` ∩ rows(a) for each attribute (or token) in ``attrs``, ``int64[len]``."""
        attrs = np.asarray(attrs, dtype=np.int32)
        if rows.ids is None and rows.bits is None:
            return self.token_support[attrs].copy()
        out = np.zeros(len(attrs), dtype=np.int64)
        slots = self._dense_slot[attrs]
        dense = slots >= 0
        if dense.any():
            dense_slots = slots[dense]
            if rows.bits is not None:
                # uint32 accumulation is several times faster than the default and cannot overflow
                # (a row set has fewer than 2**32 rows).
                out[dense] = np.bitwise_count(self._bitmaps[dense_slots] & rows.bits).sum(
                    axis=1, dtype=np.uint32
                )
            else:
                assert rows.ids is not None
                ids = rows.ids
                word, shift = _bit_positions(ids)
                if len(ids) * len(dense_slots) <= _MAX_2D_CELLS:
                    words = self._bitmaps[dense_slots[:, None], word[None, :]]
                    out[dense] = ((words >> shift) & _ONE).sum(axis=1)
                else:
                    out[dense] = [
                        np.count_nonzero((self._bitmaps[s][word] >> shift) & _ONE)
                        for s in dense_slots.tolist()
                    ]
        if not dense.all():
            out[~dense] = self._count_sparse(rows, attrs[~dense])
        return out

    def _count_sparse(self, rows: Rows, sparse: Int32Array) -> IntArray:
        """Counts of sparse (id-stored) tokens within bitmap or id rows."""
        starts = self._tok_indptr[sparse]
        lengths = self._tok_indptr[sparse + 1] - starts
        out = np.zeros(len(sparse), dtype=np.int64)
        batched = np.ones(len(sparse), dtype=bool)
        if rows.ids is not None:
            # Tokens with more rows than the set: search the set's ids into the token's instead.
            m = len(rows.ids)
            for i in np.flatnonzero(lengths > m).tolist():
                tok = self._tok_rows[starts[i] : starts[i] + lengths[i]]
                out[i] = len(_sorted_intersection(rows.ids, tok))
                batched[i] = False
        starts, lengths = starts[batched], lengths[batched]
        cand_rows = self._tok_rows[_ranges(starts, lengths)]
        if rows.bits is not None:
            hits = _bit_test(rows.bits, cand_rows)
        else:
            assert rows.ids is not None
            if len(rows.ids) == 0:
                hits = np.zeros(len(cand_rows), dtype=bool)
            else:
                pos = np.minimum(np.searchsorted(rows.ids, cand_rows), len(rows.ids) - 1)
                hits = rows.ids[pos] == cand_rows
        cum = np.concatenate([[0], np.cumsum(hits, dtype=np.int64)])
        ends = np.cumsum(lengths)
        out[batched] = cum[ends] - cum[ends - lengths]
        return out

    def counts(self, rows: Rows, attrs: npt.ArrayLike) -> IntArray:
        """Count of ``rows`` ∩ rows(a) for each attribute in ``attrs``, by the cheaper method."""
        attrs_a = np.asarray(attrs, dtype=np.int32)
        if self.prefer_count_all(rows, attrs_a):
            return self.count_all(rows)[attrs_a]
        return self.count_each(rows, attrs_a)
