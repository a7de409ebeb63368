"""End to end in differential-privacy mode: DP marginals, DP aggregate-seeded synthesis, the DP
guarantee in the release metadata, the public statements and the explorer (issue: DP)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctdc_spark.io import delta as delta_io
from ctdc_spark.io.files import verify_bundle
from ctdc_spark.schemas import RUNS
from tests.conftest import job_config, run_stages

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def dp_release(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.ctdc_model import generate_ctdc_like

    base = tmp_path_factory.mktemp("dp_e2e")
    data = base / "ctdc.csv"
    generate_ctdc_like(1500, seed=8).to_csv(data, index=False)
    cfg = job_config(
        data,
        base / "out",
        "input.unknown_values=['', '-99']",
        "privacy.reporting_length=2",
        "privacy.dp={epsilon: 4.0, dataset_id: ctdc-test}",
        "synthesis.mode=fitted",
        "synthesis.seed=3",
        "explorer.release_date=2026-01-01",
    )
    stages = ["prepare", "aggregate", "synthesize", "evaluate", "publish"]
    summary = run_stages(spark, cfg, stages, run_id="dp")
    assert summary.release_dir is not None
    return Path(summary.release_dir)


def test_release_states_the_dp_guarantee(dp_release: Path) -> None:
    assert verify_bundle(dp_release) == []
    metadata = json.loads((dp_release / "metadata.json").read_text())
    assert metadata["guarantee"]["type"] == "dp-aggregates" and metadata["guarantee"]["verified"] is True
    assert "differential-privacy guarantee" in metadata["guarantee"]["statement"]
    assert "minimum_support" not in metadata["guarantee"]  # nothing derived from exact counts
    privacy = metadata["privacy"]
    assert privacy["epsilon"] == 4.0 and 0 < privacy["delta"] < 1
    assert privacy["guarantee"] == "(ε, δ)-differential privacy"
    lines = (dp_release / "reportable_aggregates.tsv").read_text().splitlines()
    assert lines[0] == "selections\tprotected_count"
    assert int(lines[1].split("\t")[1]) == privacy["protected_number_of_records"]
    assert metadata["parameters"]["reportable_record_count"] == privacy["protected_number_of_records"]
    # The accounting as OpenDP states it, within the configured budget; counts are integers.
    accounting = privacy["accounting"]
    assert accounting["library"].startswith("OpenDP ") and accounting["proven"] is True
    assert 0 < accounting["epsilon"] <= privacy["epsilon"] and accounting["delta"] == privacy["delta"]
    assert {m["mechanism"] for m in accounting["measurements"] if m["component"] == "counts"} == {
        "discrete Gaussian"
    }


def test_public_statements_and_explorer_speak_of_dp(dp_release: Path) -> None:
    evaluation = json.loads((dp_release / "evaluation.json").read_text())
    official = next(s for s in evaluation["statements"] if s["id"] == "official_privacy")
    assert "differentially private" in official["title"]
    page = (dp_release / "explorer/index.html").read_text()
    assert re.search(r'"privacy_mode":\s*"dp"', page)


def test_manifest_ledger_records_the_budget(spark: SparkSession, dp_release: Path) -> None:
    root = dp_release.parent.parent
    rows = (
        delta_io.read_table(spark, RUNS, root=str(root))
        .where((F.col("stage") == "aggregate") & (F.col("status") == "SUCCEEDED"))
        .select("privacy")
        .collect()
    )
    assert len(rows) == 1 and rows[0]["privacy"]["epsilon"] == 4.0
