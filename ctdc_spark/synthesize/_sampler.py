"""The k-safe attribute sampler of SDS (docs/spec.md 4.0) and the partial-record cache behind it.

A synthetic record is grown one token at a time. For the current *partial record* P we need the
support of P plus each candidate attribute; :class:`PartialCache` keeps, per sorted P, its size
and the counts computed so far, in an LRU bounded both by entries (``cache_max_size``, as in SDS)
and by bytes. Unlike SDS it does not keep row sets: a dense row set costs ``n / 8`` bytes (125 KB
per entry at a million records) yet is rebuilt from the token bitmaps by a few ANDs, so rows live
only in the record being grown (:class:`PartialRecord`) and are materialised only when a count is
missing. The cache only ever stores exact values, so it changes speed, never results: every count
is the same whether it was cached, recomputed or evicted in between.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import RecordStream
from ctdc_spark.synthesize._row_index import (
    LOCAL_MAX_ROWS,
    Int32Array,
    IntArray,
    LocalCells,
    LocalKind,
    LocalTable,
    RowIndex,
    Rows,
)

DEFAULT_CACHE_MAX_BYTES = 256 * 2**20
"""Default byte budget of one cache: small next to an executor's memory, large enough to hold the
counts of tens of thousands of partial records for a few hundred attributes."""

# A local cells table over this few (rows x columns) also fills every count of its cache entry
# (one small CSR gather), so other records reaching the same partial record hit the cache.
_FILL_ALL_CELLS = 65_536

# Rough Python overhead of one cache entry (object, key tuple, dict slot), charged to the budget.
_ENTRY_OVERHEAD_BYTES = 200


def sample_weighted(weights: IntArray, u: float) -> int:
    """Pick an index with probability proportional to its integer weight (SDS ``sample_weighted``).

    Keys are visited by ascending weight, ties in the order given (callers pass ascending attribute
    ids, so ties break by id); ``r = floor(u * total) + 1`` lies in ``[1, total]`` and the first key
    whose cumulative weight reaches r wins. Zero weights are never picked.

    Args:
        weights: Non-negative integer weights, one per key.
        u: A uniform number in [0, 1) from a :class:`~ctdc_spark._random.RecordStream`.

    Returns:
        The index of the chosen key, or -1 when the total weight is 0.

    Example:
        >>> sample_weighted(np.array([5, 1, 5]), 0.0), sample_weighted(np.array([5, 1, 5]), 0.99)
        (1, 2)
    """
    order = np.argsort(weights, kind="stable")
    cumulative = np.cumsum(weights[order])
    total = int(cumulative[-1]) if len(cumulative) else 0
    if total <= 0:
        return -1
    r = min(int(u * total) + 1, total)
    return int(order[np.searchsorted(cumulative, r, side="left")])


class _Entry:
    """Cached facts about one partial record (its sorted token tuple is the key)."""

    __slots__ = ("counts", "key", "nbytes", "size")

    def __init__(self, key: tuple[int, ...], size: int) -> None:
        self.key = key
        self.size = size
        # Count of P + a for every attribute a; -1 where not computed yet.
        self.counts: npt.NDArray[np.int32] | None = None
        self.nbytes = _ENTRY_OVERHEAD_BYTES + 8 * len(key)


class PartialRecord:
    """A synthetic record being grown: its sorted tokens and how to reach its rows cheaply.

    ``rows`` are the record's rows once materialised; otherwise ``base_rows`` are the rows of the
    record without the ``pending`` tokens, and the rows are built (intersecting only the pending
    tokens) when a count is missing from the cache. Once the rows are few, ``local`` holds them as a
    local table (:meth:`RowIndex.local_table`) that answers the cache's misses from then on.
    """

    __slots__ = ("base_rows", "entry", "local", "pending", "rows", "tokens")

    def __init__(self, entry: _Entry, rows: Rows) -> None:
        self.tokens: list[int] = []
        self.entry = entry
        self.rows: Rows | None = rows
        self.base_rows = rows
        self.pending: list[int] = []
        self.local: LocalTable | None = None

    @property
    def size(self) -> int:
        """Support of the partial record in the sensitive records."""
        return self.local.size if self.local is not None else self.entry.size


class PartialCache:
    """LRU of partial records -> (size, counts), over a :class:`RowIndex`.

    Tokens are attribute ids or EMPTY tokens (``RowIndex.empty_token``); counts are kept for
    attributes only.
    """

    def __init__(
        self,
        index: RowIndex,
        max_entries: int,
        max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        *,
        local_max_rows: int = LOCAL_MAX_ROWS,
        local_kind: LocalKind = "auto",
    ) -> None:
        """Create an empty cache.

        Args:
            index: The row index of the sensitive records.
            max_entries: At most this many partial records are kept (0 disables caching).
            max_bytes: At most this many bytes of counts are kept.
            local_max_rows: A record whose rows are held as at most this many ids continues on a
                local table (0 never does).
            local_kind: Which local table to build (see ``RowIndex.local_table``).
        """
        if max_entries < 0 or max_bytes < 0 or local_max_rows < 0:
            raise ValueError("cache sizes must be >= 0")
        self.index = index
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._local_max_rows = local_max_rows
        self._local_kind: LocalKind = local_kind
        self._lru: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()
        self._bytes = 0
        self._root = _Entry((), index.n_records)
        self._root.counts = index.support.astype(np.int32)

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def nbytes(self) -> int:
        """Bytes charged to the cache's budget."""
        return self._bytes

    def start(self) -> PartialRecord:
        """A new, empty partial record (its rows are all records)."""
        return PartialRecord(self._root, self.index.all_rows())

    def extend(self, partial: PartialRecord, token: int, size: int) -> None:
        """Add ``token`` to ``partial`` in place; ``size`` is the support of the extended record."""
        bisect.insort(partial.tokens, token)
        if partial.local is not None:
            partial.local = partial.local.restrict(token)
        else:
            if partial.rows is not None:
                partial.base_rows = partial.rows
                partial.pending = []
                partial.rows = None
            partial.pending.append(token)
        key = tuple(partial.tokens)
        entry = self._lru.get(key)
        if entry is None:
            entry = _Entry(key, size)
            if len(key) == 1:
                # First extensions are answered by the co-occurrence counts, without any rows.
                entry.counts = self.index.single_token_counts(token)
                if entry.counts is not None and entry.counts.flags.owndata:
                    entry.nbytes += entry.counts.nbytes
            if self._max_entries > 0:
                self._lru[key] = entry
                self._bytes += entry.nbytes
                self._evict()
        else:
            self._lru.move_to_end(key)
        partial.entry = entry

    def rows(self, partial: PartialRecord) -> Rows:
        """Rows of the sensitive records that hold every token of ``partial``."""
        if partial.rows is None:
            rows = partial.base_rows
            support = self.index.token_support
            pending = sorted(partial.pending, key=lambda t: int(support[t]))
            last = len(pending) - 1
            for i, token in enumerate(pending):
                rows = self.index.intersect(rows, token, partial.entry.size if i == last else None)
            partial.rows = rows
        return partial.rows

    def counts(self, partial: PartialRecord, attrs: Int32Array) -> IntArray:
        """Support of ``partial`` plus each attribute of ``attrs`` (cached, exact).

        Missing counts come from the record's local table if it has one (deep records that other
        records rarely share), else from its rows, which may then become a local table.
        """
        entry = partial.entry
        if entry.counts is None:
            entry.counts = np.full(self.index.n_attributes, -1, dtype=np.int32)
            self._charge(entry, entry.counts.nbytes)
        got = entry.counts[attrs]
        missing = got < 0
        if not missing.any():
            return got.astype(np.int64)
        need = attrs[missing]
        if partial.local is None:
            rows = self.rows(partial)
            if rows.ids is None or rows.size > self._local_max_rows:
                if self.index.prefer_count_all(rows, need):
                    entry.counts[:] = self.index.count_all(rows)
                else:
                    entry.counts[need] = self.index.count_each(rows, need)
                return entry.counts[attrs].astype(np.int64)
            partial.local = self.index.local_table(rows, attrs, kind=self._local_kind)
        if (
            isinstance(partial.local, LocalCells)
            and partial.local.size * self.index.n_columns <= _FILL_ALL_CELLS
        ):
            entry.counts[:] = partial.local.count_all()  # cheap from few cells; serves later visits
        else:
            entry.counts[need] = partial.local.counts(need)
        return entry.counts[attrs].astype(np.int64)

    def _charge(self, entry: _Entry, nbytes: int) -> None:
        entry.nbytes += nbytes
        if self._lru.get(entry.key) is entry:
            self._bytes += nbytes
            self._evict()

    def _evict(self) -> None:
        while self._lru and (len(self._lru) > self._max_entries or self._bytes > self._max_bytes):
            _, old = self._lru.popitem(last=False)
            self._bytes -= old.nbytes


class KSafeSampler:
    """SDS ``AttributeRowsSampler``: draws the next attribute of a record so it stays k-safe.

    An attribute a is a candidate for partial record P when it comes from the seed, its column is
    not used in P and it is not in ``not_allowed``; its weight is ``c_D(P + a)`` if that is >= k,
    and the draw follows :func:`sample_weighted` (docs/spec.md 4.0).

    Example:
        >>> index = RowIndex.from_csr([0, 2, 4, 5], [0, 2, 0, 2, 1], 3, [0, 0, 1])
        >>> sampler = KSafeSampler(index, k=2, cache_max_size=100)
        >>> stream = RecordStream(7, 0)
        >>> sampler.sample_next_attr_from_seed([0], np.array([0, 2]), None, stream)
        2
    """

    def __init__(
        self,
        index: RowIndex,
        k: int,
        cache_max_size: int,
        *,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        local_max_rows: int = LOCAL_MAX_ROWS,
        local_kind: LocalKind = "auto",
    ) -> None:
        """Create a sampler over the sensitive records.

        Args:
            index: Row index of the sensitive records.
            k: The privacy resolution; every synthetic record keeps support >= k.
            cache_max_size: Maximum number of cached partial records (0 disables the cache).
            cache_max_bytes: Maximum bytes of cached counts.
            local_max_rows: Row count at or below which a record continues on a local table.
            local_kind: Which local table to build (see ``RowIndex.local_table``); results never
                depend on it.
        """
        if k < 1:
            raise ValueError("k must be >= 1")
        self.index = index
        self.k = k
        self.cache = PartialCache(
            index, cache_max_size, cache_max_bytes, local_max_rows=local_max_rows, local_kind=local_kind
        )

    def start(self) -> PartialRecord:
        """A new, empty partial record."""
        return self.cache.start()

    def draw(
        self, partial: PartialRecord, candidates: Int32Array, u: float
    ) -> tuple[int, int, Int32Array] | None:
        """Draw the next attribute among ``candidates`` (already filtered by column and not-allowed).

        Args:
            partial: The record being grown.
            candidates: Ascending attribute ids.
            u: The uniform number of this draw.

        Returns:
            ``(attribute, support of partial + attribute, candidates whose support is >= k)``, or
            ``None`` when no candidate keeps the record k-safe. Support only shrinks as a record
            grows, so callers may drop the other candidates for the rest of the record.
        """
        counts = self.cache.counts(partial, candidates)
        ok = counts >= self.k
        if not ok.any():
            return None
        kept = candidates[ok]
        weights = counts[ok]
        i = sample_weighted(weights, u)
        return int(kept[i]), int(weights[i]), kept

    def extend(self, partial: PartialRecord, attr: int, size: int) -> None:
        """Add ``attr`` (drawn with support ``size``) to ``partial``."""
        self.cache.extend(partial, attr, size)

    def sample_next_attr_from_seed(
        self,
        record: Sequence[int],
        seed: npt.ArrayLike,
        not_allowed: npt.NDArray[np.bool_] | None,
        stream: RecordStream,
    ) -> int | None:
        """SDS ``sample_next_attr_from_seed``: the next attribute for ``record``, or ``None``.

        This stateless form rebuilds the partial record from the cache; the synthesis loops use
        :meth:`start`, :meth:`draw` and :meth:`extend` instead, which give identical draws.

        Args:
            record: The attributes chosen so far (distinct columns).
            seed: Candidate attribute ids (any order).
            not_allowed: Boolean mask over attributes that may not be drawn, or ``None``.
            stream: The record's random stream; one number is drawn per call.

        Returns:
            The drawn attribute id, or ``None``.
        """
        attr_column = self.index.attr_column
        partial = self.start()
        used = np.zeros(self.index.n_columns, dtype=bool)
        for attr in sorted(int(a) for a in record):
            if used[attr_column[attr]]:
                raise ValueError("a partial record has at most one attribute per column")
            used[attr_column[attr]] = True
            size = int(self.cache.counts(partial, np.array([attr], dtype=np.int32))[0])
            self.extend(partial, attr, size)
        candidates = np.unique(np.asarray(seed, dtype=np.int32))
        keep = ~used[attr_column[candidates]]
        if not_allowed is not None:
            keep &= ~not_allowed[candidates]
        u = stream.random()
        drawn = self.draw(partial, candidates[keep], u)
        return None if drawn is None else drawn[0]
