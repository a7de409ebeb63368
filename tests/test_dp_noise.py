"""The DP noise source: secure by default, seedable only inside tests, right distributions.

Pure Python, no Spark. Statistical tests use a fixed seed (deterministic outcome) and a KS test
(scipy if installed, else a stdlib Kolmogorov approximation) plus moment checks; each has a
negative control with half the noise that must be detected, in the spirit of Tumult Core's
``NOISE_SCALE_FUDGE_FACTOR`` tests (RELIABILITY.md 3.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from ctdc_spark.dp import _noise
from ctdc_spark.dp._noise import (
    NoiseSource,
    SeededTestNoiseSource,
    SystemNoiseSource,
    active_test_seed,
    current_source,
    exponential,
    fixed_noise_for_tests,
    gaussian,
    in_test_context,
    keyed_test_gaussian,
    laplace,
    uniform_open,
)
from ctdc_spark.errors import ConfigError, CtdcInternalError

try:  # scipy is a test-only extra; the library never imports it.
    from scipy import stats as _scipy_stats
except ImportError:  # pragma: no cover - depends on the environment
    _scipy_stats = None

N_SAMPLES = 200_000
P_THRESHOLD = 1e-3  # a correct sampler with a fixed seed passes; flakiness is impossible with a seed
P_REJECT = 1e-9  # half the noise must be rejected far beyond chance


def _normal_cdf(sigma: float) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return lambda x: 0.5 * (1.0 + erf(x / (sigma * math.sqrt(2.0))))


def _laplace_cdf(scale: float) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    return lambda x: np.where(x < 0, 0.5 * np.exp(x / scale), 1.0 - 0.5 * np.exp(-x / scale))


def _exponential_cdf(rate: float) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    return lambda x: np.where(x < 0, 0.0, -np.expm1(-rate * x))


def _ks_pvalue(
    sample: npt.NDArray[np.float64], cdf: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]
) -> float:
    """Two-sided one-sample KS p-value; scipy's exact routine if available, else asymptotic."""
    if _scipy_stats is not None:
        return float(_scipy_stats.kstest(sample, cdf).pvalue)
    x = np.sort(sample)
    n = x.size
    f = cdf(x)
    d = max(float(np.max(np.arange(1, n + 1) / n - f)), float(np.max(f - np.arange(n) / n)))
    t = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    if t < 0.2:  # the Kolmogorov survival function is 1 to 15 digits here; the series converges slowly
        return 1.0
    series = math.fsum((-1.0) ** (j - 1) * math.exp(-2.0 * j * j * t * t) for j in range(1, 101))
    return min(1.0, max(0.0, 2.0 * series))


# --- production source -------------------------------------------------------------------------


def test_production_source_refuses_a_seed() -> None:
    with pytest.raises(ConfigError, match="cannot be seeded"):
        SystemNoiseSource(seed=42)
    with pytest.raises(ConfigError, match="fixed_noise_for_tests"):
        SystemNoiseSource(0)


def test_default_source_is_the_system_source() -> None:
    assert type(current_source()) is SystemNoiseSource


def test_two_production_draws_differ() -> None:
    a, b = gaussian(64, 1.0), gaussian(64, 1.0)
    assert not np.array_equal(a, b)
    assert laplace(1.0) != laplace(1.0)


def test_production_draws_ignore_numpy_global_seed() -> None:
    np.random.seed(1234)
    a = exponential(1.0, 16)
    np.random.seed(1234)
    b = exponential(1.0, 16)
    assert not np.array_equal(a, b)


def test_production_uniforms_are_uniform() -> None:
    # Not seeded, so use a very strict rejection threshold: a false alarm has probability 1e-6.
    u = uniform_open(N_SAMPLES)
    assert np.all((u > 0.0) & (u < 1.0))
    assert _ks_pvalue(u, lambda x: np.clip(x, 0.0, 1.0)) > 1e-6


# --- the test-only hook ------------------------------------------------------------------------


def _leave_test_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.delenv("CTDC_TESTING", raising=False)


def test_test_context_is_detected_under_pytest() -> None:
    assert in_test_context()


def test_fixed_noise_refused_outside_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    _leave_test_context(monkeypatch)
    assert not in_test_context()
    with pytest.raises(CtdcInternalError, match="only unit tests"), fixed_noise_for_tests(1):
        pass  # pragma: no cover - never reached
    with pytest.raises(CtdcInternalError, match="only unit tests"):
        SeededTestNoiseSource(1)


def test_ctdc_testing_env_enables_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    _leave_test_context(monkeypatch)
    monkeypatch.setenv("CTDC_TESTING", "1")
    with fixed_noise_for_tests(3):
        assert gaussian(2, 1.0).shape == (2,)


def test_leaked_seeded_source_fails_loudly_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = SeededTestNoiseSource(5)
    with fixed_noise_for_tests(5):
        _leave_test_context(monkeypatch)
        with pytest.raises(CtdcInternalError, match="only unit tests"):
            gaussian(3, 1.0)
        with pytest.raises(CtdcInternalError, match="only unit tests"):
            laplace(1.0, source=seeded)


def test_custom_sources_are_test_only(monkeypatch: pytest.MonkeyPatch) -> None:
    class Zeros(NoiseSource):
        def words(self, n: int) -> npt.NDArray[np.uint64]:
            return np.zeros(n, dtype=np.uint64)

    assert exponential(1.0, 1, source=Zeros())[0] == pytest.approx(-math.log(2.0**-53))
    _leave_test_context(monkeypatch)
    with pytest.raises(CtdcInternalError):
        exponential(1.0, 1, source=Zeros())


def test_fixed_noise_is_reproducible_and_restored() -> None:
    with fixed_noise_for_tests(11) as src:
        assert current_source() is src
        a = (gaussian(5, 2.0), laplace(1.0), exponential(0.5, 3))
    with fixed_noise_for_tests(11):
        b = (gaussian(5, 2.0), laplace(1.0), exponential(0.5, 3))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])
    assert type(current_source()) is SystemNoiseSource


def test_fixed_noise_restores_production_after_an_error() -> None:
    with pytest.raises(RuntimeError), fixed_noise_for_tests(2):
        raise RuntimeError("boom")
    assert current_source() is _noise._PRODUCTION


def test_different_seeds_give_different_noise() -> None:
    with fixed_noise_for_tests(1):
        a = gaussian(8, 1.0)
    with fixed_noise_for_tests(2):
        b = gaussian(8, 1.0)
    assert not np.array_equal(a, b)


# --- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf], ids=["zero", "negative", "nan", "inf"])
def test_gaussian_rejects_bad_sigma(sigma: float) -> None:
    with pytest.raises(ValueError, match="sigma"):
        gaussian(3, sigma)


@pytest.mark.parametrize("n", [-1, 2.5, True], ids=["negative", "fraction", "bool"])
def test_counts_must_be_whole_numbers(n: object) -> None:
    with pytest.raises(ValueError, match="n:"):
        gaussian(n, 1.0)  # type: ignore[arg-type]


def test_rate_and_scale_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        exponential(0.0, 3)
    with pytest.raises(ValueError, match="scale"):
        laplace(-2.0)


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_shapes(n: int) -> None:
    assert gaussian(n, 1.0).shape == (n,)
    assert exponential(1.0, n).shape == (n,)
    assert laplace(1.0, n).shape == (n,)
    assert isinstance(laplace(1.0), float)


def test_uniforms_never_hit_the_endpoints() -> None:
    class Extremes(NoiseSource):
        def words(self, n: int) -> npt.NDArray[np.uint64]:
            return np.resize(np.array([0, 2**64 - 1], dtype=np.uint64), n)

    u = uniform_open(4, source=Extremes())
    assert np.all((u > 0) & (u < 1))
    assert u[0] == 2.0**-53 and u[1] == 1.0 - 2.0**-53
    assert np.all(np.isfinite(laplace(1.0, 4, source=Extremes())))
    assert np.all(np.isfinite(gaussian(4, 1.0, source=Extremes())))


# --- distributions (seeded, with negative controls) --------------------------------------------


@pytest.mark.parametrize("sigma", [1.0, 7.35])
def test_gaussian_matches_sigma_and_half_noise_is_detected(sigma: float) -> None:
    with fixed_noise_for_tests(20240501):
        x = gaussian(N_SAMPLES, sigma)
    assert _ks_pvalue(x, _normal_cdf(sigma)) > P_THRESHOLD
    assert abs(float(np.mean(x))) < 5 * sigma / math.sqrt(N_SAMPLES)
    assert float(np.std(x)) == pytest.approx(sigma, rel=0.01)
    # Negative control: the same test must reject noise with half the scale.
    half = x / 2.0
    assert _ks_pvalue(half, _normal_cdf(sigma)) < P_REJECT
    assert float(np.std(half)) != pytest.approx(sigma, rel=0.01)


def test_laplace_matches_scale_and_half_noise_is_detected() -> None:
    scale = 1.0 / 0.02  # the record-count noise of the SPEC 8.3 example (eps_N = 0.02)
    with fixed_noise_for_tests(7):
        x = laplace(scale, N_SAMPLES)
    assert _ks_pvalue(x, _laplace_cdf(scale)) > P_THRESHOLD
    assert float(np.mean(np.abs(x))) == pytest.approx(scale, rel=0.01)  # E|X| = b
    assert _ks_pvalue(x / 2.0, _laplace_cdf(scale)) < P_REJECT
    assert float(np.mean(np.abs(x / 2.0))) != pytest.approx(scale, rel=0.01)


def test_exponential_matches_rate_and_half_noise_is_detected() -> None:
    rate = 0.037549 / 2.0  # report-noisy-max noise for the SPEC 8.3 eps_Q
    with fixed_noise_for_tests(99):
        x = exponential(rate, N_SAMPLES)
    assert np.all(x > 0)
    assert _ks_pvalue(x, _exponential_cdf(rate)) > P_THRESHOLD
    assert float(np.mean(x)) == pytest.approx(1.0 / rate, rel=0.01)
    assert _ks_pvalue(x / 2.0, _exponential_cdf(rate)) < P_REJECT


def test_gaussian_pairs_are_uncorrelated() -> None:
    # Box-Muller emits cos/sin pairs; both halves are used, so check they are independent-looking.
    with fixed_noise_for_tests(8):
        x = gaussian(N_SAMPLES, 1.0)
    half = N_SAMPLES // 2
    assert abs(float(np.corrcoef(x[:half], x[half:])[0, 1])) < 5 / math.sqrt(half)
    assert abs(float(np.corrcoef(x[:-1], x[1:])[0, 1])) < 5 / math.sqrt(N_SAMPLES)


@pytest.mark.skipif(_scipy_stats is None, reason="scipy not installed")
def test_fallback_ks_agrees_with_scipy() -> None:
    with fixed_noise_for_tests(4):
        x = gaussian(5_000, 1.0)
    cdf = _normal_cdf(1.0)
    sorted_x = np.sort(x)
    f = cdf(sorted_x)
    n = x.size
    d = max(float(np.max(np.arange(1, n + 1) / n - f)), float(np.max(f - np.arange(n) / n)))
    assert d == pytest.approx(float(_scipy_stats.kstest(x, cdf).statistic), rel=1e-9)


# --- keyed test noise for Spark tasks (the executor-side test hook) -----------------------------


def test_active_test_seed_exists_only_under_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    assert active_test_seed() is None
    with fixed_noise_for_tests(123):
        assert active_test_seed() == 123
        _leave_test_context(monkeypatch)
        with pytest.raises(CtdcInternalError, match="only unit tests"):
            active_test_seed()


def test_keyed_noise_is_a_function_of_seed_stream_and_key() -> None:
    keys = np.arange(2000, dtype=np.int64).reshape(-1, 2)
    whole = keyed_test_gaussian(5, 2, keys, 3.0)
    order = np.random.default_rng(0).permutation(len(keys))
    shuffled = keyed_test_gaussian(5, 2, keys[order], 3.0)
    assert np.array_equal(shuffled, whole[order])  # independent of batching and row order
    assert np.array_equal(
        np.concatenate([keyed_test_gaussian(5, 2, part, 3.0) for part in np.split(keys, 4)]), whole
    )
    assert not np.array_equal(keyed_test_gaussian(6, 2, keys, 3.0), whole)
    assert not np.array_equal(keyed_test_gaussian(5, 3, keys, 3.0), whole)
    assert keyed_test_gaussian(5, 2, keys[:0], 3.0).shape == (0,)


def test_keyed_noise_matches_sigma_and_half_noise_is_detected() -> None:
    sigma = 7.35
    x = keyed_test_gaussian(20240502, 1, np.arange(N_SAMPLES, dtype=np.int64), sigma)
    assert _ks_pvalue(x, _normal_cdf(sigma)) > P_THRESHOLD
    assert float(np.std(x)) == pytest.approx(sigma, rel=0.01)
    assert _ks_pvalue(x / 2.0, _normal_cdf(sigma)) < P_REJECT


def test_keyed_noise_is_test_only(monkeypatch: pytest.MonkeyPatch) -> None:
    _leave_test_context(monkeypatch)
    with pytest.raises(CtdcInternalError, match="only unit tests"):
        keyed_test_gaussian(1, 1, np.zeros((3, 1), dtype=np.int64), 1.0)
