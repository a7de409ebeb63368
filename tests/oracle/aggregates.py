"""Exact counts of attribute combinations and their k-anonymous protection (docs/spec.md 3.1-3.2).

A combination is a tuple of attributes in canonical (ascending) order. Its count ``c_D(C)`` is the
number of records holding every attribute of C; only combinations that some record holds are
counted, each record contributing all of its ``l``-subsets for ``l = 1..L``.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar, overload

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
Attribute = TypeVar("Attribute", int, str)
Key = TypeVar("Key", bound=Hashable)

_GATHER_ROWS = 4_000_000
"""Combination rows gathered at once by :func:`count_encoded` (bounds its memory to ~100 MB)."""


def sub_combinations(record: Iterable[Attribute], max_length: int) -> list[tuple[Attribute, ...]]:
    """Every combination of 1..``max_length`` attributes of one record, in canonical order.

    Example:
        >>> sub_combinations([3, 1, 2], 2)
        [(1,), (2,), (3,), (1, 2), (1, 3), (2, 3)]
    """
    ordered = sorted(set(record))
    return [c for length in range(1, max_length + 1) for c in itertools.combinations(ordered, length)]


def combination_string(attributes: Iterable[str]) -> str:
    """SDS's text of a combination: its attributes in canonical order joined by ``;`` (docs/spec.md 2.4).

    Example:
        >>> combination_string(["B:b1", "A:a2"])
        'A:a2;B:b1'
    """
    return ";".join(sorted(attributes))


def count_encoded(
    indptr: npt.ArrayLike, indices: npt.ArrayLike, max_length: int
) -> tuple[IntArray, IntArray]:
    """Count every combination of length <= ``max_length`` of records given as attribute ids (CSR).

    Records with the same number m of attributes are gathered as one ``(records, m)`` matrix; the
    ``l``-subsets of all of them are that matrix read at every ``l``-subset of the positions
    ``0..m-1``. A combination of l ids is then one int64, the ids as digits in base A (A = the
    number of attributes), so counting distinct combinations is counting distinct integers.

    Args:
        indptr: ``int64[n + 1]`` offsets of each record's ids in ``indices``.
        indices: Attribute ids (``0..A-1``), each record's distinct.
        max_length: L, the longest combination counted.

    Returns:
        ``(combos, counts)``: an ``int64[c, max_length]`` of the distinct combinations (ascending ids,
        ``-1`` in the unused slots; ordered by length, then ids) and their ``int64[c]`` counts.

    Raises:
        ValueError: When A**max_length does not fit an int64.
    """
    offsets = np.asarray(indptr, dtype=np.int64)
    ids = np.asarray(indices, dtype=np.int64)
    sizes = np.diff(offsets)
    base = int(ids.max()) + 1 if len(ids) else 1
    if base ** min(max_length, int(sizes.max(initial=0))) >= 2**63:
        raise ValueError("too many attributes to number a combination with one int64; use a shorter L")
    found: dict[int, list[tuple[IntArray, IntArray]]] = {}
    for m in np.unique(sizes[sizes > 0]).tolist():
        starts = offsets[:-1][sizes == m]
        for length in range(1, min(m, max_length) + 1):
            positions = np.array(list(itertools.combinations(range(m), length)), dtype=np.int64)
            step = max(1, _GATHER_ROWS // len(positions))
            for lo in range(0, len(starts), step):
                cells = np.sort(ids[starts[lo : lo + step, None] + np.arange(m)], axis=1)
                combos = cells[:, positions].reshape(-1, length)
                numbers = combos @ base ** np.arange(length - 1, -1, -1, dtype=np.int64)
                found.setdefault(length, []).append(np.unique(numbers, return_counts=True))
    all_combos = [np.zeros((0, max_length), dtype=np.int64)]
    all_counts = [np.zeros(0, dtype=np.int64)]
    for length, parts in sorted(found.items()):
        numbers, where = np.unique(np.concatenate([n for n, _ in parts]), return_inverse=True)
        counts = np.bincount(where.ravel(), weights=np.concatenate([c for _, c in parts]))
        combos = np.full((len(numbers), max_length), -1, dtype=np.int64)
        combos[:, :length] = numbers[:, None] // base ** np.arange(length - 1, -1, -1, dtype=np.int64) % base
        all_combos.append(combos)
        all_counts.append(counts.astype(np.int64))
    return np.concatenate(all_combos), np.concatenate(all_counts)


def count_combinations(
    records: Iterable[Iterable[Attribute]], max_length: int
) -> dict[tuple[Attribute, ...], int]:
    """``c_D(C)`` for every combination C of 1..``max_length`` attributes that some record holds.

    Example:
        >>> count_combinations([["a", "b"], ["b"]], 2)
        {('a',): 1, ('b',): 2, ('a', 'b'): 1}
    """
    rows = [sorted(set(r)) for r in records]
    attributes = sorted({a for r in rows for a in r})
    rank = {a: i for i, a in enumerate(attributes)}
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    indices = np.array([rank[a] for r in rows for a in r], dtype=np.int64)
    combos, counts = count_encoded(indptr, indices, max_length)
    return {
        tuple(attributes[i] for i in combo if i >= 0): n
        for combo, n in zip(combos.tolist(), counts.tolist(), strict=True)
    }


@overload
def rounded_down(count: int, k: int) -> int: ...
@overload
def rounded_down(count: IntArray, k: int) -> IntArray: ...
def rounded_down(count: int | IntArray, k: int) -> int | IntArray:
    """The reported value of a count: ``floor(count / k) * k`` (docs/spec.md 3.2; 0 means not reported)."""
    return count // k * k


def protect(counts: Mapping[Key, int], k: int) -> dict[Key, int]:
    """k-anonymous reportable aggregates: counts rounded down to a multiple of k, zeros dropped.

    ``counts`` may be keyed by combinations or by anything else (their ``;``-joined strings).
    """
    return {c: rounded_down(n, k) for c, n in counts.items() if n >= k}


def by_length(combinations: Iterable[Sequence[object]]) -> dict[int, int]:
    """How many combinations there are of each length."""
    out: dict[int, int] = {}
    for c in combinations:
        out[len(c)] = out.get(len(c), 0) + 1
    return dict(sorted(out.items()))
