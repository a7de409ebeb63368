"""DP percentile (SPEC.md 3.4.1): SDS's reference score vectors, R-8 quantile, report-noisy-max.

Pure Python, no Spark.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctdc_spark.dp import _percentile
from ctdc_spark.dp._noise import NoiseSource, fixed_noise_for_tests
from ctdc_spark.dp._percentile import dp_percentile, percentile_scores, r8_quantile

# --- reference vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        ([0, 1, 4, 5, 5, 8, 11, 12, 12, 15], [-5, -4, -4, -4, -3, -1, -1, -1, 0, -1, -1, -1, -3, -3, -3, -4]),
        ([5, 4], [-2, -2, -2, -2, 0, -1]),
        ([4], [-1, -1, -1, -1, 0]),
        ([], []),
    ],
    ids=["spec-ten", "spec-two", "spec-one", "spec-empty"],
)
def test_spec_reference_vectors(x: list[int], expected: list[int]) -> None:
    assert percentile_scores(x, 60).tolist() == expected


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        ([15, 1, 4, 5, 7, 8, 11, 12, 13, 0], [-5, -4, -4, -4, -3, -2, -2, -1, 0, -1, -1, -1, -2, -3, -3, -4]),
        ([4] * 10, [-6, -6, -6, -6, 0]),
        ([4] * 8 + [5, 5], [-6, -6, -6, -6, 0, -4]),
        (list(range(2, 12)), [-6, -6, -5, -4, -3, -2, -1, 0, -1, -2, -3, -4]),
    ],
    ids=["unsorted", "all-equal", "equal-then-max", "consecutive"],
)
def test_sds_unit_test_vectors(x: list[int], expected: list[int]) -> None:
    # The remaining cases of SDS's tests/dp/percentile.rs (validate_quality_score_iter).
    assert percentile_scores(x, 60).tolist() == expected


def _reference_scores(x: list[int], q_percent: float) -> list[int]:
    """Literal re-statement of SDS's QualityScoreIter (one candidate at a time)."""
    xs = sorted(x)
    if not xs:
        return []
    n, p = len(xs), q_percent / 100.0
    percentile = math.floor(r8_quantile(xs, p))
    i_p = max(i for i, v in enumerate(xs) if v <= percentile)
    v_p, v_max = xs[i_p], xs[-1]
    last = {v: i for i, v in enumerate(xs)}
    previous: int | None = None
    out = []
    for v in range(v_max + 1):
        if v < v_p:
            if v in last:
                q = i_p - last[v]
            elif previous is not None:
                q = max(previous, 1)
            else:
                q = math.ceil(n * p)
        elif v == v_p:
            q = 0
        elif v == v_max:
            q = math.ceil(n * (1.0 - p))
        elif v in last:
            q = last[v] - i_p
        else:
            assert previous is not None
            q = max(previous, 1)
        previous = q
        out.append(-q)
    return out


_counts = st.lists(st.integers(0, 40), max_size=60)
_percents = st.one_of(st.sampled_from([1.0, 50.0, 60.0, 95.0, 99.0, 100.0]), st.floats(0.5, 100.0))


@settings(max_examples=500, deadline=None)
@given(x=_counts, q=_percents)
def test_vectorised_scores_match_the_literal_restatement(x: list[int], q: float) -> None:
    assert percentile_scores(x, q).tolist() == _reference_scores(x, q)


@given(x=_counts.filter(bool), q=_percents)
def test_score_properties(x: list[int], q: float) -> None:
    scores = percentile_scores(x, q)
    assert scores.dtype == np.int64
    assert scores.size == max(x) + 1
    assert np.all(scores <= 0)
    v_p = max(v for v in x if v <= math.floor(r8_quantile(sorted(x), q / 100)))
    assert scores[v_p] == 0
    if q < 100:
        assert np.count_nonzero(scores == 0) == 1
    # Order of the input does not matter.
    assert percentile_scores(list(reversed(x)), q).tolist() == scores.tolist()


def test_sds_score_is_not_sensitivity_one_known_issue() -> None:
    # Characterises SDS behaviour we reproduce on purpose (reported; see the module docstring):
    # adding one record with |W| = 1 moves the score of v = 0 by 2, so the exponential noise with
    # rate eps_Q / 2 does not give exactly eps_Q-DP.
    assert percentile_scores([0, 1], 60).tolist() == [0, -1]
    assert percentile_scores([0, 1, 1], 60).tolist() == [-2, 0]


# --- R-8 quantile ------------------------------------------------------------------------------


@given(
    x=st.lists(st.integers(0, 1000), min_size=1, max_size=50),
    tau=st.floats(0.0, 1.0),
)
def test_r8_matches_numpy_median_unbiased(x: list[int], tau: float) -> None:
    xs = sorted(x)
    expected = float(np.quantile(np.array(xs, dtype=np.float64), tau, method="median_unbiased"))
    assert r8_quantile(xs, tau) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_r8_edges() -> None:
    assert r8_quantile([0, 1, 4, 5, 5, 8, 11, 12, 12, 15], 0.6) == pytest.approx(9.6)
    assert r8_quantile([3, 9], 0.0) == 3.0
    assert r8_quantile([3, 9], 1.0) == 9.0
    assert r8_quantile([7], 0.99) == 7.0
    assert math.isnan(r8_quantile([], 0.5))
    with pytest.raises(ValueError, match="tau"):
        r8_quantile([1], 1.5)


# --- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "match"),
    [([1, -3], ">= 0"), ([1.5, 2.0], "whole numbers"), ([math.nan], "whole numbers")],
    ids=["negative", "fraction", "nan"],
)
def test_scores_reject_bad_counts_without_echoing_them(x: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        percentile_scores(x, 60)
    assert "-3" not in str(info.value) and "1.5" not in str(info.value)


def test_scores_accept_integral_floats_and_numpy() -> None:
    assert percentile_scores(np.array([5.0, 4.0]), 60).tolist() == [-2, -2, -2, -2, 0, -1]
    assert percentile_scores(np.array([5, 4], dtype=np.uint16), 60).tolist() == [-2, -2, -2, -2, 0, -1]


@pytest.mark.parametrize("q", [0.0, -1.0, 100.5, math.nan])
def test_scores_reject_bad_percent(q: float) -> None:
    with pytest.raises(ValueError, match="q_percent"):
        percentile_scores([1, 2], q)


@pytest.mark.parametrize("eps", [0.0, -1.0, math.inf])
def test_dp_percentile_rejects_bad_epsilon(eps: float) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        dp_percentile([1, 2], 99, eps)


# --- report-noisy-max --------------------------------------------------------------------------


class _Forbidden(NoiseSource):
    def words(self, n: int) -> npt.NDArray[np.uint64]:
        if n:
            raise AssertionError("no noise should be drawn")
        return np.zeros(0, dtype=np.uint64)


class _Constant(NoiseSource):
    """Identical noise for every candidate, so the noisy argmax is the plain argmax."""

    def words(self, n: int) -> npt.NDArray[np.uint64]:
        return np.full(n, 2**63, dtype=np.uint64)


def test_empty_input_selects_zero_without_noise() -> None:
    assert dp_percentile([], 99, 0.1, source=_Forbidden()) == 0


def test_equal_noise_selects_the_percentile_value() -> None:
    assert dp_percentile([0, 1, 4, 5, 5, 8, 11, 12, 12, 15], 60, 0.1, source=_Constant()) == 8
    assert dp_percentile([4] * 10, 60, 0.1, source=_Constant()) == 4


def test_ties_keep_the_first_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        _percentile, "percentile_scores", lambda x, q: np.array([-1, 0, 0, 0], dtype=np.int64)
    )
    assert dp_percentile([3], 60, 1.0, source=_Constant()) == 1


@settings(max_examples=50, deadline=None)
@given(x=_counts.filter(bool), q=st.sampled_from([60.0, 95.0, 99.0]))
def test_result_is_a_candidate(x: list[int], q: float) -> None:
    with fixed_noise_for_tests(1):
        assert 0 <= dp_percentile(x, q, 0.05) <= max(x)


def test_large_epsilon_recovers_the_percentile() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 50, size=500)
    scores = percentile_scores(x, 99)
    with fixed_noise_for_tests(2):
        picks = [dp_percentile(x, 99, 1000.0) for _ in range(50)]
    assert set(picks) == {int(np.argmax(scores))}


def test_selection_probability_matches_the_noise_rate() -> None:
    # Scores [0, -1] (x = [0, 1], Q = 60). With E0, E1 ~ Exp(r), P(pick 1) = P(E1 - E0 > 1) = exp(-r)/2.
    epsilon, draws = 1.0, 20_000
    assert percentile_scores([0, 1], 60).tolist() == [0, -1]
    with fixed_noise_for_tests(31):
        picks = np.array([dp_percentile([0, 1], 60, epsilon) for _ in range(draws)])
    observed = float(picks.mean())
    expected = math.exp(-epsilon / 2) / 2
    sd = math.sqrt(expected * (1 - expected) / draws)
    assert abs(observed - expected) < 5 * sd
    # Negative control: half the noise (rate eps instead of eps/2) would give exp(-1)/2 = 0.18.
    half_noise = math.exp(-epsilon) / 2
    assert abs(observed - half_noise) > 20 * sd


def test_production_noise_is_used_by_default() -> None:
    x = list(range(30))
    picks = {dp_percentile(x, 50, 0.01) for _ in range(20)}
    assert len(picks) > 1  # eps = 0.01: near-uniform choice over 30 candidates
