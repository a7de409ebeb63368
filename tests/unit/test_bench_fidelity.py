"""The fidelity benchmark's measures, on hand-made files (the benchmark itself runs outside the suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_fidelity import closest_record_distances, fidelity, markdown, read_sds_tsv


def test_sds_tsv_is_read_as_sorted_combinations(tmp_path: Path) -> None:
    path = tmp_path / "agg.tsv"
    path.write_text("selections\tprotected_count\nrecord_count\t40\nb:1;a:2\t20\na:2\t30\n", encoding="utf-8")
    counts, records = read_sds_tsv(path)
    assert records == 40
    assert counts == {("a:2", "b:1"): 20.0, ("a:2",): 30.0}


def test_mpe_counts_a_missing_combination_as_error_one_and_mae_uses_the_exact_counts() -> None:
    released = {("a",): 10.0, ("b",): 20.0, ("a", "b"): 10.0}
    synthetic = {("a",): 15.0, ("b",): 20.0, ("c",): 4.0}
    exact = {("a",): 12.0, ("b",): 19.0, ("a", "b"): 11.0}
    out = fidelity(released, synthetic, exact)
    assert out["mpe"] == {"1": 0.25, "2": 1.0, "all": pytest.approx(0.5, abs=1e-3)}
    assert out["coverage"] == {"1": 1.0, "2": 0.0}
    assert out["mae_vs_exact"] == {"1": 2.0, "2": 11.0}
    assert out["fabricated_share"] == pytest.approx(1 / 3, abs=1e-3)  # ("c",) has no sensitive record


def test_distance_to_the_closest_record() -> None:
    sensitive = [{"a:1", "b:1"}, {"a:2", "b:2", "c:1"}]
    synthetic = [{"a:1", "b:1"}, {"a:2"}, set()]
    out = closest_record_distances(synthetic, sensitive)
    assert out["sampled"] == 2 and out["identical_share"] == 0.5
    assert out["median"] == 1.0  # distances 0 and 2


def test_report_has_a_row_per_tool_and_mode() -> None:
    mode = {
        "seconds": 1.0,
        "records_per_person": 1.0,
        "mpe": {"1": 0.0, "2": 0.5, "3": 0.7, "all": 0.6},
        "coverage": {"2": 0.9, "3": 0.6},
        "dcr": {"median": 3.0, "identical_share": 0.0, "sampled": 10},
    }
    report = {
        "machine": "test",
        "cases": {
            "x k": {"note": "n", "sds": {"modes": {"row_seeded": mode}}, "ours": {"modes": {"fitted": mode}}}
        },
    }
    text = markdown(report)
    assert "| sds | row_seeded |" in text and "| ours | fitted |" in text
