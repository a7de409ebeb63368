"""Which sensitive records hold an attribute set: the constraint table behind k-safe sampling.

A :class:`RowIndex` answers two questions fast and vectorised (SPEC.md 4.0): the support of an
attribute set, and, given the rows of a partial record, the support of the partial record plus each
of a whole array of candidate attributes.

Representation. Records are positions ``0..n-1``. Every *token* (an attribute, or the EMPTY value of
a column: the records with no attribute in that column, SPEC.md 4.2) stores its rows either as sorted
int32 ids (4 bytes per row) or as a packed bitmap of ``W = ceil(n / 64)`` uint64 words (``8 W``
bytes), whichever is smaller: a token is *dense* when its support is at least ``2 W`` (about n/32).
The records themselves are kept as CSR so that the attributes of a small row set can be gathered.

Memory. Because each token takes the cheaper representation, the attribute tokens need at most
``4 * nnz`` bytes, each EMPTY token at most one bitmap, and the CSR ``8 (n + 1) + 4 nnz`` bytes;
:func:`estimate_row_index_bytes` gives this upper bound so a Spark job can refuse, with a clear
message, an index that would exceed its broadcast budget.

Cost model (measured with numpy 2 on one core; the constants only decide between exact methods,
so they change speed, never results):

* bitmap AND + popcount: about 2 ns per 64-row word, for a dense candidate against bitmap rows;
* bit test: about 2.5 ns per id (10 ns in the 2-D form used to test many dense candidates at once)
  for a sparse candidate against bitmap rows, or for ids against a dense candidate;
* sorted-id search: about 50 ns per searched id, for sparse candidates against id rows;
* gather: about 16 ns per stored attribute of the rows, to count *every* attribute at once from the
  CSR (``bincount``), which wins when rows are few but candidates are many.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
WordArray = npt.NDArray[np.uint64]

# Relative costs in nanoseconds (see the module docstring); only their ratios matter.
_NS_WORD_AND_POPCOUNT = 2.0
_NS_BIT_TEST = 2.5
_NS_BIT_TEST_2D = 10.0
_NS_SORTED_SEARCH = 50.0
_NS_GATHER = 16.0

_ONE = np.uint64(1)
_SIX = np.uint64(6)
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
        Bytes, an upper bound for an index built with the default ``dense_min_support``.

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
    return csr + tokens + per_token


@dataclass(frozen=True, slots=True)
class Rows:
    """A set of record positions: all records, sorted int32 ids, or a packed bitmap.

    Attributes:
        size: Number of rows in the set.
        ids: Sorted int32 record positions, or ``None``.
        bits: Packed bitmap (bit ``r % 64`` of word ``r // 64`` is record r), or ``None``.
            Both ``None`` means all records. Arrays may be views into the index: never mutate them.
        owned: Whether the arrays were allocated for this set (views into the index cost nothing).
    """

    size: int
    ids: Int32Array | None = None
    bits: WordArray | None = None
    owned: bool = False

    @property
    def nbytes(self) -> int:
        """Bytes allocated for this set alone (0 for views into the index)."""
        if not self.owned:
            return 0
        if self.ids is not None:
            return int(self.ids.nbytes)
        return int(self.bits.nbytes) if self.bits is not None else 0


def _bit_test(bits: WordArray, ids: Int32Array) -> npt.NDArray[np.bool_]:
    """Whether each record id is set in ``bits``."""
    words = bits[ids >> 6]
    hits: npt.NDArray[np.bool_] = ((words >> (ids.astype(np.uint64) & _LOW6)) & _ONE).astype(bool)
    return hits


def _bits_to_ids(bits: WordArray) -> Int32Array:
    """Sorted record ids of the set bits."""
    nz = np.flatnonzero(bits)
    as_bytes = bits[nz].astype("<u8", copy=False).view(np.uint8)
    pos = np.flatnonzero(np.unpackbits(as_bytes, bitorder="little"))
    ids: Int32Array = (nz[pos >> 6] * 64 + (pos & 63)).astype(np.int32)
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
        "dense_min_support",
    )

    def __init__(self, arrays: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """Wrap already-built arrays; use :meth:`from_csr` or :meth:`from_arrays` instead."""
        self.indptr: IntArray = np.asarray(arrays["indptr"], dtype=np.int64)
        self.indices: Int32Array = np.asarray(arrays["indices"], dtype=np.int32)
        self.attr_column: Int32Array = np.asarray(arrays["attr_column"], dtype=np.int32)
        self.token_support: IntArray = np.asarray(arrays["support"], dtype=np.int64)
        self._dense_slot: Int32Array = np.asarray(arrays["dense_slot"], dtype=np.int32)
        self._bitmaps: WordArray = np.asarray(arrays["bitmaps"], dtype=np.uint64)
        self._tok_indptr: IntArray = np.asarray(arrays["tok_indptr"], dtype=np.int64)
        self._tok_rows: Int32Array = np.asarray(arrays["tok_rows"], dtype=np.int32)
        self._dense_min = int(np.asarray(arrays["dense_min_support"]))
        self.n_records = len(self.indptr) - 1
        self.n_attributes = len(self.attr_column)
        self.n_columns = len(self.token_support) - self.n_attributes
        self.n_words = _n_words(self.n_records)
        self._mean_length = len(self.indices) / max(1, self.n_records)
        col_order = np.argsort(self.attr_column, kind="stable").astype(np.int32)
        col_sizes = np.bincount(self.attr_column, minlength=self.n_columns)
        self._col_indptr = np.concatenate([[0], np.cumsum(col_sizes)]).astype(np.int64)
        self._col_attrs = col_order
        self._all = Rows(self.n_records)
        if not (
            len(self._dense_slot) == len(self.token_support) == len(self._tok_indptr) - 1
            and self._bitmaps.ndim == 2
            and self._bitmaps.shape[1] == self.n_words
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
        col_of = attr_column_a[indices_a].astype(np.int64)
        col_rows = np.unique(col_of * max(n, 1) + record_of)
        if len(col_rows) != len(indices_a):
            raise ValueError("a record has more than one attribute in the same column")

        # Rows of every attribute, then of every EMPTY value, as one token CSR (rows sorted).
        attr_order = np.argsort(indices_a, kind="stable")
        support_attr = np.bincount(indices_a, minlength=n_attributes).astype(np.int64)
        attr_rows = record_of[attr_order].astype(np.int32)
        col_counts = np.bincount(col_rows // max(n, 1), minlength=n_columns)
        col_bounds = np.concatenate([[0], np.cumsum(col_counts)])
        empty_rows: list[Int32Array] = []
        for c in range(n_columns):
            has = np.zeros(n, dtype=bool)
            has[col_rows[col_bounds[c] : col_bounds[c + 1]] % max(n, 1)] = True
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
                "dense_min_support": np.asarray(threshold, dtype=np.int64),
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
        """The few numpy arrays that fully describe the index (for Arrow/broadcast shipping)."""
        return {
            "indptr": self.indptr,
            "indices": self.indices,
            "attr_column": self.attr_column,
            "support": self.token_support,
            "dense_slot": self._dense_slot,
            "bitmaps": self._bitmaps,
            "tok_indptr": self._tok_indptr,
            "tok_rows": self._tok_rows,
            "dense_min_support": np.asarray(self._dense_min, dtype=np.int64),
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
            The intersection, as ids when small and as a bitmap when dense.
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
            return Rows(len(ids), ids=ids, owned=True)
        assert rows.bits is not None
        if tok.ids is not None:
            ids = tok.ids[_bit_test(rows.bits, tok.ids)]
            return Rows(len(ids), ids=ids, owned=True)
        assert tok.bits is not None
        bits = rows.bits & tok.bits
        n = int(np.bitwise_count(bits).sum()) if size is None else size
        if n >= self._dense_min:
            return Rows(n, bits=bits, owned=True)
        return Rows(n, ids=_bits_to_ids(bits), owned=True)

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

    def prefer_count_all(self, rows: Rows, attrs: Int32Array) -> bool:
        """Whether counting every attribute by gathering beats counting ``attrs`` one by one.

        Gathering reads the CSR of the rows once (cost ~ rows x mean record length) and yields
        the counts of all attributes, so a cache can answer later candidates for free.
        """
        if rows.ids is None:
            # All rows or a bitmap (>= n/32 rows): per-candidate bitmap work is far cheaper.
            return False
        m = rows.size
        slots = self._dense_slot[attrs]
        n_dense = int(np.count_nonzero(slots >= 0))
        sparse_ids = int(self.token_support[attrs[slots < 0]].sum())
        each = _NS_BIT_TEST_2D * m * n_dense + _NS_SORTED_SEARCH * sparse_ids
        return _NS_GATHER * m * self._mean_length <= each

    def count_all(self, rows: Rows) -> IntArray:
        """Count of ``rows`` ∩ rows(a) for every attribute a, ``int64[A]``."""
        if rows.ids is None:
            return self.count_each(rows, np.arange(self.n_attributes, dtype=np.int32))
        starts = self.indptr[rows.ids]
        lengths = self.indptr[rows.ids.astype(np.int64) + 1] - starts
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
            if rows.bits is not None:
                out[dense] = np.bitwise_count(self._bitmaps[slots[dense]] & rows.bits).sum(axis=1)
            else:
                assert rows.ids is not None
                ids = rows.ids
                words = self._bitmaps[slots[dense][:, None], (ids >> 6)[None, :]]
                out[dense] = ((words >> (ids.astype(np.uint64) & _LOW6)) & _ONE).sum(axis=1)
        if not dense.all():
            sparse = attrs[~dense]
            starts = self._tok_indptr[sparse]
            lengths = self._tok_indptr[sparse + 1] - starts
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
            out[~dense] = cum[ends] - cum[ends - lengths]
        return out

    def counts(self, rows: Rows, attrs: npt.ArrayLike) -> IntArray:
        """Count of ``rows`` ∩ rows(a) for each attribute in ``attrs``, by the cheaper method."""
        attrs_a = np.asarray(attrs, dtype=np.int32)
        if self.prefer_count_all(rows, attrs_a):
            return self.count_all(rows)[attrs_a]
        return self.count_each(rows, attrs_a)
