"""How the synthesis benchmark completes a size over several runs (``--append``). Pure Python, no Spark.

A 1M size takes hours, so it is measured mode by mode; the merged report must keep every mode
measured, replace only re-measured ones, and read the same at every size.
"""

from __future__ import annotations

from typing import Any

from benchmarks.bench_synthesize import MODES, markdown, merge_case


def _entry(seconds: float) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "cpu_seconds": seconds,
        "peak_tree_mb": 1.0,
        "synthetic_records": 10,
        "records_per_second": 10 / seconds,
        "ratio_to_baseline": None,
        "exact_attribute_counts": None,
    }


def _case(modes: dict[str, float], baseline: float | None, error: str | None = None) -> dict[str, Any]:
    case: dict[str, Any] = {
        "rows": 1000,
        "modes": {mode: _entry(s) for mode, s in modes.items()},
        "baseline_row_seeded": {"error": "not run"} if baseline is None else _entry(baseline),
    }
    if error:
        case["spark_error"] = error
    return case


def test_append_keeps_earlier_modes_replaces_remeasured_ones_and_orders_them_canonically() -> None:
    earlier = _case({"row_seeded": 1.0, "aggregate_seeded": 2.0}, baseline=5.0, error="exit code -15")
    new = _case({"unseeded": 3.0, "aggregate_seeded": 4.0}, baseline=None)

    merged = merge_case(earlier, new)

    assert list(merged["modes"]) == ["row_seeded", "unseeded", "aggregate_seeded"]
    assert [merged["modes"][m]["seconds"] for m in merged["modes"]] == [1.0, 3.0, 4.0]
    assert merged["baseline_row_seeded"]["seconds"] == 5.0  # the new run skipped the baseline
    assert "spark_error" not in merged  # the new run finished the modes it was asked for


def test_a_failed_append_keeps_its_error_and_the_table_lists_modes_in_one_order() -> None:
    earlier = _case({"value_seeded": 2.0}, baseline=None)
    new = _case({"aggregate_seeded": 4.0, "row_seeded": 1.0}, baseline=7.0, error="exit code 1")

    merged = merge_case(earlier, new)
    table = markdown({"machine": "m", "generated": "g", "k": 10, "reporting_length": 3, "cases": [merged]})

    assert merged["spark_error"] == "exit code 1"
    assert merged["baseline_row_seeded"]["seconds"] == 7.0
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    assert [(row[2], row[3]) for row in cells if row[:2] == ["1,000", "spark"]] == [
        *((m, f"{merged['modes'][m]['seconds']:.1f}") for m in MODES if m != "unseeded"),
        ("", "exit code 1"),
    ]
