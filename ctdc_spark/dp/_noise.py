"""Where DP noise comes from: a :class:`NoiseSource` passed explicitly, OpenDP's exact samplers by default.

Every DP draw of a run goes through one :class:`NoiseSource` object that the caller hands down the
call chain (``RunContext.noise_source`` for the pipeline, a ``source`` argument for the building
blocks). Its default everywhere is :data:`PRODUCTION_NOISE`, an :class:`OpenDPNoiseSource`:

* counts get **discrete Gaussian** noise (:meth:`NoiseSource.gaussian_integers`) and the record count
  **discrete Laplace** noise (:meth:`NoiseSource.laplace_integer`), both from OpenDP's exact integer
  samplers with its cryptographic RNG (:mod:`._opendp`), so noisy counts are integers;
* selections (the DP percentile) are OpenDP's **report-noisy-max** (:meth:`NoiseSource.noisy_max`)
  with Gumbel noise (the exponential mechanism) or exponential noise (SDS's variant);
* the secret 64-bit key that picks each record's bounded contributions comes from :mod:`secrets`.

Nothing here reads the environment or a configuration value, and the production source refuses a
seed: a production run cannot be switched to reproducible noise by accident or by an attacker who
controls an environment variable. Reproducible runs exist only where a test constructs its own
source (``tests/conftest.py``) and passes it in. A source must be picklable, because Spark tasks
draw the counts' noise with it (:meth:`NoiseSource.gaussian_integers` receives a stable key per
count, which a test source uses to make its draws independent of the partitioning).

Validation of the arguments lives in the base class, so every source rejects the same inputs.

Example:
    >>> noisy = PRODUCTION_NOISE.gaussian_integers(np.zeros(3, dtype=np.int64), 2.0, stream=1,
    ...     keys=np.zeros((3, 1), dtype=np.int64))
    >>> noisy.dtype, noisy.shape
    (dtype('int64'), (3,))
"""

from __future__ import annotations

import math
import secrets
from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from ctdc_spark.dp import _opendp
from ctdc_spark.dp._opendp import SelectionNoise
from ctdc_spark.errors import ConfigError

__all__ = [
    "PRODUCTION_NOISE",
    "NoiseSource",
    "OpenDPNoiseSource",
    "SelectionNoise",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _check_positive(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(
            f"{name}: must be a finite number > 0, got {value!r}; zero or negative noise is not DP."
        )
    return v


class NoiseSource(ABC):
    """The randomness of one DP run; subclasses implement the ``_draw_*`` methods.

    The public methods check their arguments and then call the subclass, so every source accepts
    and rejects exactly the same inputs.
    """

    def laplace_integer(self, value: int, scale: float) -> int:
        """Return ``value`` plus discrete Laplace noise of ``scale`` (``P(x) ~ exp(-|x| / scale)``).

        Args:
            value: The integer to protect (e.g. the record count).
            scale: ``1 / epsilon`` for a count; finite and > 0.

        Returns:
            The noisy integer.

        Raises:
            ValueError: If ``value`` is not a whole number or ``scale`` is not a finite number > 0.
        """
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError("value: must be a whole number.")  # not echoed: it is a sensitive count
        return int(self._draw_laplace_integer(int(value), _check_positive("scale", scale)))

    def gaussian_integers(
        self, counts: npt.ArrayLike, scale: float, *, stream: int, keys: IntArray
    ) -> IntArray:
        """Return ``counts`` plus independent discrete Gaussian noise of parameter ``scale``.

        Args:
            counts: 1-d whole numbers (bounded counts of one level's candidates).
            scale: sigma of the discrete Gaussian; finite and > 0.
            stream: Separates independent uses (the combination length).
            keys: ``(n, w)`` int64 stable keys, one row per count (the packed candidate); a
                production source ignores them, a test source derives its draws from them.

        Returns:
            int64 noisy counts, shaped like ``counts``.

        Raises:
            ValueError: If ``counts`` are not whole numbers, ``keys`` do not match them or ``scale``
                is not a finite number > 0.
        """
        values = np.asarray(counts)
        if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
            raise ValueError("counts: must be a 1-d array of whole numbers.")
        rows = np.asarray(keys, dtype=np.int64)
        if rows.ndim == 1:
            rows = rows[:, None]
        if len(rows) != len(values):
            raise ValueError(f"keys: need one key row per count, got {len(rows)} for {len(values)} counts.")
        sigma = _check_positive("scale", scale)
        if values.size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(
            self._draw_gaussian_integers(values.astype(np.int64), sigma, stream=int(stream), keys=rows),
            dtype=np.int64,
        )

    def noisy_max(self, scores: npt.ArrayLike, scale: float, *, noise: SelectionNoise) -> int:
        """Return the index of the largest ``score + noise`` (report-noisy-max).

        Args:
            scores: Non-empty 1-d finite scores.
            scale: Noise scale (``2 / epsilon`` for scores of sensitivity 1); finite and > 0.
            noise: ``gumbel`` (the exponential mechanism) or ``exponential`` (SDS's noise).

        Returns:
            The selected index.

        Raises:
            ValueError: If the scores are empty or not finite, ``scale`` is out of range or
                ``noise`` is unknown.
        """
        values = np.asarray(scores, dtype=np.float64)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError("scores: must be a non-empty 1-d array of finite numbers.")
        if noise not in ("gumbel", "exponential"):
            raise ValueError(f"noise: {noise!r} is not supported; use gumbel or exponential.")
        return int(self._draw_noisy_max(values, _check_positive("scale", scale), noise))

    def secret_key(self) -> int:
        """Return a 64-bit key for keyed choices that must be unpredictable (contribution bounding)."""
        return int(self._draw_secret_key()) & 0xFFFFFFFFFFFFFFFF

    @abstractmethod
    def _draw_laplace_integer(self, value: int, scale: float) -> int: ...

    @abstractmethod
    def _draw_gaussian_integers(
        self, counts: IntArray, scale: float, *, stream: int, keys: IntArray
    ) -> IntArray: ...

    @abstractmethod
    def _draw_noisy_max(self, scores: FloatArray, scale: float, noise: SelectionNoise) -> int: ...

    @abstractmethod
    def _draw_secret_key(self) -> int: ...


class OpenDPNoiseSource(NoiseSource):
    """Production source: OpenDP's exact samplers and the OS CSPRNG; cannot be seeded.

    It holds no state (OpenDP measurements are built per process, see :mod:`._opendp`), so it
    pickles into Spark tasks as it is.
    """

    def __init__(self, seed: object = None) -> None:
        """Create the source.

        Args:
            seed: Must be None. It exists only to refuse seeding with a clear message.

        Raises:
            ConfigError: If a seed is given; DP noise must be unpredictable.
        """
        if seed is not None:
            raise ConfigError(
                "DP noise cannot be seeded: it comes from OpenDP's samplers and the operating system's "
                "secure random source so that nobody can predict or replay it. Remove the seed; tests "
                "pass their own NoiseSource explicitly."
            )

    def _draw_laplace_integer(self, value: int, scale: float) -> int:
        return int(_opendp.integer_laplace(scale)(value))

    def _draw_gaussian_integers(
        self, counts: IntArray, scale: float, *, stream: int, keys: IntArray
    ) -> IntArray:
        return np.asarray(_opendp.integer_gaussian(scale)(counts), dtype=np.int64)

    def _draw_noisy_max(self, scores: FloatArray, scale: float, noise: SelectionNoise) -> int:
        return int(_opendp.noisy_max(scale, noise)(scores))

    def _draw_secret_key(self) -> int:
        return secrets.randbits(64)


PRODUCTION_NOISE = OpenDPNoiseSource()
"""The default source of every DP draw."""
