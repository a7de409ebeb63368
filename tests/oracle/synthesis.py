"""k-safe synthesis as SDS defines it (docs/spec.md 1.2 and 4): support, weighted draws, ``row_seeded``.

Randomness is the caller's: every draw takes a uniform number ``u`` in [0, 1) from a function the
caller passes (one per record), so a test can drive the reference with the library's own record
streams and expect the library's exact output, and a benchmark can drive it with ``random.Random``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from tests.oracle.aggregates import Attribute, rounded_down, sub_combinations

IntArray = npt.NDArray[np.int64]
Uniform = Callable[[], float]
"""Returns the next uniform number in [0, 1) of one record's draws."""

CACHE_ENTRIES = 100_000
"""Partial records whose rows and supports :class:`PartialSupports` keeps (SDS's ``cache_max_size``)."""


def support(records: Iterable[Iterable[Attribute]], combination: Iterable[Attribute]) -> int:
    """``c_D(A)``: how many records hold every attribute of ``combination`` (docs/spec.md 1.2)."""
    wanted = set(combination)
    return sum(1 for r in records if wanted.issubset(r))


def sample_weighted(weights: Sequence[int], u: float) -> int | None:
    """SDS ``sample_weighted`` (docs/spec.md 4.0) with ``r = floor(u * total) + 1``.

    Keys are visited by ascending weight (ties in the given order) and the first whose cumulative
    weight reaches r wins, so a key is drawn with probability weight / total.

    Returns:
        The index of the chosen key, or ``None`` when every weight is 0.

    Example:
        >>> sample_weighted([5, 1, 5], 0.0), sample_weighted([5, 1, 5], 0.99)
        (1, 2)
    """
    total = sum(weights)
    if total <= 0:
        return None
    r = min(int(u * total) + 1, total)
    cumulative = 0
    for i in sorted(range(len(weights)), key=weights.__getitem__):
        cumulative += weights[i]
        if cumulative >= r:
            return i
    raise AssertionError("the cumulative weight reaches the total")


class PartialSupports:
    """``c_D(P + a)`` for every attribute a, for any partial record P (SDS's attribute-rows index).

    The rows of P are the rows of P without its largest attribute that hold that attribute; the
    supports are a count of the attributes in those rows. Both are kept for the most recent
    ``cache_entries`` partial records: a speed-up only (docs/spec.md 4.0's cache), never a change.
    """

    def __init__(
        self,
        indptr: npt.ArrayLike,
        indices: npt.ArrayLike,
        n_attributes: int,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        offsets = np.asarray(indptr, dtype=np.int64)
        ids = np.asarray(indices, dtype=np.int64)
        sizes = np.diff(offsets)
        # One row per record, its ids then -1s: which rows hold an attribute is one test per row.
        self._cells = np.full((len(sizes), int(sizes.max(initial=0))), -1, dtype=np.int64)
        record_of = np.repeat(np.arange(len(sizes)), sizes)
        self._cells[record_of, np.arange(len(ids)) - offsets[record_of]] = ids
        self.n_attributes = n_attributes
        self._state = lru_cache(maxsize=cache_entries)(self._compute)

    @classmethod
    def of_records(
        cls, records: Sequence[Iterable[int]], n_attributes: int, cache_entries: int = CACHE_ENTRIES
    ) -> PartialSupports:
        """The index of records given as collections of attribute ids."""
        rows = [sorted(r) for r in records]
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        return cls(indptr, [a for r in rows for a in r], n_attributes, cache_entries)

    def rows(self, partial: tuple[int, ...]) -> IntArray:
        """The records holding every attribute of ``partial`` (its ids ascending)."""
        return self._state(partial)[0]

    def supports(self, partial: tuple[int, ...]) -> list[int]:
        """The support of ``partial`` plus each attribute (a list: the samplers read a few items each)."""
        return self._state(partial)[1]

    def _compute(self, partial: tuple[int, ...]) -> tuple[IntArray, list[int]]:
        if partial:
            parent = self.rows(partial[:-1])
            rows = parent[(self._cells[parent] == partial[-1]).any(axis=1)]
        else:
            rows = np.arange(len(self._cells))
        counts = np.bincount(self._cells[rows].ravel() + 1, minlength=self.n_attributes + 1)[1:]
        return rows, counts.tolist()


def grow(
    supports: PartialSupports,
    candidates: Iterable[int],
    attr_column: Sequence[int],
    k: int,
    uniform: Uniform,
) -> list[int]:
    """One k-safe record drawn from ``candidates`` (docs/spec.md 4.0 ``sample_next_attr_from_seed``, looped).

    From the empty record, repeatedly draw a candidate of a column the record does not use yet whose
    addition keeps support >= k, weighted by that support, until none is left.

    Returns:
        The record's ascending attribute ids (empty when no candidate has support >= k).
    """
    record: list[int] = []
    pool = sorted(set(candidates))
    while True:
        counts = supports.supports(tuple(record))
        pool = [a for a in pool if counts[a] >= k]
        if not pool:
            return record
        i = sample_weighted([counts[a] for a in pool], uniform())
        assert i is not None, "every weight left is >= k >= 1"
        drawn = pool[i]
        record = sorted([*record, drawn])
        pool = [a for a in pool if attr_column[a] != attr_column[drawn]]


def seeded_records(
    supports: PartialSupports,
    seeds: Sequence[Sequence[int]],
    attr_column: Sequence[int],
    k: int,
    uniforms: Callable[[int], Uniform],
) -> list[list[int]]:
    """``row_seeded`` phase 1: one k-safe random subset of every seed record, in seed order."""
    columns = [int(c) for c in attr_column]
    return [grow(supports, seed, columns, k, uniforms(i)) for i, seed in enumerate(seeds)]


def consolidation_quota(single: IntArray, synthesized: IntArray, k: int) -> IntArray:
    """``available[a]`` of docs/spec.md 4.1 phase 2: the reported count minus the count already synthesized.

    Attributes with support below k, or already at their reported count, get 0.
    """
    return np.where(single >= k, np.maximum(rounded_down(single, k) - synthesized, 0), 0)


def consolidate(
    supports: PartialSupports,
    available: npt.ArrayLike,
    attr_column: Sequence[int],
    k: int,
    uniforms: Callable[[int], Uniform],
) -> list[list[int]]:
    """``row_seeded`` phase 2: new k-safe records until every ``available`` count is placed.

    Each record is grown from the attributes still available when it starts; a drawn attribute's
    count goes down by one, and an attribute whose count reaches 0 is no longer drawn.

    Raises:
        ValueError: When an available attribute has support below k (it could never be placed).
    """
    remaining = np.array(available, dtype=np.int64)
    if np.any((remaining > 0) & (np.array(supports.supports(())) < k)):
        raise ValueError("an available attribute has support below k")
    columns = [int(c) for c in attr_column]
    records: list[list[int]] = []
    while remaining.any():
        record = grow(supports, np.flatnonzero(remaining > 0).tolist(), columns, k, uniforms(len(records)))
        remaining[record] -= 1
        records.append(record)
    return records


def suppress(
    records: Sequence[Sequence[int]], targets: npt.ArrayLike, order: Iterable[int]
) -> list[tuple[int, list[int]]]:
    """``row_seeded`` phase 3: drop attributes above their reported count (docs/spec.md 4.1).

    ``excess[a]`` = the count of a in ``records`` minus ``targets[a]``, where positive. Records are
    visited in ``order`` (SDS: a uniform shuffle) and, within a record, in ascending attribute order;
    an attribute with excess left is dropped and its excess goes down by one.

    Returns:
        ``(position, record)`` of every record left non-empty, in input order.
    """
    held = np.bincount([a for r in records for a in r], minlength=len(np.asarray(targets)))
    excess = np.maximum(held - np.asarray(targets), 0)
    kept = [sorted(r) for r in records]
    for i in order:
        for attr in sorted(records[i]):
            if excess[attr] > 0:
                excess[attr] -= 1
                kept[i].remove(attr)
    return [(i, r) for i, r in enumerate(kept) if r]


def row_seeded(
    seeds: Sequence[Sequence[int]],
    attr_column: Sequence[int],
    k: int,
    rng: random.Random,
    cache_entries: int = CACHE_ENTRIES,
) -> list[list[int]]:
    """SDS ``row_seeded`` (docs/spec.md 4.1): seeded rows, consolidation, then suppression in a random order.

    Args:
        seeds: The sensitive records (attribute ids).
        attr_column: Column of each attribute.
        k: The privacy resolution.
        rng: The source of every draw and of the suppression order.
        cache_entries: Partial records kept by :class:`PartialSupports`.

    Returns:
        The non-empty synthetic records: every attribute held exactly ``floor(count / k) * k``
        times, every record held by at least k sensitive records.
    """
    supports = PartialSupports.of_records(seeds, len(attr_column), cache_entries)
    seeded = seeded_records(supports, seeds, attr_column, k, lambda _: rng.random)
    single = np.array(supports.supports(()))
    synthesized = np.bincount([a for r in seeded for a in r], minlength=len(attr_column))
    quota = consolidation_quota(single, synthesized, k)
    records = seeded + consolidate(supports, quota, attr_column, k, lambda _: rng.random)
    order = list(range(len(records)))
    rng.shuffle(order)
    return [r for _, r in suppress(records, rounded_down(single, k), order)]


def aggregate_seeded_weight(
    aggregates: Mapping[tuple[int, ...], int],
    synthesized: Mapping[tuple[int, ...], int],
    record: Sequence[int],
    attribute: int,
    *,
    reporting_length: int,
    percentile: float,
) -> int:
    """The weight of adding ``attribute`` to ``record`` in ``aggregate_seeded`` (docs/spec.md 4.4); 0 =
    ineligible.

    ``w(s)`` = ``aggregates[s] - synthesized[s]`` when positive, undefined otherwise (or when s is
    not in the aggregates). Up to L attributes the weight is w of the new record; beyond L it is the
    rounded R-8 ``percentile`` of w over every sub-combination of length <= L holding ``attribute``,
    and 0 when any of them is undefined.
    """

    def w(combination: tuple[int, ...]) -> int | None:
        value = aggregates.get(combination, 0) - synthesized.get(combination, 0)
        return value if combination in aggregates and value > 0 else None

    new = tuple(sorted({*record, attribute}))
    if len(new) <= reporting_length:
        return w(new) or 0
    weights = [w(s) for s in sub_combinations(new, reporting_length) if attribute in s]
    if any(x is None for x in weights):
        return 0
    # numpy's "median_unbiased" method is Hyndman and Fan's R-8; rounding is half away from zero.
    return math.floor(
        float(np.percentile(np.array(weights, dtype=float), percentile, method="median_unbiased")) + 0.5
    )
