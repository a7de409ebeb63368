"""The OpenDP measurements behind every DP draw and every privacy figure: the one module importing opendp.

OpenDP (https://opendp.org, Rust core) samples exactly: its discrete Gaussian and discrete Laplace
samplers work on integers with arbitrary-precision arithmetic and draw their bits from a
cryptographic RNG, so they are not exposed to the floating-point attacks of Mironov (CCS 2012) on
textbook samplers, and they cannot be seeded. The counts this pipeline noises are integers, so the
discrete mechanisms fit them exactly.

**Features.** OpenDP gates components whose proofs are still under review behind the ``contrib``
feature; every constructor used here (``make_gaussian``, ``make_laplace``, ``make_noisy_max``,
``make_pureDP_to_zCDP``, ``make_zCDP_to_approxDP``, ``make_fix_delta``) is one of them, so this
module enables ``contrib`` and nothing else: not ``floating-point`` (float samplers with the
Mironov issue), not ``honest-but-curious`` (user-defined measurements whose privacy map OpenDP
cannot check) and not ``idealized-numerics``. :data:`ENABLED_FEATURES` is the allow-list a test
checks against OpenDP's global feature set.

**Measurements** (each built once per process and scale; building one costs about 0.2 ms):

* :func:`integer_gaussian` - ``make_gaussian`` on ``Vec<i64>`` under the L2 distance: the discrete
  Gaussian mechanism, rho-zCDP (Canonne, Kamath & Steinke 2020);
* :func:`integer_laplace` - ``make_laplace`` on one ``i64`` under the absolute distance: the
  discrete Laplace (two-sided geometric) mechanism, pure DP;
* :func:`noisy_max` - ``make_noisy_max`` on ``Vec<f64>`` scores under the L-infinity distance
  (not monotonic): with a zCDP output measure it adds Gumbel noise (the exponential mechanism,
  ``epsilon^2 / 8``-zCDP for ``epsilon = 2 d_in / scale``), with a pure-DP measure exponential
  noise (SDS's report-noisy-max, ``epsilon``-DP).

Privacy figures are the measurements' own privacy maps (:func:`gaussian_rho`, :func:`laplace_epsilon`,
:func:`noisy_max_rho`) and OpenDP's zCDP to (epsilon, delta) conversion (:func:`zcdp_epsilon`).

Measurements hold native pointers and cannot be pickled: Spark tasks build their own (the caches
are per process).
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
from typing import Any, Literal, cast

import opendp.combinators as odp_combinators
import opendp.domains as odp_domains
import opendp.measurements as odp_measurements
import opendp.measures as odp_measures
import opendp.metrics as odp_metrics
from opendp.mod import Measurement, enable_features

__all__ = [
    "ENABLED_FEATURES",
    "OPENDP_VERSION",
    "SelectionNoise",
    "gaussian_rho",
    "integer_gaussian",
    "integer_laplace",
    "laplace_epsilon",
    "noisy_max",
    "noisy_max_epsilon",
    "noisy_max_rho",
    "zcdp_epsilon",
]

OPENDP_VERSION = importlib.metadata.version("opendp")
"""The installed OpenDP release, stated in the metadata next to the figures it computed."""

ENABLED_FEATURES = frozenset({"contrib"})
"""The only OpenDP features this project enables (see the module docstring)."""

enable_features(*ENABLED_FEATURES)

SelectionNoise = Literal["gumbel", "exponential"]
"""Noise of a report-noisy-max: ``gumbel`` (exponential mechanism) or ``exponential`` (SDS's)."""

_CACHE_SIZE = 256


@functools.lru_cache(maxsize=_CACHE_SIZE)
def integer_gaussian(scale: float) -> Measurement:
    """The discrete Gaussian mechanism with standard-deviation parameter ``scale`` on ``Vec<i64>``.

    Args:
        scale: The noise scale sigma, > 0 (OpenDP rejects others).

    Returns:
        A measurement from a list/array of int64 counts to a list of noisy ints.
    """
    return odp_measurements.make_gaussian(
        odp_domains.vector_domain(odp_domains.atom_domain(T="i64")), odp_metrics.l2_distance(T="f64"), scale
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def integer_laplace(scale: float) -> Measurement:
    """The discrete Laplace mechanism with scale ``scale`` on one ``i64`` (``P(x) ~ exp(-|x| / scale)``).

    Args:
        scale: The noise scale b, > 0 (``1 / epsilon`` for a count).

    Returns:
        A measurement from an int to a noisy int.
    """
    return odp_measurements.make_laplace(
        odp_domains.atom_domain(T="i64"), odp_metrics.absolute_distance(T="i64"), scale
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def noisy_max(scale: float, noise: SelectionNoise) -> Measurement:
    """Report-noisy-max over float scores: index of the largest ``score + noise``.

    Args:
        scale: Noise scale, > 0 (``2 / epsilon`` for scores of sensitivity 1).
        noise: ``gumbel`` (zCDP output measure) or ``exponential`` (pure-DP output measure).

    Returns:
        A measurement from a non-empty list/array of finite floats to an index.
    """
    measure = (
        odp_measures.zero_concentrated_divergence() if noise == "gumbel" else odp_measures.max_divergence()
    )
    return odp_measurements.make_noisy_max(
        odp_domains.vector_domain(odp_domains.atom_domain(T="f64", nan=False)),
        odp_metrics.linf_distance(T="f64"),
        measure,
        scale,
    )


def _privacy_map(measurement: Measurement, d_in: float) -> Any:
    return measurement.map(d_in)  # type: ignore[no-untyped-call]  # opendp's Measurement.map is untyped


def gaussian_rho(scale: float, l2_sensitivity: float) -> float:
    """rho of the discrete Gaussian mechanism of ``scale`` for counts of L2 sensitivity ``l2_sensitivity``."""
    return float(_privacy_map(integer_gaussian(scale), float(l2_sensitivity)))


def laplace_epsilon(scale: float) -> float:
    """epsilon of the discrete Laplace mechanism of ``scale`` on a count (sensitivity 1)."""
    return float(_privacy_map(integer_laplace(scale), 1))


def noisy_max_rho(scale: float, noise: SelectionNoise) -> float:
    """rho of a report-noisy-max of ``scale`` for scores of sensitivity 1 (pure DP converted to zCDP)."""
    measurement = noisy_max(scale, noise)
    if noise == "exponential":
        measurement = odp_combinators.make_pureDP_to_zCDP(measurement)
    return float(_privacy_map(measurement, 1.0))


def noisy_max_epsilon(scale: float) -> float:
    """epsilon of the exponential-noise report-noisy-max of ``scale`` for scores of sensitivity 1."""
    return float(_privacy_map(noisy_max(scale, "exponential"), 1.0))


def zcdp_epsilon(rho: float, delta: float) -> float:
    """The epsilon OpenDP states for a rho-zCDP release at ``delta`` (``make_zCDP_to_approxDP``).

    OpenDP converts a measurement, and its conversion depends on nothing but the measurement's
    rho; the measurement converted here is a discrete Gaussian whose privacy map at distance 1 is
    at least ``rho`` (the smallest such scale, to the last bit).

    Args:
        rho: zCDP parameter, > 0.
        delta: Target delta in (0, 1).

    Returns:
        epsilon such that the release is (epsilon, delta)-DP.
    """
    scale = 1.0 / math.sqrt(2.0 * rho)
    while True:
        stand_in = odp_measurements.make_gaussian(
            odp_domains.atom_domain(T="i64"), odp_metrics.absolute_distance(T="f64"), scale
        )
        if float(_privacy_map(stand_in, 1.0)) >= rho:
            break
        scale = math.nextafter(scale, 0.0)  # a rounded-down scale may map one ulp below rho
    fixed = odp_combinators.make_fix_delta(odp_combinators.make_zCDP_to_approxDP(stand_in), delta)
    epsilon, _ = cast("tuple[float, float]", _privacy_map(fixed, 1.0))
    return float(epsilon)
