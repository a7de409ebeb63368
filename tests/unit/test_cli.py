"""CLI without Spark jobs: `validate`, argument handling and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctdc_spark.cli import main
from tests.conftest import REPO, SHARED_DATA


def test_validate_ctdc_global_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["validate", "--config", "conf/ctdc_global.yaml"]) == 0
    out = capsys.readouterr().out
    assert "config OK; input OK" in out and "64 columns in the header, 58 used" in out
    assert "translations: complete for en, fr, es, de, ar." in out


def test_validate_lists_missing_translations_per_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.csv").write_text("gender,age\nFemale,9--17\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"input: {{path: {tmp_path / 'in.csv'}}}\n"
        "explorer:\n"
        "  languages: [en, de]\n"
        "  title: {en: Cases}\n"
        "  pages: {Who: [gender]}\n"
        "  column_labels: {en: {gender: Gender, age: Age}, de: {gender: Geschlecht}}\n"
        "  value_labels: {en: {'gender:Female': Female}}\n"
        "  ordinal_columns: {age: ['0--8', '9--17']}\n"
    )
    assert main(["validate", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "translations: missing texts (the release shows English for them):" in out
    (de_line,) = [line for line in out.splitlines() if line.strip().startswith("de:")]
    for key in ("explorer.title.de", "explorer.column_labels.de.age", "explorer.page_labels.de.Who"):
        assert key in de_line
    assert "explorer.value_labels.de: 2 value(s) of column age" in de_line
    assert "explorer.value_labels.de: 1 value(s) of column gender" in de_line
    assert "explorer.column_labels.de.gender" not in de_line
    assert not any(line.strip().startswith("en:") for line in out.splitlines())


def test_validate_against_the_real_ctdc_header(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    monkeypatch.chdir(REPO)
    example = SHARED_DATA / "ctdc_global_schema/ctdc_global_2020_header_and_example_rows.csv"
    assert main(["validate", "--config", "conf/ctdc_global.yaml", "--set", f"input.path={example}"]) == 0
    assert "64 columns in the header, 58 used" in capsys.readouterr().out


def test_validate_relative_path_from_the_checkout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    monkeypatch.chdir(REPO)
    code = main(
        [
            "validate",
            "--config",
            "conf/ctdc_global.yaml",
            "--set",
            "input.path=../shared/data/ctdc_global_schema/ctdc_global_2020_header_and_example_rows.csv",
        ]
    )
    assert code == 0, capsys.readouterr().err


def test_validate_reports_config_errors_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: {path: x.csv}\nprivacy: {resolution: 0}\n")
    assert main(["validate", "--config", str(cfg)]) == 2
    assert "privacy.resolution: k must be >= 1" in capsys.readouterr().err


def test_validate_missing_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", "/nonexistent/c.yaml"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_run_id_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ctdc_spark.pipeline import validate_run_id

    with pytest.raises(Exception, match="--run-id"):
        validate_run_id("../etc")
    assert validate_run_id("20260803T000000Z") == "20260803T000000Z"


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--stages", "prepare,agregate"],
        ["run", "--set", "input.path=/nowhere/missing.csv"],
        ["run", "--set", "input.use_columns=[no_such_column]"],
    ],
    ids=["misspelt stage", "missing input", "unknown column"],
)
def test_config_and_input_errors_fail_before_spark_starts(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ctdc_spark.session

    def no_spark(*_: object, **__: object) -> None:
        raise AssertionError("Spark was started before the error was found")

    monkeypatch.setattr(ctdc_spark.session, "build_session", no_spark)
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
