"""The SDS comparison's pure parts: its SDS command lines, the run-log parser and the report. No Spark.

The benchmark must call SDS as its README does (the same columns, k and L; the aggregates JSON
where a mode needs it), read our stage seconds from the JSON log only, and compare like with like.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.bench_vs_sds import (
    comparison_rows,
    markdown,
    ratio,
    sds_command,
    sds_steps,
    stage_seconds_from_log,
)


def _phase(seconds: float, **extra: Any) -> dict[str, Any]:
    return {"seconds": seconds, "cpu_seconds": seconds, "peak_tree_mb": 100.0, **extra}


def test_sds_is_called_with_every_column_and_the_aggregates_json_where_a_mode_reads_it() -> None:
    steps = sds_steps(Path("/w"), length=3, modes=["row_seeded", "aggregate_seeded"])
    cmd = sds_command(
        "sds-cli", Path("/w/in.csv"), ["a", "b"], resolution=10, threads=2, step=steps["aggregate"]
    )

    assert list(steps) == ["aggregate", "generate:row_seeded", "generate:aggregate_seeded"]
    # --use-columns takes several values: the columns come before another option, never last.
    assert cmd[:5] == ["sds-cli", "--use-columns", "a", "--use-columns", "b"]
    assert cmd[5:9] == ["--resolution", "10", "--sensitive-path", "/w/in.csv"]
    assert cmd[9:13] == ["--sensitive-delimiter", ",", "--n-threads", "2"]
    assert cmd[13:] == steps["aggregate"]
    assert steps["aggregate"][steps["aggregate"].index("--reporting-length") + 1] == "3"
    assert "--aggregates-json" not in steps["generate:row_seeded"]
    assert "/w/sds_aggregates.json" in steps["generate:aggregate_seeded"]


def test_stage_seconds_come_from_our_json_log_lines_only() -> None:
    lines = [
        ":: resolving dependencies :: org.apache.spark#spark-submit-parent",
        json.dumps({"message": "stage prepare started (run r-1)"}),
        json.dumps({"message": "stage prepare finished in 12.5s (attributes=204, records=15000)"}),
        json.dumps({"message": "stage aggregate finished in 3.0s (no rows)"}),
        "{not json",
    ]

    assert stage_seconds_from_log(lines) == {"prepare": 12.5, "aggregate": 3.0}


def test_the_report_compares_stage_with_step_and_the_whole_row_seeded_run() -> None:
    case = {
        "size": "20000",
        "rows": 20000,
        "label": "CTDC-shaped",
        "load": [1.0, 1.0, 1.0],
        "sds": {
            "aggregate": _phase(8.0),
            "generate:row_seeded": _phase(40.0, synthetic_records=51000),
            "generate:unseeded": {"error": "stopped after 3600 s", "seconds": 3600.0},
        },
        "spark": {
            "session": _phase(5.0),
            "prepare": _phase(10.0),
            "aggregate": _phase(16.0),
            "modes": {
                "row_seeded": {"synthesize": _phase(20.0, synthetic_records=51500), "evaluate": _phase(9.0)},
                "unseeded": {"synthesize": _phase(30.0, synthetic_records=20000), "evaluate": _phase(9.0)},
            },
            "publish": _phase(2.0),
        },
    }
    rows = {step: (ours, theirs) for step, ours, theirs in comparison_rows(case)}

    assert ratio(*rows["aggregate"]) == 2.0
    assert ratio(*rows["synthesize row_seeded"]) == 0.5
    assert ratio(*rows["synthesize unseeded"]) is None  # SDS did not finish: no ratio
    whole = rows["whole run, row_seeded (SDS: aggregate + generate)"]
    assert whole[0] is not None and whole[0]["seconds"] == 5 + 10 + 16 + 20 + 9 + 2
    assert whole[1] is not None and whole[1]["seconds"] == 48.0
    page = markdown(
        {
            "generated_at": "g",
            "machine": "m",
            "k": 10,
            "reporting_length": 3,
            "threads": 2,
            "sds_cli": "sds-cli",
            "cases": [case],
        }
    )
    assert (
        "| synthesize row_seeded | 20.0 | 20.0 | 100 | 40.0 | 40.0 | 100 | 0.50 | 51,500 / 51,000 |" in page
    )
    assert "stopped after 3600 s" in page
    assert "machine was shared" in page
