"""DP parameter arithmetic (docs/spec.md 3.4 Step A/B.6, 3.4.2) checked against the docs/spec.md 8.3 vectors.

Pure Python, no Spark. Expected numbers are compared to the precision docs/spec.md prints them with
(half a unit in the last printed digit).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctdc_spark.config import DpConfig
from ctdc_spark.dp import _params
from ctdc_spark.dp._params import (
    NoiseParameters,
    ThresholdSpec,
    compute_noise_parameters,
    discrete_gaussian_tail,
    inverse_normal_cdf,
    noise_parameters_for,
    protected_number_of_records,
    released_threshold,
    resolve_delta,
    sigma_proportions_for,
    split_epsilon,
    threshold_rho,
    thresholds_for,
)
from ctdc_spark.errors import ConfigError, CtdcInternalError, InputDataError, StageFailedError
from tests.conftest import SeededTestNoiseSource

try:  # test-only
    from scipy import special as _scipy_special
except ImportError:  # pragma: no cover
    _scipy_special = None


def assert_printed(value: float, printed: str) -> None:
    """Assert ``value`` rounds to ``printed`` at the printed precision."""
    expected = Decimal(printed)
    exponent = expected.as_tuple().exponent
    assert isinstance(exponent, int)
    tolerance = 0.5 * 10.0**exponent
    assert abs(value - float(expected)) <= tolerance * (1 + 1e-9), f"{value!r} does not print as {printed}"


def spec_params(
    *,
    n: int,
    length: int,
    proportions: tuple[float, ...],
    epsilon: float = 4.0,
    n_p: float | None = 0.005,
    q_p: float = 0.01,
) -> NoiseParameters:
    """docs/spec.md 8.3 parameters "with n' = n": the protected count is taken equal to the true one."""
    return compute_noise_parameters(
        epsilon=epsilon,
        delta=None,
        delta_factor=None,
        n_true=n,
        protected_n=n if n_p is not None else None,
        length=length,
        sigma_proportions=proportions,
        percentile_epsilon_proportion=q_p,
        number_of_records_epsilon_proportion=n_p,
    )


CASE_A = {"n": 10_000, "length": 4, "proportions": (1.0, 0.5, 0.33, 0.25)}


# --- docs/spec.md 8.3 ----------------------------------------------------------------------------------


def test_spec_8_3_case_a_n_10000() -> None:
    p = spec_params(**CASE_A)  # type: ignore[arg-type]
    assert_printed(p.number_of_records_epsilon, "0.02")
    assert_printed(p.marginals_epsilon, "3.98")
    assert_printed(p.delta, "1.0857e-5")
    assert_printed(p.rho, "0.28199")
    assert_printed(p.percentile_epsilon, "0.037549")
    for sigma, printed in zip(p.sigmas, ["7.3524", "3.6762", "2.4263", "1.8381"], strict=True):
        assert_printed(sigma, printed)
    assert p.delta_rule == "default"
    assert p.protected_number_of_records == 10_000


def test_spec_8_3_case_b_n_1000() -> None:
    p = spec_params(n=1000, length=4, proportions=(1.0, 0.5, 0.33, 0.25))
    assert_printed(p.delta, "1.4476e-4")
    assert_printed(p.rho, "0.34625")
    assert_printed(p.percentile_epsilon, "0.041609")
    assert_printed(p.sigmas[0], "6.6351")


def test_spec_8_3_case_c_prioritize_long_l3() -> None:
    # docs/spec.md lists eps = 4, L = 3, p = [1, 1/2, 1/3], n = 10,000; the printed numbers hold with the
    # same N_p = 0.005 and Q_p = 0.01 as the cases above (without N_p, eps_Q would be 0.043562).
    proportions = sigma_proportions_for(DpConfig(accuracy_mode="prioritize_long"), 3)
    p = spec_params(n=10_000, length=3, proportions=proportions)
    assert_printed(p.percentile_epsilon, "0.043358")
    for sigma, printed in zip(p.sigmas, ["5.0074", "2.5037", "1.6691"], strict=True):
        assert_printed(sigma, printed)


@pytest.mark.parametrize(("delta_1", "printed"), [(4, "69.98"), (10, "114.36"), (20, "165.75")])
def test_spec_8_3_rho_1(delta_1: int, printed: str) -> None:
    p = spec_params(**CASE_A)  # type: ignore[arg-type]
    spec = thresholds_for(DpConfig(), 4)
    assert_printed(threshold_rho(1, p.sigma_for(1), delta_1, p.delta, spec), printed)


@pytest.mark.parametrize(
    ("eta", "printed"), [(1.0, "0"), (0.55, "6.95"), (0.1, "19.12"), (0.01, "29.94")], ids=str
)
def test_spec_8_3_adaptive_rho_2(eta: float, printed: str) -> None:
    p = spec_params(**CASE_A)  # type: ignore[arg-type]
    spec = thresholds_for(
        DpConfig(fabrication_mode="custom", threshold_type="adaptive", threshold_values={2: eta}), 4
    )
    rho_2 = threshold_rho(2, p.sigma_for(2), 10, p.delta, spec)
    if printed == "0":
        assert rho_2 == 0.0
        assert math.copysign(1.0, rho_2) == 1.0  # not -0.0
    else:
        assert_printed(rho_2, printed)


def test_presets_reach_the_spec_adaptive_values() -> None:
    p = spec_params(**CASE_A)  # type: ignore[arg-type]
    by_mode = {
        "uncontrolled": "0",
        "balanced": "6.95",  # eta_2 = 0.55
        "progressive": "19.12",  # eta_2 = 0.1
        "minimize": "29.94",  # eta_2 = 0.01
    }
    for mode, printed in by_mode.items():
        spec = thresholds_for(DpConfig(fabrication_mode=mode), 4)  # type: ignore[arg-type]
        assert_printed(threshold_rho(2, p.sigma_for(2), 10, p.delta, spec), printed)


# --- Step A details ----------------------------------------------------------------------------


def test_split_epsilon() -> None:
    assert split_epsilon(4.0, 0.005) == (0.02, 3.98)
    assert split_epsilon(4.0, None) == (0.0, 4.0)


def test_budget_ledger_adds_up() -> None:
    p = spec_params(**CASE_A)  # type: ignore[arg-type]
    split = p.budget_split()
    assert [e.component for e in split] == ["number_of_records", "marginals"]
    assert math.fsum(e.epsilon for e in split) == pytest.approx(4.0, rel=1e-15)
    assert math.fsum(e.delta for e in split) == p.delta
    rho_entries = p.rho_split()
    assert len(rho_entries) == 2 * 4
    assert math.fsum(e.rho for e in rho_entries) == pytest.approx(p.rho, rel=1e-12)
    unprotected = spec_params(n=10_000, length=2, proportions=(1.0, 0.5), n_p=None)
    assert [e.component for e in unprotected.budget_split()] == ["marginals"]
    assert unprotected.budget_split()[0].epsilon == 4.0


def test_noise_parameters_hold_nothing_sensitive() -> None:
    names = {f.name for f in dataclasses.fields(NoiseParameters)}
    assert not any(name in names for name in ("n_true", "number_of_records", "n"))


@settings(max_examples=300, deadline=None)
@given(
    epsilon=st.floats(0.01, 50.0),
    q_p=st.floats(0.001, 0.99),
    n=st.integers(3, 10**9),
    proportions=st.lists(st.floats(0.01, 10.0), min_size=1, max_size=8),
)
def test_step_a_identity_holds(epsilon: float, q_p: float, n: int, proportions: list[float]) -> None:
    length = len(proportions)
    p = compute_noise_parameters(
        epsilon=epsilon,
        delta=None,
        delta_factor=None,
        n_true=n,
        protected_n=None,
        length=length,
        sigma_proportions=proportions,
        percentile_epsilon_proportion=q_p,
        number_of_records_epsilon_proportion=None,
    )
    lhs = length * p.percentile_epsilon**2 / 2 + sum(1 / s**2 for s in p.sigmas) / 2
    assert lhs == pytest.approx(p.rho, rel=1e-12)
    # rho converts back to (eps_M, delta/2)-DP exactly (Bun & Steinke Prop. 1.3).
    eps_back = p.rho + 2 * math.sqrt(p.rho * math.log(2 / p.delta))
    assert eps_back == pytest.approx(p.marginals_epsilon, rel=1e-9)
    assert [s / p.base_sigma for s in p.sigmas] == pytest.approx(proportions, rel=1e-12)


def test_consistency_failure_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_params, "_consistency_tolerance", lambda delta: -1.0)
    with pytest.raises(CtdcInternalError, match="bug"):
        spec_params(**CASE_A)  # type: ignore[arg-type]


# --- delta rules -------------------------------------------------------------------------------


def test_delta_explicit_wins() -> None:
    assert resolve_delta(delta=1e-6, delta_factor=None, n_true=10, protected_n=None) == (1e-6, "explicit")


def test_delta_factor_uses_the_protected_count() -> None:
    value, rule = resolve_delta(delta=None, delta_factor=10.0, n_true=10_000, protected_n=5_000)
    assert rule == "delta_factor"
    assert value == pytest.approx(1 / (10.0 * 5_000))


def test_delta_factor_without_protection_uses_the_true_count() -> None:
    value, _ = resolve_delta(delta=None, delta_factor=10.0, n_true=10_000, protected_n=None)
    assert value == pytest.approx(1 / (10.0 * 10_000))


def test_default_delta_uses_protected_then_true_count() -> None:
    protected, _ = resolve_delta(delta=None, delta_factor=None, n_true=10_000, protected_n=1_000)
    assert_printed(protected, "1.4476e-4")
    unprotected, _ = resolve_delta(delta=None, delta_factor=None, n_true=10_000, protected_n=None)
    assert_printed(unprotected, "1.0857e-5")


@pytest.mark.parametrize("n", [1, 2], ids=["one", "two"])
def test_default_delta_needs_enough_records(n: int) -> None:
    # n = 1: ln 1 = 0; n = 2: 1/(2 ln 2) = 0.72 is a valid but useless delta, which warns instead.
    if n == 1:
        with pytest.raises(InputDataError, match=r"privacy\.dp\.delta"):
            resolve_delta(delta=None, delta_factor=None, n_true=n, protected_n=None)
    else:
        with pytest.warns(UserWarning, match="1/\\(number of records\\)"):
            spec_params(n=n, length=1, proportions=(1.0,), n_p=None)


def test_large_delta_warns() -> None:
    with pytest.warns(UserWarning, match="delta_factor > 1"):
        compute_noise_parameters(
            epsilon=1.0,
            delta=None,
            delta_factor=0.5,
            n_true=100,
            protected_n=None,
            length=1,
            sigma_proportions=(1.0,),
            percentile_epsilon_proportion=0.01,
            number_of_records_epsilon_proportion=None,
        )


def test_default_delta_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec_params(**CASE_A)  # type: ignore[arg-type]


_GOOD = {
    "epsilon": 4.0,
    "delta": None,
    "delta_factor": None,
    "n_true": 1000,
    "protected_n": 1000,
    "length": 2,
    "sigma_proportions": (1.0, 0.5),
    "percentile_epsilon_proportion": 0.01,
    "number_of_records_epsilon_proportion": 0.005,
}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"epsilon": 0.0}, ConfigError, r"privacy\.dp\.epsilon"),
        ({"epsilon": -1.0}, ConfigError, r"privacy\.dp\.epsilon"),
        ({"epsilon": math.nan}, ConfigError, r"privacy\.dp\.epsilon"),
        ({"epsilon": math.inf}, ConfigError, r"privacy\.dp\.epsilon"),
        ({"percentile_epsilon_proportion": 0.0}, ConfigError, "percentile_epsilon_proportion"),
        ({"percentile_epsilon_proportion": 1.0}, ConfigError, "percentile_epsilon_proportion"),
        ({"number_of_records_epsilon_proportion": 1.5}, ConfigError, "number_of_records_epsilon_proportion"),
        ({"sigma_proportions": (1.0,)}, ConfigError, "one value per length"),
        ({"sigma_proportions": (1.0, 0.0)}, ConfigError, "> 0"),
        ({"sigma_proportions": (1.0, math.nan)}, ConfigError, "> 0"),
        ({"length": 0, "sigma_proportions": ()}, ConfigError, "reporting_length"),
        ({"protected_n": None}, ConfigError, "protected_n"),
        ({"number_of_records_epsilon_proportion": None}, ConfigError, "protected_n"),
        ({"delta": 1e-6, "delta_factor": 2.0}, ConfigError, "either delta or delta_factor"),
        ({"delta": 0.0}, ConfigError, r"privacy\.dp\.delta"),
        ({"delta": 1.0}, ConfigError, r"privacy\.dp\.delta"),
        ({"delta_factor": 0.0}, ConfigError, "delta_factor"),
        ({"delta_factor": 1e-9}, InputDataError, "delta_factor"),
        ({"protected_n": 0}, ValueError, "protected_n"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(f"{k}={v[k]}" for k in v),
)
def test_step_a_rejects_bad_parameters(change: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        compute_noise_parameters(**{**_GOOD, **change})  # type: ignore[arg-type]


def test_errors_never_echo_the_record_count() -> None:
    with pytest.raises(ValueError) as info:
        resolve_delta(delta=None, delta_factor=None, n_true=-12345, protected_n=None)
    assert "12345" not in str(info.value)


# --- presets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("prioritize_long", (1.0, 1 / 2, 1 / 3, 1 / 4)),
        ("prioritize_short", (1 / 4, 1 / 3, 1 / 2, 1.0)),
        ("balanced", (1.0, 1.0, 1.0, 1.0)),
    ],
)
def test_accuracy_presets(mode: str, expected: tuple[float, ...]) -> None:
    assert sigma_proportions_for(DpConfig(accuracy_mode=mode), 4) == pytest.approx(expected)  # type: ignore[arg-type]


def test_accuracy_custom() -> None:
    cfg = DpConfig(accuracy_mode="custom", sigma_proportions=(1.0, 0.25, 0.5))
    assert sigma_proportions_for(cfg, 3) == (1.0, 0.25, 0.5)
    with pytest.raises(ConfigError, match="one value per length"):
        sigma_proportions_for(cfg, 2)
    with pytest.raises(ConfigError, match="required when accuracy_mode is custom"):
        sigma_proportions_for(DpConfig(accuracy_mode="custom"), 3)
    with pytest.raises(ConfigError, match="> 0"):
        sigma_proportions_for(DpConfig(accuracy_mode="custom", sigma_proportions=(1.0, -1.0)), 2)


def test_length_one_presets() -> None:
    for mode in ("prioritize_long", "prioritize_short", "balanced"):
        assert sigma_proportions_for(DpConfig(accuracy_mode=mode), 1) == (1.0,)
    for fab in ("uncontrolled", "progressive", "balanced", "minimize"):
        assert dict(thresholds_for(DpConfig(fabrication_mode=fab), 1).values) == {}
    with pytest.raises(ConfigError, match="reporting_length"):
        sigma_proportions_for(DpConfig(), 0)


@pytest.mark.parametrize(
    ("mode", "length", "expected"),
    [
        ("uncontrolled", 4, {2: 1.0, 3: 1.0, 4: 1.0}),
        ("progressive", 2, {2: 0.1}),
        ("progressive", 4, {2: 0.1, 3: 0.55, 4: 1.0}),
        ("progressive", 5, {2: 0.1, 3: 0.4, 4: 0.7, 5: 1.0}),
        ("balanced", 2, {2: 0.55}),
        ("balanced", 4, {2: 0.55, 3: 1.0, 4: 1.0}),
        ("minimize", 3, {2: 0.01, 3: 0.01}),
    ],
    ids=str,
)
def test_fabrication_presets(mode: str, length: int, expected: dict[int, float]) -> None:
    spec = thresholds_for(DpConfig(fabrication_mode=mode), length)  # type: ignore[arg-type]
    assert spec.threshold_type == "adaptive"
    assert dict(spec.values) == pytest.approx(expected)


def test_fabrication_custom_defaults() -> None:
    adaptive = thresholds_for(
        DpConfig(fabrication_mode="custom", threshold_type="adaptive", threshold_values={3: 0.2}), 4
    )
    assert dict(adaptive.values) == {2: 1.0, 3: 0.2, 4: 1.0}
    fixed = thresholds_for(
        DpConfig(fabrication_mode="custom", threshold_type="fixed", threshold_values={2: 30}), 3
    )
    assert fixed.threshold_type == "fixed"
    assert dict(fixed.values) == {2: 30.0, 3: 0.0}


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (DpConfig(fabrication_mode="uncontrolled", threshold_type="fixed"), "threshold_type"),
        (DpConfig(fabrication_mode="minimize", threshold_values={2: 0.5}), "only used with fabrication_mode"),
        (DpConfig(fabrication_mode="custom", threshold_values={1: 0.5}), "length 1"),
        (DpConfig(fabrication_mode="custom", threshold_values={4: 0.5}), "outside 2..3"),
        (DpConfig(fabrication_mode="custom", threshold_values={2: 0.0}), r"\(0, 1\]"),
        (DpConfig(fabrication_mode="custom", threshold_values={2: 1.5}), r"\(0, 1\]"),
        (DpConfig(fabrication_mode="custom", threshold_type="fixed", threshold_values={2: -1.0}), ">= 0"),
    ],
    ids=["preset-fixed", "preset-values", "length-1", "too-long", "eta-0", "eta-1.5", "fixed-negative"],
)
def test_fabrication_rejects(cfg: DpConfig, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        thresholds_for(cfg, 3)


# --- thresholds --------------------------------------------------------------------------------


def test_fixed_threshold_is_the_value_and_length_1_ignores_the_spec() -> None:
    spec = thresholds_for(
        DpConfig(fabrication_mode="custom", threshold_type="fixed", threshold_values={3: 7}), 3
    )
    assert threshold_rho(2, 5.0, 10, 1e-5, spec) == 0.0
    assert threshold_rho(3, 5.0, 10, 1e-5, spec) == 7.0
    assert threshold_rho(1, 5.0, 10, 1e-5, spec) > 1.0


@pytest.mark.parametrize(
    ("sigma", "d1", "delta", "naive_rel"),
    [(7.35, 4, 1e-5, 1e-9), (2.0, 1, 1e-3, 1e-12), (5.0, 50, 1e-7, 1e-8), (1.0, 10**6, 1e-9, 3e-3)],
)
def test_length_1_threshold_is_accurate(sigma: float, d1: int, delta: float, naive_rel: float) -> None:
    rho_1 = threshold_rho(1, sigma, d1, delta, ThresholdSpec("adaptive", 1, {}))
    # Reference: the upper tail q = 1 - (1 - delta/2)^(1/Delta_1) in 50-digit decimal arithmetic.
    with localcontext() as ctx:
        ctx.prec = 50
        q = float(1 - (1 - Decimal(delta) / 2) ** (Decimal(1) / Decimal(d1)))
    assert rho_1 == pytest.approx(1 - sigma * math.sqrt(d1) * inverse_normal_cdf(q), rel=1e-13)
    # The textbook form (SDS's) cancels catastrophically when q is tiny: 0.16% off at Delta_1 = 1e6.
    naive = 1 + sigma * math.sqrt(d1) * inverse_normal_cdf((1 - delta / 2) ** (1 / d1))
    assert rho_1 == pytest.approx(naive, rel=naive_rel)


@given(
    sigma=st.floats(0.01, 100.0),
    d1=st.integers(1, 10**6),
    delta=st.floats(1e-15, 0.5),
)
def test_length_1_threshold_is_at_least_one(sigma: float, d1: int, delta: float) -> None:
    assert threshold_rho(1, sigma, d1, delta, ThresholdSpec("adaptive", 1, {})) >= 1.0


def test_discrete_gaussian_tail_is_the_distribution() -> None:
    scale = 1.3
    z = np.arange(-60, 61)
    mass = np.exp(-(z * z) / (2 * scale**2))
    mass /= mass.sum()
    tail = discrete_gaussian_tail(scale)
    for m in (0, 1, 2, 5, 12):
        assert tail[m] == pytest.approx(mass[z >= m].sum(), rel=1e-12)
    assert tail[-1] == 0.0 and np.all(np.diff(tail) <= 0)
    with pytest.raises(ValueError, match="scale"):
        discrete_gaussian_tail(0.0)


@pytest.mark.parametrize(
    ("delta_1", "continuous", "released"), [(4, 69.98, 70.0), (10, 114.36, 114.36), (20, 165.75, 166.0)]
)
def test_released_length_1_threshold_of_the_spec_example(
    delta_1: int, continuous: float, released: float
) -> None:
    # docs/spec.md 8.3 (eps 4, L 4, n' = 10,000): SDS's rho_1 for continuous noise, and the threshold the
    # discrete Gaussian needs for the same delta / 2 (at most one count above it).
    p = spec_params(**CASE_A)  # type: ignore[arg-type]
    spec = thresholds_for(DpConfig(), 4)
    assert threshold_rho(1, p.sigma_for(1), delta_1, p.delta, spec) == pytest.approx(continuous, abs=0.01)
    assert released_threshold(1, p.sigma_for(1), delta_1, p.delta, spec) == pytest.approx(released, abs=0.01)
    assert released_threshold(2, p.sigma_for(2), delta_1, p.delta, spec) == threshold_rho(
        2, p.sigma_for(2), delta_1, p.delta, spec
    )


@settings(max_examples=200, deadline=None)
@given(sigma=st.floats(0.3, 20.0), d1=st.integers(1, 200), delta=st.floats(1e-12, 0.5))
def test_released_length_1_threshold_keeps_half_delta_for_discrete_noise(
    sigma: float, d1: int, delta: float
) -> None:
    spec = ThresholdSpec("adaptive", 1, {})
    threshold = released_threshold(1, sigma, d1, delta, spec)
    assert threshold >= threshold_rho(1, sigma, d1, delta, spec)
    tail = discrete_gaussian_tail(sigma * math.sqrt(d1))
    q = -math.expm1(math.log1p(-delta / 2) / d1)
    # A count of 1 is released iff 1 + Z > threshold, i.e. Z >= floor(threshold).
    first_released = math.floor(threshold)
    assert tail[min(first_released, len(tail) - 1)] <= q
    if threshold > threshold_rho(1, sigma, d1, delta, spec):  # raised: no smaller integer would do
        assert tail[first_released - 1] > q


@given(eta_a=st.floats(1e-6, 1.0), eta_b=st.floats(1e-6, 1.0), dk=st.integers(1, 1000))
def test_adaptive_threshold_decreases_with_eta(eta_a: float, eta_b: float, dk: int) -> None:
    lo, hi = sorted((eta_a, eta_b))
    rho = [threshold_rho(2, 3.0, dk, 1e-5, ThresholdSpec("adaptive", 2, {2: e})) for e in (lo, hi)]
    assert rho[0] >= rho[1] >= 0.0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((1, 3.0, 0, 1e-5), "delta_k"),
        ((2, 3.0, 0, 1e-5), "delta_k"),
        ((0, 3.0, 5, 1e-5), "k:"),
        ((3, 3.0, 5, 1e-5), "reporting length"),
        ((2, 0.0, 5, 1e-5), "sigma_k"),
        ((2, 3.0, 5, 1.0), "delta:"),
    ],
    ids=["length1-sensitivity0", "sensitivity0", "k0", "k-too-long", "sigma0", "delta1"],
)
def test_threshold_rejects(args: tuple[int, float, int, float], match: str) -> None:
    spec = ThresholdSpec("adaptive", 2, {2: 1.0})
    with pytest.raises(ValueError, match=match):
        threshold_rho(*args, spec)


def test_spec_value_for_rejects_length_1() -> None:
    with pytest.raises(ValueError, match="length 1"):
        thresholds_for(DpConfig(), 3).value_for(1)


# --- inverse normal CDF ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.5, 0.0),
        (0.975, 1.959963984540054),
        (0.995, 2.5758293035489004),
        (0.8413447460685429, 1.0),
        (1e-10, -6.361340902404056),
        (1 - 1e-10, 6.361340889697422),  # 1 - 1e-10 is not exact in binary; value for the stored double
    ],
)
def test_inverse_normal_known_values(p: float, expected: float) -> None:
    assert inverse_normal_cdf(p) == pytest.approx(expected, rel=1e-13, abs=1e-15)


@given(p=st.floats(1e-300, 1 - 1e-16))
def test_inverse_normal_round_trips_through_erfc(p: float) -> None:
    x = inverse_normal_cdf(p)
    # Phi(x) via erfc, independent of AS241; compare the smaller tail to keep precision.
    if x < 0:
        assert 0.5 * math.erfc(-x / math.sqrt(2)) == pytest.approx(p, rel=1e-12)
    else:
        assert 0.5 * math.erfc(x / math.sqrt(2)) == pytest.approx(1 - p, rel=1e-12, abs=1e-16)


@pytest.mark.skipif(_scipy_special is None, reason="scipy not installed")
@given(p=st.floats(1e-300, 1 - 1e-16))
def test_inverse_normal_matches_scipy(p: float) -> None:
    assert inverse_normal_cdf(p) == pytest.approx(float(_scipy_special.ndtri(p)), rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, math.nan])
def test_inverse_normal_rejects(p: float) -> None:
    with pytest.raises(ValueError, match="p:"):
        inverse_normal_cdf(p)


# --- protected number of records ---------------------------------------------------------------


def test_protected_count_is_n_plus_discrete_laplace() -> None:
    protected = protected_number_of_records(6000, 0.02, SeededTestNoiseSource(3))
    assert protected == SeededTestNoiseSource(3).laplace_integer(6000, 1 / 0.02)


def test_protected_count_statistics() -> None:
    # OpenDP's discrete Laplace of scale b = 2: E|X| = 2r / (1 - r^2) with r = exp(-1/b).
    eps_n, draws = 0.5, 10_000
    errors = np.array([protected_number_of_records(1000, eps_n) for _ in range(draws)]) - 1000
    r = math.exp(-eps_n)
    variance = 2 * r / (1 - r) ** 2
    assert abs(float(errors.mean())) < 5 * math.sqrt(variance / draws)
    assert float(np.abs(errors).mean()) == pytest.approx(2 * r / (1 - r * r), rel=0.05)


class _MostNegative(SeededTestNoiseSource):
    """A record-count noise far below the count."""

    def __init__(self) -> None:
        super().__init__(0)

    def _draw_laplace_integer(self, value: int, scale: float) -> int:
        return value - round(40 * scale)


def test_protected_count_must_be_positive() -> None:
    with pytest.raises(StageFailedError, match="number_of_records_epsilon_proportion") as info:
        protected_number_of_records(12345, 0.001, _MostNegative())
    assert "12345" not in str(info.value)


@pytest.mark.parametrize(("n", "eps"), [(-1, 0.1), (10, 0.0), (10, math.inf)])
def test_protected_count_rejects(n: int, eps: float) -> None:
    with pytest.raises(ValueError):
        protected_number_of_records(n, eps)


def test_protected_count_uses_the_production_source_by_default() -> None:
    results = {protected_number_of_records(10_000, 0.02) for _ in range(5)}
    assert len(results) > 1  # scale 50: five equal draws would be a broken source


# --- from the config ---------------------------------------------------------------------------


def test_noise_parameters_for_the_default_config() -> None:
    p = noise_parameters_for(DpConfig(), length=3, n_true=6000, source=SeededTestNoiseSource(6))
    assert p.protected_number_of_records is not None
    assert abs(p.protected_number_of_records - 6000) < 50 * 37  # P(|discrete Laplace(50)| > 37 b) ~ e^-37
    assert p.sigma_proportions == pytest.approx((1.0, 0.5, 1 / 3))
    expected = spec_params(n=p.protected_number_of_records, length=3, proportions=p.sigma_proportions)
    assert p == dataclasses.replace(expected, protected_number_of_records=p.protected_number_of_records)


def test_noise_parameters_for_without_count_protection() -> None:
    p = noise_parameters_for(DpConfig(number_of_records_epsilon_proportion=None), length=2, n_true=10_000)
    assert p.protected_number_of_records is None
    assert p.number_of_records_epsilon == 0.0
    assert_printed(p.delta, "1.0857e-5")


class _Forbidden(SeededTestNoiseSource):
    def __init__(self) -> None:
        super().__init__(0)

    def _draw_laplace_integer(self, value: int, scale: float) -> int:
        raise AssertionError("noise was drawn before the configuration was validated")


@pytest.mark.parametrize(
    "cfg",
    [
        DpConfig(accuracy_mode="custom"),
        DpConfig(percentile_epsilon_proportion=1.0),
        DpConfig(delta=1e-6, delta_factor=3.0),
        DpConfig(delta_factor=-1.0),
        DpConfig(epsilon=0.0),
    ],
    ids=["custom-without-sigmas", "qp-1", "delta-and-factor", "factor-negative", "epsilon-0"],
)
def test_bad_config_spends_no_budget(cfg: DpConfig) -> None:
    with pytest.raises(ConfigError):
        noise_parameters_for(cfg, length=3, n_true=1000, source=_Forbidden())
