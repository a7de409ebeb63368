"""The one source of differential-privacy noise: operating-system randomness, never a seed.

Why not numpy's generators: a PCG64/Philox stream is a fine *statistical* generator but not a
cryptographic one, and a generator object that can be seeded can be seeded by mistake (from a
config value, or by a retried task). Tumult Core draws DP noise from RDRAND or ``os.urandom`` and
the Census DAS asserts "Only unit tests may override _rng_factory" (RELIABILITY.md sections 0, 3.1
and 3.2). This module does the same:

* Production bits come from :func:`os.urandom` (the kernel CSPRNG, ``getrandom(2)`` on Linux),
  requested in bulk (8 bytes per 64-bit word) and turned into numbers with vectorised numpy:

  - uniform on the *open* interval (0, 1): the top 52 bits ``k`` become ``(k + 0.5) / 2**52``. Every
    such value is an exact double in ``[2**-53, 1 - 2**-53]`` (with 53 bits, ``1 - 2**-54`` would
    round to 1.0), so 0 and 1 are never drawn and the logarithms below are always finite;
  - exponential(rate): inverse CDF, ``-log(U) / rate``;
  - Laplace(scale): inverse CDF, ``-scale * sign(U - 1/2) * log1p(-2 |U - 1/2|)``;
  - Gaussian(0, sigma): Box-Muller, both outputs of each pair used.

* :class:`SystemNoiseSource` takes no seed and refuses one if given. There is no configuration key
  that reaches this module.
* Tests may swap in a seeded source with :func:`fixed_noise_for_tests`. Every draw checks that a
  non-production source is only used while testing (``PYTEST_CURRENT_TEST`` is set by pytest while
  a test runs, or ``CTDC_TESTING=1``), so a seeded source that leaks into a production code path
  fails loudly instead of producing reproducible, attackable noise.

Known limitations (documented, shared with SDS, which samples with ``rand``/``statrs``):

* The samplers use floating-point arithmetic, so they are not hardened against the floating-point
  attacks of Mironov (CCS 2012) on textbook Laplace sampling; the outputs are later rounded to
  integers, which removes most of the low-order-bit signal, but this is not a proof.
* With 52-bit uniforms the largest possible draw is about 36.7 / rate (exponential), 36.0 * scale
  (Laplace) and 8.57 * sigma (Gaussian). The probability mass cut off is about 1e-16 per draw,
  negligible next to any delta this pipeline uses.
* The test override is process-local: it does not reach Spark executors, which always use the
  production source. Spark code that must be reproducible under the override asks the driver for
  :func:`active_test_seed` and, only when it is not None, draws inside tasks with
  :func:`keyed_test_gaussian`: noise that is a pure function of ``(seed, stream, key)``, so it is
  the same for any partitioning. That function checks the test context again in the executor.

Example:
    >>> x = gaussian(3, 2.0)
    >>> x.shape
    (3,)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import overload

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import mix64
from ctdc_spark.errors import ConfigError, CtdcInternalError

__all__ = [
    "NoiseSource",
    "SeededTestNoiseSource",
    "SystemNoiseSource",
    "active_test_seed",
    "current_source",
    "exponential",
    "fixed_noise_for_tests",
    "gaussian",
    "in_test_context",
    "keyed_test_gaussian",
    "laplace",
    "uniform_open",
]

_TWO_POW_MINUS_52 = 2.0**-52
_TWO_PI = 2.0 * np.pi
_TESTING_ENV = "CTDC_TESTING"
_PYTEST_ENV = "PYTEST_CURRENT_TEST"


def in_test_context() -> bool:
    """Return whether non-production noise sources are allowed right now.

    Returns:
        True while pytest runs a test (``PYTEST_CURRENT_TEST`` is set) or when the environment
        variable ``CTDC_TESTING`` is ``"1"``.
    """
    return _PYTEST_ENV in os.environ or os.environ.get(_TESTING_ENV) == "1"


class NoiseSource:
    """Base class of the sources of raw random 64-bit words; subclasses implement :meth:`words`."""

    def words(self, n: int) -> npt.NDArray[np.uint64]:
        """Return ``n`` independent uniformly random 64-bit words.

        Args:
            n: Number of words, >= 0.

        Returns:
            uint64 array of shape ``(n,)``.
        """
        raise NotImplementedError


class SystemNoiseSource(NoiseSource):
    """Production source: 64-bit words straight from :func:`os.urandom`; cannot be seeded."""

    def __init__(self, seed: object = None) -> None:
        """Create the source.

        Args:
            seed: Must be None. It exists only to refuse seeding with a clear message.

        Raises:
            ConfigError: If a seed is given; DP noise must be unpredictable, so use
                :func:`fixed_noise_for_tests` in unit tests instead.
        """
        if seed is not None:
            raise ConfigError(
                "DP noise cannot be seeded: it is drawn from the operating system's secure random "
                "source so that nobody can predict or replay it. Remove the seed; unit tests use "
                "ctdc_spark.dp._noise.fixed_noise_for_tests(seed)."
            )

    def words(self, n: int) -> npt.NDArray[np.uint64]:
        """Return ``n`` words from the kernel CSPRNG (one bulk ``os.urandom`` call)."""
        _check_count(n)
        return np.frombuffer(os.urandom(8 * n), dtype=np.uint64).copy()


class SeededTestNoiseSource(NoiseSource):
    """Test-only source: reproducible words from numpy's PCG64; refuses to exist outside tests."""

    def __init__(self, seed: int) -> None:
        """Create a seeded source.

        Args:
            seed: Any non-negative integer.

        Raises:
            CtdcInternalError: If called outside a test context (see :func:`in_test_context`).
        """
        _require_test_context("create a seeded noise source")
        self.seed = int(seed)
        self._generator = np.random.Generator(np.random.PCG64(seed))

    def words(self, n: int) -> npt.NDArray[np.uint64]:
        """Return the next ``n`` words of the seeded stream."""
        _check_count(n)
        return self._generator.bit_generator.random_raw(n).astype(np.uint64, copy=False)


_PRODUCTION = SystemNoiseSource()
_active: NoiseSource = _PRODUCTION
_lock = threading.Lock()


def _require_test_context(what: str) -> None:
    if not in_test_context():
        raise CtdcInternalError(
            f"refusing to {what}: only unit tests may replace the DP noise source "
            f"(set by pytest via {_PYTEST_ENV} or by {_TESTING_ENV}=1). Production noise always "
            "comes from os.urandom."
        )


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n: the number of draws must be a whole number >= 0, got {n!r}.")


def _check_positive(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(
            f"{name}: must be a finite number > 0, got {value!r}; zero or negative noise is not DP."
        )
    return v


def _resolve(source: NoiseSource | None) -> NoiseSource:
    chosen = _active if source is None else source
    if type(chosen) is not SystemNoiseSource:
        _require_test_context(f"draw DP noise from {type(chosen).__name__}")
    return chosen


def current_source() -> NoiseSource:
    """Return the source used when no ``source`` argument is given (production unless overridden).

    Returns:
        The active :class:`NoiseSource`.
    """
    return _active


def active_test_seed() -> int | None:
    """Return the seed of the :func:`fixed_noise_for_tests` override, or None in production.

    Spark stages call this on the driver and pass the result to their tasks, which then draw
    :func:`keyed_test_gaussian` instead of production noise.

    Returns:
        The seed while a seeded test source is active (only possible in a test context), else None.
    """
    source = _active
    if isinstance(source, SeededTestNoiseSource):
        _require_test_context("use the seeded test noise source")
        return source.seed
    return None


@contextmanager
def fixed_noise_for_tests(seed: int) -> Iterator[NoiseSource]:
    """Make every default draw in this process come from a seeded source, for unit tests only.

    Args:
        seed: Seed of the test stream.

    Yields:
        The seeded source (also the active default until the block ends).

    Raises:
        CtdcInternalError: Outside a test context.

    Example:
        Inside a pytest test function::

            with fixed_noise_for_tests(7):
                a = gaussian(2, 1.0)
            with fixed_noise_for_tests(7):
                b = gaussian(2, 1.0)
            assert (a == b).all()
    """
    global _active  # noqa: PLW0603 - the override is deliberately process-wide and test-only
    _require_test_context("install fixed_noise_for_tests")
    source = SeededTestNoiseSource(seed)
    with _lock:
        previous = _active
        _active = source
    try:
        yield source
    finally:
        with _lock:
            _active = previous


def uniform_open(n: int, *, source: NoiseSource | None = None) -> npt.NDArray[np.float64]:
    """Draw uniform numbers on the open interval (0, 1) with 52 random bits each.

    Args:
        n: Number of draws, >= 0.
        source: Test-only override; None uses the active source.

    Returns:
        float64 array of shape ``(n,)``, every value strictly between 0 and 1.

    Raises:
        ValueError: If ``n`` is negative or not a whole number.
    """
    _check_count(n)
    bits = _resolve(source).words(int(n))
    return ((bits >> np.uint64(12)).astype(np.float64) + 0.5) * _TWO_POW_MINUS_52


def gaussian(n: int, sigma: float, *, source: NoiseSource | None = None) -> npt.NDArray[np.float64]:
    """Draw Gaussian noise N(0, sigma^2) by the Box-Muller transform.

    Args:
        n: Number of draws, >= 0.
        sigma: Standard deviation, finite and > 0.
        source: Test-only override; None uses the active source.

    Returns:
        float64 array of shape ``(n,)``.

    Raises:
        ValueError: If ``n`` is negative or ``sigma`` is not a finite number > 0.
    """
    _check_count(n)
    s = _check_positive("sigma", sigma)
    pairs = (int(n) + 1) // 2
    u = uniform_open(2 * pairs, source=source)
    radius = np.sqrt(-2.0 * np.log(u[:pairs]))
    angle = _TWO_PI * u[pairs:]
    z = np.concatenate((radius * np.cos(angle), radius * np.sin(angle)))
    return s * z[: int(n)]


@overload
def laplace(scale: float, n: None = None, *, source: NoiseSource | None = None) -> float: ...
@overload
def laplace(scale: float, n: int, *, source: NoiseSource | None = None) -> npt.NDArray[np.float64]: ...
def laplace(
    scale: float, n: int | None = None, *, source: NoiseSource | None = None
) -> float | npt.NDArray[np.float64]:
    """Draw Laplace(0, scale) noise by the inverse CDF.

    Args:
        scale: The Laplace scale b (e.g. ``1 / epsilon`` for a count), finite and > 0.
        n: None for one float, or the number of draws for an array.
        source: Test-only override; None uses the active source.

    Returns:
        A float, or a float64 array of shape ``(n,)``.

    Raises:
        ValueError: If ``scale`` is not a finite number > 0 or ``n`` is negative.
    """
    b = _check_positive("scale", scale)
    count = 1 if n is None else n
    centred = uniform_open(count, source=source) - 0.5
    x = -b * np.sign(centred) * np.log1p(-2.0 * np.abs(centred))
    return float(x[0]) if n is None else x


def exponential(rate: float, n: int, *, source: NoiseSource | None = None) -> npt.NDArray[np.float64]:
    """Draw Exponential noise with the given rate (mean ``1 / rate``) by the inverse CDF.

    Args:
        rate: Rate lambda, finite and > 0 (report-noisy-max uses ``epsilon / 2``).
        n: Number of draws, >= 0.
        source: Test-only override; None uses the active source.

    Returns:
        float64 array of shape ``(n,)``, every value > 0.

    Raises:
        ValueError: If ``rate`` is not a finite number > 0 or ``n`` is negative.
    """
    r = _check_positive("rate", rate)
    return -np.log(uniform_open(n, source=source)) / r


def keyed_test_gaussian(
    seed: int, stream: int, keys: npt.NDArray[np.int64], sigma: float
) -> npt.NDArray[np.float64]:
    """Test-only N(0, sigma^2) noise that is a pure function of ``(seed, stream, key row)``.

    Every row of ``keys`` (e.g. a packed combination) gets its own two uniforms from a
    counter-based hash, turned into one normal draw by Box-Muller. The result therefore does not
    depend on batch boundaries or partitioning, which is what tests of Spark stages compare.

    Args:
        seed: The :func:`active_test_seed`.
        stream: Separates independent uses (e.g. the combination length).
        keys: ``(n, w)`` int64 key words, one row per draw.
        sigma: Standard deviation, finite and > 0.

    Returns:
        float64 array of shape ``(n,)``.

    Raises:
        CtdcInternalError: Outside a test context (this runs in executors too, so it checks there).
        ValueError: If ``sigma`` is not a finite number > 0.
    """
    _require_test_context("draw keyed test noise")
    s = _check_positive("sigma", sigma)
    rows = np.asarray(keys, dtype=np.int64)
    if rows.ndim == 1:
        rows = rows[:, None]
    with np.errstate(over="ignore"):
        h = np.full(len(rows), np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ np.uint64(stream), dtype=np.uint64)
        h = mix64(h)
        for column in rows.T:
            h = mix64(h ^ column.astype(np.uint64))
        bits = np.stack([mix64(h + np.uint64(1)), mix64(h + np.uint64(2))])
    u = ((bits >> np.uint64(12)).astype(np.float64) + 0.5) * _TWO_POW_MINUS_52
    normal: npt.NDArray[np.float64] = np.sqrt(-2.0 * np.log(u[0])) * np.cos(_TWO_PI * u[1])
    return s * normal
