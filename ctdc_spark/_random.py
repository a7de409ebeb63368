"""Deterministic, partition-independent randomness for sampling.

Every random choice in synthesis derives from ``(seed, stage, stable key, draw index)`` through a
counter-based hash, never from partition ids, ``F.rand(seed)`` (seeded per partition by Spark) or
global RNG state. A task recomputed after an executor loss therefore redraws exactly the same
numbers, and the output does not depend on how records are partitioned.

The hash is SplitMix64's finaliser, a bijective 64-bit mixer with full avalanche; it is not a
cryptographic generator, which is fine because sampling here is post-processing of data that is
already protected by the k-support rule (DP noise uses :mod:`secrets` instead, see ``dp``).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_INV_2_53 = 1.0 / (1 << 53)


def stage_key(seed: int, stage: str) -> int:
    """Return the 64-bit key of one sampling stage of one run.

    Args:
        seed: The run's synthesis seed (an explicit config seed or the secret per-run seed).
        stage: A fixed stage name, e.g. ``"row_seeded"`` or ``"suppress"``.

    Returns:
        An unsigned 64-bit integer; different stages get independent streams.
    """
    digest = hashlib.blake2b(f"{seed}\x1f{stage}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _mix_scalar(x: int) -> int:
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * _MIX1) & _MASK64
    x = ((x ^ (x >> 27)) * _MIX2) & _MASK64
    return x ^ (x >> 31)


def mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Vectorised SplitMix64 finaliser (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
        return z ^ (z >> np.uint64(31))


def uniforms(key: int, ids: npt.ArrayLike, draw: int = 0) -> npt.NDArray[np.float64]:
    """Return one uniform [0, 1) number per id for draw number ``draw`` of stream ``key``.

    Args:
        key: A :func:`stage_key`.
        ids: Stable integer keys (record ids, shard ids, ...).
        draw: Which draw of each id's stream.

    Returns:
        float64 array shaped like ``ids``.
    """
    ids_u = np.asarray(ids).astype(np.uint64, copy=False)
    with np.errstate(over="ignore"):
        h = mix64(mix64(ids_u ^ np.uint64(key)) + np.uint64(draw & _MASK64))
    return (h >> np.uint64(11)).astype(np.float64) * _INV_2_53


class RecordStream:
    """Sequential uniform draws for one stable key; cheap to create (no generator object).

    Example:
        >>> s = RecordStream(stage_key(1, "demo"), 7)
        >>> a = s.random(); b = s.random()
        >>> RecordStream(stage_key(1, "demo"), 7).random() == a
        True
    """

    __slots__ = ("_base", "_counter")

    def __init__(self, key: int, record_id: int) -> None:
        self._base = _mix_scalar((int(record_id) & _MASK64) ^ key)
        self._counter = 0

    def random(self) -> float:
        """Return the next uniform number in [0, 1)."""
        h = _mix_scalar((self._base + self._counter) & _MASK64)
        self._counter += 1
        return (h >> 11) * _INV_2_53

    def below(self, n: int) -> int:
        """Return a uniform integer in ``[0, n)`` (n >= 1)."""
        return min(int(self.random() * n), n - 1)

    def shuffled(self, n: int) -> list[int]:
        """Return a uniformly shuffled ``list(range(n))`` (Fisher-Yates on this stream)."""
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            order[i], order[j] = order[j], order[i]
        return order
