"""Measured attack risk: anonymeter's singling-out, linkability and inference attacks (private).

k-support (``_verify``) is the guarantee; these attacks are the evidence regulators and the
synthetic-data field ask for besides it (Giomi et al., "A Unified Framework for Quantifying
Privacy Risk in Synthetic Data", PETS 2023, the method of anonymeter). Each attack is run twice
with the synthetic records as the attacker's knowledge: against *training* records (the ones
synthesis used) and against *control* records (held out of synthesis, :mod:`ctdc_spark._holdout`).
The risk is how much better it does on training than on control, ``(attack - control) /
(1 - control)``, with a 95% interval; a random-guessing *baseline* shows whether the attack is
informative at all.

Runs on the driver over pandas frames of at most a few hundred thousand rows (plain Python and
numba inside anonymeter; no Spark). Sizing (benchmarks/attacks.md): the attacker holds a sample of
``synthetic_sample`` synthetic records, linkability and inference attack ``n_attacks`` training and
control records each, singling-out tries at most ``max_attempts`` queries. The targets and the
synthetic sample are chosen by the counter-based hash of
:mod:`ctdc_spark._random` keyed by record id, so they do not depend on partitioning; anonymeter's
random baselines and its control-size correction draw unseeded randomness of their own, and its
univariate singling-out queries follow the order of a polars group-by (hashed with a per-process
seed), so a rerun may move a rate within its interval.

Nothing here logs or returns a record value: results carry column names, counts and rates.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ctdc_spark._random import stage_key, uniforms
from ctdc_spark.config import AttackConfig
from ctdc_spark.errors import ConfigError

log = logging.getLogger(__name__)

ANONYMETER_VERSION = "1.1.0"
INSTALL_COMMAND = (
    f'pip install -e ".[privacy-eval]" && pip install --no-deps anonymeter=={ANONYMETER_VERSION}'
)
"""anonymeter 1.1.0 declares numpy<1.27 and pyarrow<22 although it runs on ours (tests/spark/test_attacks.py),
so it is installed without its stale pins; the `privacy-eval` extra brings its real dependencies."""

DEFAULT_SECRETS = 3
"""Without ``secret_columns``, inference targets the columns with the most distinct values."""

CONFIDENCE = 0.95

EXPLANATIONS = {
    "singling_out_univariate": "Guesses that one value, rare in the synthetic records, describes exactly "
    "one real person.",
    "singling_out_multivariate": "Guesses that a combination of values of one synthetic record describes "
    "exactly one real person.",
    "linkability": "Links two halves of a person's columns through their nearest synthetic record.",
    "inference": "Guesses a person's secret column from their other columns via the nearest synthetic "
    "record.",
}


@dataclass(frozen=True)
class AttackFrames:
    """The attacker's knowledge and the people attacked, one string column per source column.

    ``""`` is "no attribute" (unknown or absent); the index is the record id.
    """

    training: pd.DataFrame
    """The sensitive records synthesis used."""
    control: pd.DataFrame
    """The held-out sensitive records."""
    synthetic: pd.DataFrame


@dataclass(frozen=True)
class AttackResult:
    """One attack's outcome (rates are fractions; errors are the 95% half-widths)."""

    name: str
    family: str
    risk: float
    ci: tuple[float, float]
    attack_rate: float
    attack_error: float
    baseline_rate: float
    baseline_error: float
    control_rate: float
    control_error: float
    n_attacks: int
    n_control_attacks: int
    columns: tuple[str, ...]
    settings: Mapping[str, Any]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON form (column names, counts and rates only)."""
        return {
            "family": self.family,
            "explanation": EXPLANATIONS[self.family],
            "risk": self.risk,
            "ci": list(self.ci),
            "attack_rate": self.attack_rate,
            "attack_error": self.attack_error,
            "baseline_rate": self.baseline_rate,
            "baseline_error": self.baseline_error,
            "control_rate": self.control_rate,
            "control_error": self.control_error,
            "informative": self.attack_rate > self.baseline_rate,
            "n_attacks": self.n_attacks,
            "n_control_attacks": self.n_control_attacks,
            "columns": list(self.columns),
            "settings": dict(self.settings),
            "seconds": round(self.seconds, 2),
        }


def anonymeter_available() -> bool:
    """Whether anonymeter (the optional ``privacy-eval`` dependency) can be imported."""
    try:
        import anonymeter.evaluators  # noqa: F401
    except ImportError:
        return False
    return True


def not_run(reason: str, *, install: bool = False) -> dict[str, Any]:
    """The ``attacks`` section of a run whose attacks did not run, saying why."""
    section: dict[str, Any] = {"status": "not_run", "reason": reason}
    if install:
        section["install"] = INSTALL_COMMAND
    return section


def keyed_sample(frame: pd.DataFrame, size: int, *, seed: int, stream: str) -> pd.DataFrame:
    """The ``size`` rows with the smallest keyed draws of their record id (all rows when fewer)."""
    if len(frame) <= size:
        return frame
    draws = uniforms(stage_key(seed, stream), frame.index.to_numpy(dtype=np.int64))
    return frame.iloc[np.sort(np.argsort(draws, kind="stable")[:size])]


def default_secrets(training: pd.DataFrame, count: int = DEFAULT_SECRETS) -> list[str]:
    """The ``count`` columns with the most distinct values (ties in column order)."""
    distinct = training.nunique()
    order = sorted(range(len(distinct)), key=lambda i: (-int(distinct.iloc[i]), i))
    return [str(training.columns[i]) for i in order[:count]]


def default_aux_split(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """The columns in config order, cut into a first and a second half."""
    half = len(columns) // 2
    return list(columns[:half]), list(columns[half:])


@contextlib.contextmanager
def _contained() -> Iterator[None]:
    """Quiet anonymeter and pin the global numpy state it samples from, then restore both.

    anonymeter draws some targets and guesses with pandas' ``sample()`` on numpy's global
    generator; seeding it here (and putting the caller's state back) makes those draws repeatable
    without the library touching anyone else's randomness. Its log lines and warnings carry
    counts only; they are replaced by the numbers in the report.
    """
    state = np.random.get_state()
    logger = logging.getLogger("anonymeter")
    level = logger.level
    logger.setLevel(logging.ERROR)
    np.random.seed(0x5EED)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(state)
        logger.setLevel(level)


def _result(
    name: str,
    family: str,
    evaluator: Any,
    *,
    columns: Sequence[str],
    settings: Mapping[str, Any],
    seconds: float,
) -> AttackResult:
    with warnings.catch_warnings():
        # anonymeter warns when the attack does no better than the baseline; `informative` says so.
        warnings.simplefilter("ignore")
        results = evaluator.results(confidence_level=CONFIDENCE)
    risk = results.risk()
    control = results.control_rate
    return AttackResult(
        name=name,
        family=family,
        risk=float(risk.value),
        ci=(float(risk.ci[0]), float(risk.ci[1])),
        attack_rate=float(results.attack_rate.value),
        attack_error=float(results.attack_rate.error),
        baseline_rate=float(results.baseline_rate.value),
        baseline_error=float(results.baseline_rate.error),
        control_rate=float(control.value),
        control_error=float(control.error),
        n_attacks=int(results.n_attacks_ori),
        n_control_attacks=int(results.n_attacks_control),
        columns=tuple(columns),
        settings=settings,
        seconds=seconds,
    )


def _timed(run: Callable[[], object]) -> float:
    """Wall seconds of one evaluator's ``evaluate`` call, run under :func:`_contained`."""
    start = time.perf_counter()
    with _contained():
        run()
    return time.perf_counter() - start


def run_attacks(frames: AttackFrames, attacks: AttackConfig, *, seed: int) -> list[AttackResult]:
    """Run every attack family and return one result per attack.

    Args:
        frames: Training, control and synthetic records.
        attacks: ``evaluation.attacks``.
        seed: The run's synthesis seed (keys the choice of targets and of the synthetic sample).

    Returns:
        ``singling_out_univariate``, ``singling_out_multivariate``, ``linkability`` and one
        ``inference:<secret>`` per secret column.

    Raises:
        ConfigError: a configured secret or linkability column is not a column of the records.
    """
    from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

    columns = [str(c) for c in frames.training.columns]
    secrets_, aux = _checked_columns(columns, attacks, frames.training)
    n = attacks.n_attacks
    targets = keyed_sample(frames.training, n, seed=seed, stream="attack-targets")
    control_targets = keyed_sample(frames.control, n, seed=seed, stream="attack-control-targets")
    # The attacker's share of the synthetic records: every attack's cost grows with it (query
    # generation checks each candidate against it, the neighbour searches scan it), and an attacker
    # holding a sample still makes valid guesses (benchmarks/attacks.md measures what it costs).
    attacker_view = frames.synthetic
    if attacks.synthetic_sample:
        attacker_view = keyed_sample(
            attacker_view, attacks.synthetic_sample, seed=seed, stream="attack-synthetic"
        )
    known = {"synthetic_records_known": len(attacker_view)}
    # Singling out is judged in as many training records as there are control records: a query
    # singles out more often in a smaller set, and anonymeter's correction for unequal sizes
    # reported a risk of about 0.1 for synthetic records that were an independent sample of the
    # same population (benchmarks/attacks.md).
    singled_in = keyed_sample(frames.training, len(frames.control), seed=seed, stream="attack-singling-out")
    results = []
    for mode in ("univariate", "multivariate"):
        singling_out = SinglingOutEvaluator(
            ori=singled_in,
            syn=attacker_view,
            n_attacks=n,
            n_cols=attacks.singling_out_columns,
            control=frames.control,
            max_attempts=attacks.max_attempts,
            seed=stage_key(seed, f"attack-singling-out-{mode}"),
        )
        seconds = _timed(functools.partial(singling_out.evaluate, mode=mode))
        settings: dict[str, Any] = {
            **known,
            "n_cols": 1 if mode == "univariate" else attacks.singling_out_columns,
            "max_attempts": attacks.max_attempts,
            "queries_found": len(singling_out.queries()),
            "training_records_singled_in": len(singled_in),
        }
        name = f"singling_out_{mode}"
        results.append(_result(name, name, singling_out, columns=columns, settings=settings, seconds=seconds))
    attacked = min(n, len(targets))
    linkability = LinkabilityEvaluator(
        ori=targets,
        syn=attacker_view,
        aux_cols=aux,
        n_attacks=attacked,
        n_neighbors=1,
        control=control_targets,
    )
    seconds = _timed(functools.partial(linkability.evaluate, n_jobs=1))
    results.append(
        _result(
            "linkability",
            "linkability",
            linkability,
            columns=[*aux[0], *aux[1]],
            settings={**known, "aux_cols": [aux[0], aux[1]], "n_neighbors": 1},
            seconds=seconds,
        )
    )
    for secret in secrets_:
        others = [c for c in columns if c != secret]
        inference = InferenceEvaluator(
            ori=targets,
            syn=attacker_view,
            aux_cols=others,
            secret=secret,
            n_attacks=attacked,
            control=control_targets,
        )
        seconds = _timed(functools.partial(inference.evaluate, n_jobs=1))
        settings = {**known, "secret": secret, "aux_cols": len(others)}
        results.append(
            _result(
                f"inference:{secret}",
                "inference",
                inference,
                columns=[secret],
                settings=settings,
                seconds=seconds,
            )
        )
    for r in results:
        log.info("attack %s: risk %.3f [%.3f, %.3f] in %.1fs", r.name, r.risk, *r.ci, r.seconds)
    return results


def _checked_columns(
    columns: Sequence[str], attacks: AttackConfig, training: pd.DataFrame
) -> tuple[list[str], tuple[list[str], list[str]]]:
    known = set(columns)
    for key, names in (
        ("secret_columns", attacks.secret_columns),
        ("linkability_aux", [c for side in attacks.linkability_aux for c in side]),
    ):
        unknown = [c for c in names if c not in known]
        if unknown:
            raise ConfigError(
                f"evaluation.attacks.{key}: {', '.join(unknown)} is not a column of the prepared "
                "records; use names of input.use_columns (or of a multi-value column's indicators)."
            )
    secrets_ = list(attacks.secret_columns) or default_secrets(training)
    aux = (
        (list(attacks.linkability_aux[0]), list(attacks.linkability_aux[1]))
        if attacks.linkability_aux
        else default_aux_split(columns)
    )
    return secrets_, aux


def exceeding(results: Sequence[AttackResult], max_risk: float) -> list[AttackResult]:
    """The attacks whose risk's lower 95% bound is above ``max_risk``."""
    return [r for r in results if r.ci[0] > max_risk]
