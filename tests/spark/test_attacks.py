"""Measured attack risk: the control holdout, anonymeter's attacks, the report and the threshold.

The pure parts run without Spark. The pipeline tests run on 1,500 CTDC-shaped generated records
(no real records) with an extra high-cardinality ``district`` column: k-synthesis drops its rare
values, so the release is safe, while copies of real records keep them, which is what a
singling-out attack finds. Copies are planted through a test-only wrapper of
``ctdc_spark.evaluate.stage.attack_frames`` (what the attacks see), after the k-verification has read
the real synthetic records, so the failure proves the attack threshold and not the k-check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession

import ctdc_spark.evaluate.stage
from ctdc_spark import cli
from ctdc_spark._holdout import control_record_ids, control_size
from ctdc_spark.aggregate.stage import PreparedRun
from ctdc_spark.config import AttackConfig, load_config
from ctdc_spark.errors import ConfigError
from ctdc_spark.evaluate._attacks import (
    AttackFrames,
    default_aux_split,
    default_secrets,
    keyed_sample,
    not_run,
    run_attacks,
)
from ctdc_spark.evaluate._report import _attacks_section
from ctdc_spark.pipeline import run_pipeline
from tests.conftest import REPO, SeededTestNoiseSource

FAMILIES = ("singling_out_univariate", "singling_out_multivariate", "linkability")

# ---------------------------------------------------------------------------------------------
# Holdout rule (no Spark)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_records", "expected"),
    [(11, 0), (4_999, 0), (5_000, 500), (15_000, 1_500), (200_000, 2_000)],
    ids=["spec_8_1", "just_below", "smallest", "sample", "capped"],
)
def test_control_size_rule(n_records: int, expected: int) -> None:
    assert control_size(n_records, AttackConfig()) == expected


def test_control_size_is_zero_when_attacks_are_disabled() -> None:
    assert control_size(200_000, AttackConfig(enabled=False)) == 0


def test_control_records_are_a_keyed_choice() -> None:
    attacks = AttackConfig()
    chosen = control_record_ids(15_000, attacks, seed=1)
    assert len(chosen) == 1_500 and len(set(chosen.tolist())) == 1_500
    assert np.all(np.diff(chosen) > 0) and chosen[0] >= 0 and chosen[-1] < 15_000
    assert np.array_equal(chosen, control_record_ids(15_000, attacks, seed=1))
    assert len(np.intersect1d(chosen, control_record_ids(15_000, attacks, seed=2))) < 300
    # The draw of record r does not depend on how many records follow it.
    larger = control_record_ids(15_000, AttackConfig(control_share=0.2, control_max=3_000), seed=1)
    assert set(chosen.tolist()) <= set(larger.tolist())


def test_keyed_sample_depends_on_record_ids_not_on_row_order() -> None:
    frame = pd.DataFrame({"a": [str(i % 7) for i in range(100)]}, index=pd.RangeIndex(100, name="record_id"))
    sample = keyed_sample(frame, 10, seed=3, stream="test")
    shuffled = frame.sample(frac=1.0, random_state=5)
    assert sorted(keyed_sample(shuffled, 10, seed=3, stream="test").index) == sorted(sample.index)
    assert keyed_sample(frame, 200, seed=3, stream="test") is frame


def test_default_secrets_and_aux_split() -> None:
    frame = pd.DataFrame({"a": ["1", ""] * 3, "b": ["x", "y", "z"] * 2, "c": ["1"] * 6, "d": list("uvwxyz")})
    assert default_secrets(frame, 2) == ["d", "b"]
    assert default_aux_split(["a", "b", "c", "d", "e"]) == (["a", "b"], ["c", "d", "e"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("evaluation.attacks.control_share=1.5", r"evaluation\.attacks\.control_share: must be in \(0, 1\)"),
        (
            "evaluation.attacks.min_control=5000",
            r"evaluation\.attacks\.min_control: 5000 exceeds control_max",
        ),
        ("evaluation.attacks.max_risk=2", r"evaluation\.attacks\.max_risk: must be in \[0, 1\]"),
        ("evaluation.attacks.linkability_aux=[[a]]", r"evaluation\.attacks\.linkability_aux: give two"),
        ("evaluation.attacks.linkability_aux=[[a,b],[b]]", r"b is in both lists"),
        ("evaluation.attacks.secret_columns=[a,a]", r"evaluation\.attacks\.secret_columns: lists a column"),
        ("evaluation.attacks.n_attack=5", r"unknown setting\(s\) evaluation\.attacks\.n_attack"),
    ],
    ids=["share", "min_above_max", "risk", "aux_one_list", "aux_overlap", "secret_twice", "unknown_key"],
)
def test_attack_config_errors_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides=["input.path=x.csv", override])


# ---------------------------------------------------------------------------------------------
# The attacks on plain frames (anonymeter, no Spark)
# ---------------------------------------------------------------------------------------------


def _population(n: int, seed: int) -> pd.DataFrame:
    """CTDC-shaped records as the attacks see them (``""`` = no attribute), with a ``district``."""
    from tools.ctdc_model import generate_ctdc_like

    columns = list(load_config(REPO / "conf/ctdc_global.yaml").input.use_columns)
    frame = generate_ctdc_like(n, seed)[columns].replace({"-99": "", "0": ""})
    rng = np.random.default_rng(seed)
    frame["district"] = [f"d{int(v)}" for v in rng.integers(0, 1_000_000, n)]  # about one per person
    frame.index = pd.RangeIndex(n, name="record_id")
    return frame.astype(str)


SMALL = AttackConfig(n_attacks=200, max_attempts=3_000, secret_columns=("gender",))


def test_copies_of_the_training_records_are_found_and_an_independent_sample_is_not() -> None:
    people = _population(3_000, seed=1)
    # The generator writes its rows in year and data-source order: split at random, as a run does.
    held_out = people.index.isin(
        control_record_ids(3_000, AttackConfig(control_share=0.2, min_control=1), seed=1)
    )
    control, training = people[held_out], people[~held_out]
    copies = {r.name: r for r in run_attacks(AttackFrames(training, control, training), SMALL, seed=1)}
    independent = _population(4_000, seed=2)
    fresh = {r.name: r for r in run_attacks(AttackFrames(training, control, independent), SMALL, seed=1)}
    assert set(copies) == {*FAMILIES, "inference:gender"}
    # Singling out is judged in as many training records as there are control records (600 of
    # 2,400), so a copied record's query can only succeed when its person is among them. The
    # univariate queries are drawn from anonymeter's polars group-by, whose order follows a hash
    # seeded per process, so that risk moves between runs (0.19-0.31 in ten processes, interval
    # low end 0.14-0.24): judge the estimate, more than 4 standard deviations above 0.1.
    for name in ("singling_out_univariate", "singling_out_multivariate"):
        assert copies[name].risk > 0.1, name
    for name in ("linkability", "inference:gender"):
        assert copies[name].ci[0] > 0.5, name
    for name, result in fresh.items():
        assert result.ci[0] < 0.05, name
        assert result.ci[0] <= result.risk <= result.ci[1]
        assert result.n_attacks == 200 and 0 < result.n_control_attacks <= 200


def test_unknown_secret_column_names_the_key() -> None:
    people = _population(1_000, seed=1)
    attacks = AttackConfig(n_attacks=50, secret_columns=("nonexistent",))
    with pytest.raises(
        ConfigError, match=r"evaluation\.attacks\.secret_columns: nonexistent is not a column"
    ):
        run_attacks(AttackFrames(people, people.iloc[:100], people), attacks, seed=1)


# ---------------------------------------------------------------------------------------------
# The pipeline: report, threshold, holdout
# ---------------------------------------------------------------------------------------------

ATTACK_SETTINGS = (
    "evaluation.attacks.control_share=0.2",
    "evaluation.attacks.min_control=100",
    "evaluation.attacks.n_attacks=200",
    "evaluation.attacks.max_attempts=3000",
    "evaluation.attacks.secret_columns=[gender, isSexualExploit]",
)


@pytest.fixture(scope="module")
def people_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("attacks") / "people.csv"
    _population(1_500, seed=4).replace("", "-99").to_csv(path, index=False)
    return path


def _config(path: Path, csv: Path, out: Path) -> Path:
    columns = [*load_config(REPO / "conf/ctdc_global.yaml").input.use_columns, "district"]
    lines = [
        "input:",
        f"  path: {csv}",
        f"  use_columns: [{', '.join(columns)}]",
        '  unknown_values: ["", "-99"]',
        "privacy:",
        "  resolution: 10",
        "  reporting_length: 3",
        "synthesis:",
        "  seed: 5",
        "output:",
        f"  root: {out}",
        "spark:",
        "  master: local[2]",
        "  conf:",
        '    spark.sql.shuffle.partitions: "2"',
        '    spark.default.parallelism: "2"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _private(out: Path, run_id: str) -> dict[str, Any]:
    return json.loads((out / "private" / run_id / "evaluation_private.json").read_text())


def _assert_measured(attacks: dict[str, Any], secrets: tuple[str, ...]) -> None:
    assert attacks["status"] == "run"
    assert set(attacks["attacks"]) == {*FAMILIES, *(f"inference:{s}" for s in secrets)}
    for result in attacks["attacks"].values():
        low, high = result["ci"]
        assert 0 <= low <= result["risk"] <= high <= 1
        for rate in ("attack_rate", "baseline_rate", "control_rate"):
            assert 0 <= result[rate] <= 1


@pytest.fixture
def planted_copies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Test-only hook: the attacks see the synthetic records plus a copy of every training record."""
    real = ctdc_spark.evaluate.stage.attack_frames

    def with_copies(prepared: PreparedRun, synthetic: DataFrame, control_ids: Any) -> AttackFrames:
        frames = real(prepared, synthetic, control_ids)
        copies = frames.training.set_axis(frames.training.index + 10_000_000)
        return AttackFrames(frames.training, frames.control, pd.concat([frames.synthetic, copies]))

    monkeypatch.setattr(ctdc_spark.evaluate.stage, "attack_frames", with_copies)
    yield


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.usefixtures("restore_logging")
def test_planted_copies_fail_the_run_on_the_attack_threshold(
    spark: SparkSession, people_csv: Path, tmp_path: Path, planted_copies: None
) -> None:
    out = tmp_path / "out"
    config = _config(tmp_path / "config.yaml", people_csv, out)
    sets = [arg for setting in ATTACK_SETTINGS for arg in ("--set", setting)]

    assert cli.main(["run", "--config", str(config), "--run-id", "planted", *sets]) == 3

    assert not (out / "release" / "planted").exists() and not (out / "release" / "latest").exists()
    assert (out / "private/planted/pending/synthetic_microdata.csv").exists()
    assert not (out / "staging/planted/synthetic_microdata.csv").exists()
    assert not (out / "staging/planted/evaluation.json").exists()
    evaluation = _private(out, "planted")
    assert evaluation["verification"]["verified"]  # the k-check passed: the attacks failed the run
    attacks = evaluation["attacks"]
    _assert_measured(attacks, ("gender", "isSexualExploit"))
    # Linkability finds a copied record's twin every time; the univariate singling-out risk moves
    # between runs (see the test above), so it is not the one this checks.
    assert "linkability" in attacks["exceeding_max_risk"]
    for name in attacks["exceeding_max_risk"]:
        assert attacks["attacks"][name]["ci"][0] > attacks["max_risk"], name


@pytest.mark.spark
@pytest.mark.slow
def test_release_reports_attacks_privately_and_holds_out_the_control_records(
    spark: SparkSession, people_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = _config(tmp_path / "config.yaml", people_csv, out)
    sets = [arg for setting in ATTACK_SETTINGS for arg in ("--set", setting)]
    assert cli.main(["run", "--config", str(config), "--run-id", "safe", *sets]) == 0

    evaluation = _private(out, "safe")
    attacks = evaluation["attacks"]
    _assert_measured(attacks, ("gender", "isSexualExploit"))
    assert attacks["exceeding_max_risk"] == []
    assert (attacks["control_records"], attacks["training_records"]) == (300, 1_200)
    report = (out / "private/safe/evaluation_report.html").read_text(encoding="utf-8")
    assert "Measured attack risk" in report and "singling_out_multivariate" in report
    for public in ("evaluation.json", "metadata.json"):
        assert "attack" not in (out / "release/safe" / public).read_text(encoding="utf-8")
    # The control records support no synthetic record: each synthetic record is k-supported by
    # the training records alone (the k-verification counts everyone).
    records = spark.read.format("delta").load(str(out / "tables/records")).where("run_id = 'safe'")
    synthetic = (
        spark.read.format("delta").load(str(out / "tables/synthetic_records")).where("run_id = 'safe'")
    )
    attack_config = load_config(config, overrides=list(ATTACK_SETTINGS)).evaluation.attacks
    control = set(control_record_ids(1_500, attack_config, seed=5).tolist())
    training = [set(r["attrs"]) for r in records.collect() if r["record_id"] not in control]
    for row in synthetic.collect():
        attrs = set(row["attrs"])
        if attrs:
            assert sum(attrs <= record for record in training) >= 10


@pytest.mark.spark
@pytest.mark.slow
def test_dp_run_reports_the_three_attack_families(
    spark: SparkSession, people_csv: Path, tmp_path: Path
) -> None:
    # What this checks is the report, not where 1,500 records at epsilon 4 fall against the
    # threshold: with OpenDP's unseeded noise the inference risk's interval straddles 0.1 on some
    # runs. So the noise is seeded and the threshold is out of the way.
    dp = ("privacy.dp.epsilon=4", "synthesis.mode=aggregate_seeded", "evaluation.attacks.max_risk=1")
    cfg = load_config(
        _config(tmp_path / "config.yaml", people_csv, tmp_path / "out"), overrides=[*ATTACK_SETTINGS, *dp]
    )
    summary = run_pipeline(spark, cfg, run_id="dp", noise_source=SeededTestNoiseSource(17))
    assert summary.release_dir is not None
    attacks = _private(tmp_path / "out", "dp")["attacks"]
    _assert_measured(attacks, ("gender", "isSexualExploit"))
    assert attacks["control_held_out_of"] == "published aggregates only"


@pytest.mark.spark
@pytest.mark.slow
def test_without_anonymeter_the_report_says_how_to_install_it(
    spark: SparkSession, people_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctdc_spark.evaluate.stage, "anonymeter_available", lambda: False)
    out = tmp_path / "out"
    config = _config(tmp_path / "config.yaml", people_csv, out)
    sets = [arg for setting in ATTACK_SETTINGS for arg in ("--set", setting)]
    assert cli.main(["run", "--config", str(config), "--run-id", "missing", *sets]) == 0
    attacks = _private(out, "missing")["attacks"]
    assert attacks["status"] == "not_run" and "anonymeter==1.1.0" in attacks["install"]
    assert "--no-deps" in attacks["install"]
    required = [*sets, "--set", "evaluation.attacks.required=true"]
    assert cli.main(["run", "--config", str(config), "--run-id", "required", *required]) == 3
    assert not (out / "release" / "required").exists()


def test_report_explains_attacks_that_did_not_run() -> None:
    section = _attacks_section(not_run("11 sensitive records give too few control records.", install=True))
    assert "Not measured: 11 sensitive records" in section and "--no-deps" in section
