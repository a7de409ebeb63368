"""The deterministic parts of SDS's DP aggregation (docs/spec.md 3.4 Steps B and C), written literally."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

from tests.oracle.aggregates import sub_combinations

Combination = tuple[int, ...]


def dp_candidates(
    previous: Iterable[Combination], attr_column: Sequence[int], survived: Iterable[Combination]
) -> set[Combination]:
    """V_k of Step B.1 for k >= 2: every surviving (k-1)-tuple extended by an attribute of the survivors.

    The attribute's column must be new to the tuple, and every sub-combination of lengths 2..k-1 of
    the result must be in ``survived`` (the survivors of the earlier levels).
    """
    base = set(previous)
    kept = set(survived)
    attributes = {a for t in base for a in t}
    out = set()
    for t in base:
        for a in attributes:
            if any(attr_column[b] == attr_column[a] for b in t):
                continue
            c = tuple(sorted((*t, a)))
            if all(s in kept for s in sub_combinations(c, len(c) - 1) if len(s) >= 2):
                out.add(c)
    return out


def dp_valid_tuples(
    record: Iterable[int], length: int, survivors: set[Combination] | None
) -> list[Combination]:
    """W_u of Step B.2: the ``length``-subsets of a record that are candidates of their level.

    A record's subset is a candidate exactly when each of its (length-1)-subsets survived the
    previous level (``survivors``; ``None`` at level 1, where every attribute is a candidate).
    """
    subsets = list(itertools.combinations(sorted(record), length))
    if survivors is None:
        return subsets
    return [c for c in subsets if all(p in survivors for p in itertools.combinations(c, length - 1))]


def dp_post_process(counts: Mapping[Combination, int]) -> dict[Combination, int]:
    """Step C.2-C.3 on rounded counts: missing parents added, then counts normalised.

    SDS ``add_missing_parent_combinations``: a missing sub-combination of length >= 2 takes the
    largest count of the combinations holding it. Then ``normalize_noisy_combinations``, one pass over
    that map: a combination with a sub-combination of smaller count takes the smallest such count.
    """
    missing: dict[Combination, int] = {}
    for combo, n in counts.items():
        for sub in sub_combinations(combo, len(combo) - 1):
            if len(sub) >= 2 and sub not in counts:
                missing[sub] = max(missing.get(sub, 0), n)
    merged = {**counts, **missing}
    lowered = {}
    for combo, n in merged.items():
        smaller = [
            merged[s] for s in sub_combinations(combo, len(combo) - 1) if s in merged and merged[s] < n
        ]
        if smaller:
            lowered[combo] = min(smaller)
    return {**merged, **lowered}
