"""The DP noise sources: OpenDP's exact samplers in production (discrete, right scale, unseedable,
not switchable by the environment), the privacy accounting OpenDP states, and the seeded test source.

Pure Python, no Spark. Production noise cannot be seeded, so its statistical tests use thresholds
whose false-alarm probability is about 1e-6 or less, and each has a negative control with half the
noise that must be detected (in the spirit of Tumult Core's ``NOISE_SCALE_FUDGE_FACTOR`` tests,
docs/reliability.md 3.1). Sample sizes are small because OpenDP's exact samplers draw about 1e5 values
per second.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import opendp.mod
import pytest
from scipy import stats

from ctdc_spark.dp import (
    PRODUCTION_NOISE,
    NoiseSource,
    OpenDPNoiseSource,
    SelectionNoise,
    _opendp,
    compute_noise_parameters,
    discrete_gaussian_tail,
    dp_percentile,
    noise_parameters_for,
    privacy_accounting,
    protected_number_of_records,
    rank_percentile,
)
from ctdc_spark.errors import ConfigError, CtdcInternalError
from tests.conftest import REPO, SeededTestNoiseSource

P_ACCEPT = 1e-6  # a correct sampler fails with this probability per test
P_REJECT = 1e-9  # half the noise must be rejected far beyond chance


def _keys(n: int) -> npt.NDArray[np.int64]:
    return np.arange(n, dtype=np.int64)[:, None]


def _discrete_gaussian_pmf(scale: float, support: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    tail = discrete_gaussian_tail(scale)
    point = np.append(tail[:-1] - tail[1:], 0.0)  # P(Z = m) for m >= 0
    return point[np.minimum(np.abs(support), len(point) - 1)]


def _discrete_laplace_pmf(scale: float, support: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    r = math.exp(-1.0 / scale)
    return (1 - r) / (1 + r) * r ** np.abs(support)


def _chi_square_pvalue(
    sample: npt.NDArray[np.int64], pmf: npt.NDArray[np.float64], support: npt.NDArray[np.int64]
) -> float:
    """Goodness of fit on the support, with the mass outside it pooled into one cell."""
    observed = np.array([np.count_nonzero(sample == v) for v in support], dtype=np.float64)
    expected = pmf * len(sample)
    observed = np.append(observed, len(sample) - observed.sum())
    expected = np.append(expected, len(sample) - expected.sum())
    keep = expected >= 5
    other = ~keep
    obs = np.append(observed[keep], observed[other].sum())
    exp = np.append(expected[keep], expected[other].sum())
    if exp[-1] < 5:
        obs, exp = obs[:-1], exp[:-1]
        exp = exp * obs.sum() / exp.sum()
    return float(stats.chisquare(obs, exp).pvalue)


# --- the production source ---------------------------------------------------------------------


def test_production_source_refuses_a_seed() -> None:
    with pytest.raises(ConfigError, match="cannot be seeded"):
        OpenDPNoiseSource(seed=42)
    with pytest.raises(ConfigError, match="pass their own NoiseSource"):
        OpenDPNoiseSource(0)


def test_every_default_is_the_production_source() -> None:
    from ctdc_spark.aggregate._dp import run_dp_marginals
    from ctdc_spark.pipeline import run_pipeline
    from ctdc_spark.stage import RunContext

    assert type(PRODUCTION_NOISE) is OpenDPNoiseSource
    assert RunContext.__dataclass_fields__["noise_source"].default is PRODUCTION_NOISE
    for function in (dp_percentile, rank_percentile, protected_number_of_records, noise_parameters_for):
        assert inspect.signature(function).parameters["source"].default is PRODUCTION_NOISE
    # The stage takes the source from its context and nowhere else.
    assert "noise_source" not in inspect.signature(run_dp_marginals).parameters
    # The pipeline accepts a source only as an explicit argument, which no entry point passes.
    assert inspect.signature(run_pipeline).parameters["noise_source"].default is PRODUCTION_NOISE
    for entry_point in (REPO / "ctdc_spark/cli.py", *(REPO / "jobs").glob("*.py")):
        assert "noise_source" not in entry_point.read_text(encoding="utf-8"), entry_point


_ENV_PROBE = """
import json, numpy as np
from ctdc_spark.dp import PRODUCTION_NOISE, OpenDPNoiseSource
from ctdc_spark.stage import RunContext
source = RunContext.__dataclass_fields__["noise_source"].default
draws = [PRODUCTION_NOISE.gaussian_integers(np.zeros(8, dtype=np.int64), 5.0, stream=1,
         keys=np.zeros((8, 1), dtype=np.int64)).tolist() for _ in range(2)]
print(json.dumps({"default": type(source).__name__, "production": type(PRODUCTION_NOISE).__name__,
                  "same": source is PRODUCTION_NOISE, "draws_differ": draws[0] != draws[1],
                  "key": PRODUCTION_NOISE.secret_key() != PRODUCTION_NOISE.secret_key()}))
"""


@pytest.mark.parametrize(
    "env",
    [
        {"CTDC_TESTING": "1", "PYTEST_CURRENT_TEST": "tests/x.py::test (call)"},
        {"CTDC_TESTING": "0", "SPARK_TESTING": "1", "CTDC_SEED": "7", "PYTHONHASHSEED": "0"},
        {},
    ],
    ids=["test-markers", "seed-like-values", "bare"],
)
def test_environment_does_not_change_the_production_source(env: dict[str, str]) -> None:
    # A fresh interpreter with hostile or empty variables still gets OpenDP's unseeded source.
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("CTDC", "PYTEST_"))}
    done = subprocess.run(
        [sys.executable, "-c", _ENV_PROBE],
        env={**base, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(done.stdout) == {
        "default": "OpenDPNoiseSource",
        "production": "OpenDPNoiseSource",
        "same": True,
        "draws_differ": True,
        "key": True,
    }


def test_no_noise_module_reads_the_environment() -> None:
    sources = [*(REPO / "ctdc_spark" / "dp").glob("*.py"), REPO / "ctdc_spark/aggregate/_dp_tasks.py"]
    reads_environment = re.compile(r"\bos\.environ|getenv\(|^import os$|^from os import", re.MULTILINE)
    for path in sources:
        assert not reads_environment.search(path.read_text(encoding="utf-8")), path.name


def test_only_the_contrib_feature_is_enabled() -> None:
    assert _opendp.ENABLED_FEATURES == {"contrib"}
    assert opendp.mod.GLOBAL_FEATURES == set(_opendp.ENABLED_FEATURES)


def test_two_production_draws_differ_and_ignore_numpy_seeds() -> None:
    zeros = np.zeros(64, dtype=np.int64)
    np.random.seed(1234)
    a = PRODUCTION_NOISE.gaussian_integers(zeros, 3.0, stream=1, keys=_keys(64))
    np.random.seed(1234)
    b = PRODUCTION_NOISE.gaussian_integers(zeros, 3.0, stream=1, keys=_keys(64))
    assert not np.array_equal(a, b)
    assert len({PRODUCTION_NOISE.laplace_integer(0, 50.0) for _ in range(5)}) > 1


def test_production_noise_is_integer() -> None:
    counts = np.array([0, 1, 7, 2**40], dtype=np.int64)
    noisy = PRODUCTION_NOISE.gaussian_integers(counts, 2.5, stream=3, keys=_keys(4))
    assert noisy.dtype == np.int64 and noisy.shape == (4,)
    assert isinstance(PRODUCTION_NOISE.laplace_integer(10, 3.0), int)
    assert PRODUCTION_NOISE.gaussian_integers(counts[:0], 2.5, stream=3, keys=_keys(0)).shape == (0,)


@pytest.mark.parametrize("scale", [0.7, 7.35])
def test_discrete_gaussian_has_the_right_law_and_half_noise_is_detected(scale: float) -> None:
    n = 60_000
    x = PRODUCTION_NOISE.gaussian_integers(np.zeros(n, dtype=np.int64), scale, stream=1, keys=_keys(n))
    support = np.arange(-math.ceil(6 * scale), math.ceil(6 * scale) + 1)
    tail = discrete_gaussian_tail(scale)
    z = np.arange(len(tail))
    point = np.append(tail[:-1] - tail[1:], 0.0)
    variance = 2.0 * float(np.sum(z * z * point))  # the exact variance (about scale^2 when scale >= 1)
    assert _chi_square_pvalue(x, _discrete_gaussian_pmf(scale, support), support) > P_ACCEPT
    assert float(np.var(x)) == pytest.approx(variance, rel=6 * math.sqrt(2 / n))
    assert abs(float(np.mean(x))) < 5 * math.sqrt(variance / n)
    if scale >= 1:
        assert variance == pytest.approx(scale**2, rel=1e-9)
    # Negative control: half the noise.
    half = PRODUCTION_NOISE.gaussian_integers(np.zeros(n, dtype=np.int64), scale / 2, stream=1, keys=_keys(n))
    assert _chi_square_pvalue(half, _discrete_gaussian_pmf(scale, support), support) < P_REJECT


def test_discrete_laplace_has_the_right_law_and_half_noise_is_detected() -> None:
    scale, n = 1.0 / 0.2, 20_000
    x = np.array([PRODUCTION_NOISE.laplace_integer(0, scale) for _ in range(n)])
    r = math.exp(-1.0 / scale)
    variance = 2 * r / (1 - r) ** 2
    support = np.arange(-40, 41)
    assert _chi_square_pvalue(x, _discrete_laplace_pmf(scale, support), support) > P_ACCEPT
    assert float(np.var(x)) == pytest.approx(variance, rel=6 * math.sqrt(5 / n))
    half = np.array([PRODUCTION_NOISE.laplace_integer(0, scale / 2) for _ in range(n)])
    assert _chi_square_pvalue(half, _discrete_laplace_pmf(scale, support), support) < P_REJECT


@pytest.mark.parametrize(
    ("noise", "probability"),
    [("exponential", lambda t: math.exp(-t) / 2), ("gumbel", lambda t: 1 / (1 + math.exp(t)))],
    ids=["exponential", "gumbel"],
)
def test_noisy_max_picks_with_the_mechanism_probability(
    noise: SelectionNoise, probability: Callable[[float], float]
) -> None:
    # Scores [0, -1] and scale 2: the runner-up wins with e^-(1/2)/2 (exponential) or 1/(1+e^(1/2)).
    draws, scale = 20_000, 2.0
    picks = np.array([PRODUCTION_NOISE.noisy_max([0.0, -1.0], scale, noise=noise) for _ in range(draws)])
    expected = probability(1 / scale)
    sd = math.sqrt(expected * (1 - expected) / draws)
    assert abs(float(picks.mean()) - expected) < 5 * sd
    half_noise = probability(2 / scale)
    assert abs(float(picks.mean()) - half_noise) > 10 * sd


# --- argument checks (shared by every source) --------------------------------------------------


@pytest.mark.parametrize("source", [PRODUCTION_NOISE, SeededTestNoiseSource(1)], ids=["opendp", "seeded"])
def test_arguments_are_checked_without_echoing_counts(source: NoiseSource) -> None:
    zeros = np.zeros(3, dtype=np.int64)
    for scale in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="scale"):
            source.gaussian_integers(zeros, scale, stream=1, keys=_keys(3))
        with pytest.raises(ValueError, match="scale"):
            source.laplace_integer(5, scale)
    with pytest.raises(ValueError, match="whole numbers"):
        source.gaussian_integers(np.array([1.5]), 1.0, stream=1, keys=_keys(1))
    with pytest.raises(ValueError, match="one key row per count"):
        source.gaussian_integers(zeros, 1.0, stream=1, keys=_keys(2))
    with pytest.raises(ValueError, match="whole number") as info:
        source.laplace_integer(12.5, 1.0)  # type: ignore[arg-type]
    assert "12.5" not in str(info.value)
    with pytest.raises(ValueError, match="non-empty"):
        source.noisy_max([], 1.0, noise="gumbel")
    with pytest.raises(ValueError, match="noise"):
        source.noisy_max([1.0], 1.0, noise="laplace")  # type: ignore[arg-type]
    assert 0 <= source.secret_key() < 2**64


# --- the privacy accounting as OpenDP states it ------------------------------------------------


def _spec_8_3_parameters() -> object:
    return compute_noise_parameters(
        epsilon=4.0,
        delta=None,
        delta_factor=None,
        n_true=10_000,
        protected_n=10_000,
        length=4,
        sigma_proportions=(1.0, 0.5, 0.33, 0.25),
        percentile_epsilon_proportion=0.01,
        number_of_records_epsilon_proportion=0.005,
    )


def test_opendp_conversion_matches_a_real_gaussian_and_never_understates() -> None:
    for rho in (1e-3, 0.28199, 2.5):
        epsilon = _opendp.zcdp_epsilon(rho, 1e-6)
        # Bun & Steinke's conversion is an upper bound on the optimal one OpenDP uses.
        assert 0 < epsilon <= rho + 2 * math.sqrt(rho * math.log(1e6))
        looser = _opendp.zcdp_epsilon(rho * 1.01, 1e-6)
        assert looser > epsilon
    assert _opendp.gaussian_rho(3.0, math.sqrt(10)) == pytest.approx(10 / 18, rel=1e-12)
    assert _opendp.gaussian_rho(3.0, math.sqrt(10)) >= 10 / 18
    assert _opendp.laplace_epsilon(50.0) == pytest.approx(0.02, rel=1e-12)
    assert _opendp.noisy_max_rho(2 / 0.5, "gumbel") == pytest.approx(0.5**2 / 8, rel=1e-12)
    assert _opendp.noisy_max_rho(2 / 0.5, "exponential") == pytest.approx(0.5**2 / 2, rel=1e-12)
    assert _opendp.noisy_max_epsilon(2 / 0.5) == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("mechanism", ["rank", "sds_compatible"])
def test_accounting_of_the_spec_example_stays_within_the_budget(mechanism: str) -> None:
    params = _spec_8_3_parameters()
    accounting = privacy_accounting(params, [4, 10, 10, 5], mechanism)  # type: ignore[arg-type]
    zcdp = [loss.value for loss in accounting.losses if loss.measure == "zCDP"]
    assert len(zcdp) == 8 and math.fsum(zcdp) == pytest.approx(accounting.rho, rel=1e-12)
    assert [loss.mechanism for loss in accounting.losses if loss.component == "counts"] == [
        "discrete Gaussian"
    ] * 4
    assert accounting.losses[0].mechanism == "discrete Laplace"
    assert accounting.number_of_records_epsilon == pytest.approx(0.02, rel=1e-9)
    # sds_compatible budgets the percentile as eps_Q^2 / 2, exactly Step A's rho; rank's exponential
    # mechanism costs eps_Q^2 / 8 per OpenDP, so less.
    assert accounting.rho <= params.rho * (1 + 1e-9)  # type: ignore[attr-defined]
    if mechanism == "sds_compatible":
        assert accounting.rho == pytest.approx(params.rho, rel=1e-9)  # type: ignore[attr-defined]
    assert accounting.epsilon < 4.0 and accounting.delta == params.delta  # type: ignore[attr-defined]
    assert accounting.proven is (mechanism == "rank")


def test_accounting_refuses_a_release_beyond_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_opendp, "gaussian_rho", lambda scale, sensitivity: 1.0)
    with pytest.raises(CtdcInternalError, match="exceeds the configured privacy budget"):
        privacy_accounting(_spec_8_3_parameters(), [4, 10], "rank")  # type: ignore[arg-type]


def test_accounting_counts_only_the_measurements_that_ran() -> None:
    accounting = privacy_accounting(_spec_8_3_parameters(), [4, 0], "rank")  # type: ignore[arg-type]
    assert [(loss.component, loss.length) for loss in accounting.losses] == [
        ("number_of_records", None),
        ("percentile", 1),
        ("counts", 1),
        ("percentile", 2),
    ]


# --- the seeded test source (tests/conftest.py) ------------------------------------------------


def test_seeded_source_is_reproducible() -> None:
    a, b = SeededTestNoiseSource(11), SeededTestNoiseSource(11)
    assert [a.laplace_integer(100, 5.0) for _ in range(5)] == [b.laplace_integer(100, 5.0) for _ in range(5)]
    assert a.noisy_max([0.0, 0.1, 0.2], 1.0, noise="gumbel") == b.noisy_max(
        [0.0, 0.1, 0.2], 1.0, noise="gumbel"
    )
    assert a.secret_key() == b.secret_key() != SeededTestNoiseSource(12).secret_key()


def test_seeded_count_noise_is_a_function_of_seed_stream_and_key() -> None:
    source = SeededTestNoiseSource(5)
    keys = np.arange(2000, dtype=np.int64).reshape(-1, 2)
    counts = np.zeros(len(keys), dtype=np.int64)
    whole = source.gaussian_integers(counts, 3.0, stream=2, keys=keys)
    order = np.random.default_rng(0).permutation(len(keys))
    assert np.array_equal(source.gaussian_integers(counts, 3.0, stream=2, keys=keys[order]), whole[order])
    parts = [source.gaussian_integers(counts[:250], 3.0, stream=2, keys=part) for part in np.split(keys, 4)]
    assert np.array_equal(np.concatenate(parts), whole)  # independent of batching
    assert not np.array_equal(
        SeededTestNoiseSource(6).gaussian_integers(counts, 3.0, stream=2, keys=keys), whole
    )
    assert not np.array_equal(source.gaussian_integers(counts, 3.0, stream=3, keys=keys), whole)


def test_seeded_count_noise_is_a_discrete_gaussian() -> None:
    scale, n = 7.35, 200_000
    x = SeededTestNoiseSource(20240502).gaussian_integers(
        np.zeros(n, dtype=np.int64), scale, stream=1, keys=_keys(n)
    )
    support = np.arange(-45, 46)
    assert _chi_square_pvalue(x, _discrete_gaussian_pmf(scale, support), support) > P_ACCEPT
    assert float(np.var(x)) == pytest.approx(scale**2, rel=0.02)
