"""Typed config: defaults, precedence, unknown keys and validation messages (no Spark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctdc_spark.cli import _env_overrides
from ctdc_spark.config import load_config
from ctdc_spark.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_match_the_architecture_contract() -> None:
    cfg = load_config(None, overrides=["input.path=x.csv"])
    assert cfg.input.format == "csv" and cfg.input.delimiter == ","
    assert cfg.input.unknown_values == ("",) and cfg.input.on_bad_rows == "fail"
    assert (cfg.privacy.resolution, cfg.privacy.reporting_length, cfg.privacy.dp) == (10, 3, None)
    assert (cfg.synthesis.mode, cfg.synthesis.seed) == ("row_seeded", None)
    assert cfg.output.root == "output" and cfg.spark.master is None


def test_precedence_file_then_env_then_set(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("input: {path: a.csv}\nprivacy: {resolution: 4, reporting_length: 2}\n")
    env = _env_overrides(
        {"CTDC__PRIVACY__RESOLUTION": "6", "CTDC__PRIVACY__REPORTING_LENGTH": "4", "HOME": "/x"}
    )
    cfg = load_config(path, env_overrides=env, overrides=["privacy.reporting_length=5"])
    assert cfg.privacy.resolution == 6  # env beats file
    assert cfg.privacy.reporting_length == 5  # --set beats env
    assert cfg.input.path == str(tmp_path / "a.csv")  # relative to the config file


def test_tsv_defaults_to_tab() -> None:
    cfg = load_config(None, overrides=["input.path=x.tsv", "input.format=tsv"])
    assert cfg.input.field_delimiter == "\t"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["privacy.resoluton=5"], "unknown setting(s) privacy.resoluton"),
        (["inputs.path=x"], "unknown setting(s) inputs"),
        (["privacy.resolution=0"], "k must be >= 1"),
        (["privacy.resolution=ten"], "expected a whole number"),
        (["synthesis.mode=magic"], "'row_seeded' | 'unseeded'"),
        (["input.delimiter=;;"], "exactly one character"),
        (["input.bins={AGEP: [30, 18]}"], "strictly increasing"),
        (["input.on_bad_rows=skip"], "'fail' | 'quarantine'"),
        (["privacy.dp={epsilon: 4}", "privacy.reporting_length=0"], "explicit L >= 1"),
        (["privacy.dp={accuracy_mode: custom, sigma_proportions: [1, 0.5]}"], "one value per length"),
        (["privacy.dp={fabrication_mode: custom, threshold_values: {1: 0.5}}"], "no threshold for length 1"),
        (["explorer.default_language=it"], "must be one of explorer.languages"),
        (
            ["privacy.dp={epsilon: 4}", "synthesis.mode=row_seeded"],
            "set synthesis.mode=fitted (or aggregate_seeded)",
        ),
        (["synthesis.fit_record_count=n"], "'free' | 'published'"),
        (["synthesis.fit_iterations=0"], "synthesis.fit_iterations: must be >= 1"),
    ],
    ids=[
        "typo-key",
        "typo-section",
        "k-zero",
        "k-not-a-number",
        "unknown-mode",
        "long-delimiter",
        "decreasing-bins",
        "bad-row-policy",
        "dp-needs-length",
        "sigma-length",
        "threshold-length-1",
        "language",
        "dp-needs-an-aggregates-mode",
        "fit-record-count",
        "fit-iterations",
    ],
)
def test_bad_values_name_the_key_and_fix(overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides=["input.path=x.csv", *overrides])
    assert fragment in str(info.value)


def test_missing_input_path_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError, match=r"--set input\.path=FILE"):
        load_config(None)


def test_config_hash_ignores_spark_tuning_only() -> None:
    a = load_config(None, overrides=["input.path=x.csv"])
    b = load_config(None, overrides=["input.path=x.csv", "spark.conf={spark.sql.shuffle.partitions: '4'}"])
    c = load_config(None, overrides=["input.path=x.csv", "privacy.resolution=5"])
    assert a.config_hash() == b.config_hash() != c.config_hash()


def test_config_is_frozen() -> None:
    cfg = load_config(None, overrides=["input.path=x.csv"])
    with pytest.raises(AttributeError):
        cfg.privacy.resolution = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.input.multi_value_columns["x"] = ";"  # type: ignore[index]


@pytest.mark.parametrize("name", ["local.yaml", "ctdc_global.yaml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(REPO / "conf" / name)
    assert cfg.privacy.resolution >= 1 and cfg.input.path


def test_release_date_may_be_an_unquoted_yaml_date(tmp_path: Path) -> None:
    # YAML reads 2026-03-01 as a date, in a file and in a --set value (what a scheduler passes).
    path = tmp_path / "c.yaml"
    path.write_text("input: {path: a.csv}\nexplorer: {release_date: 2026-03-01}\n")
    assert load_config(path).explorer.release_date == "2026-03-01"
    cfg = load_config(None, overrides=["input.path=a.csv", "explorer.release_date=2026-03-02"])
    assert cfg.explorer.release_date == "2026-03-02"
    with pytest.raises(ConfigError, match="release_date: use an ISO date"):
        load_config(None, overrides=["input.path=a.csv", "explorer.release_date=2026-03-02T10:00:00"])


def test_a_config_extends_another_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base/base.yaml").write_text(
        "input: {path: a.csv, unknown_values: ['', '-99']}\n"
        "privacy: {resolution: 5}\n"
        "explorer: {column_labels: {en: {g: Gender}, fr: {g: Genre}}}\n"
    )
    (tmp_path / "run.yaml").write_text(
        "extends: base/base.yaml\n"
        "privacy: {reporting_length: 2}\n"
        "input: {unknown_values: ['']}\n"
        "explorer: {column_labels: {de: {g: Geschlecht}}}\n"
    )
    cfg = load_config(tmp_path / "run.yaml", overrides=["privacy.resolution=7"])
    assert (cfg.privacy.resolution, cfg.privacy.reporting_length) == (7, 2)
    assert cfg.input.path == str(tmp_path / "base/a.csv")  # relative to the file that wrote it
    assert cfg.input.unknown_values == ("",)  # lists replace
    assert dict(cfg.explorer.column_labels["fr"]) == {"g": "Genre"}  # mappings merge
    assert dict(cfg.explorer.column_labels["de"]) == {"g": "Geschlecht"}


def test_an_extends_cycle_or_a_missing_base_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="comes back to itself"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml does not exist"):
        load_config(tmp_path / "c.yaml")


def test_a_plain_explorer_text_is_the_default_language_s(tmp_path: Path) -> None:
    cfg = load_config(
        None, overrides=["input.path=a.csv", "explorer.default_language=fr", "explorer.title=Données"]
    )
    assert dict(cfg.explorer.title) == {"fr": "Données"}
    cfg = load_config(None, overrides=["input.path=a.csv", "explorer.title={en: Cases, de: Fälle}"])
    assert dict(cfg.explorer.title) == {"en": "Cases", "de": "Fälle"}


def test_ordinal_columns_list_each_value_once() -> None:
    with pytest.raises(ConfigError, match=r"explorer\.ordinal_columns\.age: lists a value twice"):
        load_config(None, overrides=["input.path=a.csv", "explorer.ordinal_columns={age: [a, b, a]}"])


@pytest.mark.parametrize(
    ("written", "java"),
    [
        ("latin-1", "ISO-8859-1"),
        ("latin1", "ISO-8859-1"),
        ("ISO-8859-1", "ISO-8859-1"),
        ("cp1252", "windows-1252"),
        ("windows-1252", "windows-1252"),
        ("cp1256", "windows-1256"),
        ("utf-8-sig", "UTF-8"),
        ("UTF8", "UTF-8"),
    ],
)
def test_encodings_are_accepted_as_users_write_them(written: str, java: str) -> None:
    cfg = load_config(None, overrides=["input.path=a.csv", f"input.encoding={written}"])
    assert cfg.input.java_charset == java


@pytest.mark.parametrize("written", ["klingon", "rot13", "idna"])
def test_an_encoding_spark_cannot_read_is_refused_at_load_time(written: str) -> None:
    with pytest.raises(ConfigError, match=r"input\.encoding: .* use e\.g\. utf-8, utf-8-sig, latin-1"):
        load_config(None, overrides=["input.path=a.csv", f"input.encoding={written}"])


def test_a_relative_input_path_in_a_file_is_relative_to_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/base.yaml").write_text("input: {path: ../data/in.csv}\n")
    (tmp_path / "conf/run.yaml").write_text("extends: base.yaml\noutput: {root: out}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(tmp_path / "conf/run.yaml")
    assert cfg.input.path == str(tmp_path / "data/in.csv")
    assert cfg.output.root == "out"  # results go where the command runs
    typed = load_config(tmp_path / "conf/run.yaml", overrides=["input.path=mine.csv"])
    assert typed.input.path == "mine.csv"  # a --set path is the shell's, relative to the working dir
    remote = load_config(None, overrides=["input.path=s3://bucket/in.csv"])
    assert remote.input.path == "s3://bucket/in.csv"


def test_dp_without_a_synthesis_mode_synthesizes_fitted() -> None:
    cfg = load_config(None, overrides=["input.path=x.csv", "privacy.dp={epsilon: 4}"])
    assert cfg.synthesis.mode == "fitted"
    explicit = load_config(
        None, overrides=["input.path=x.csv", "privacy.dp={epsilon: 4}", "synthesis.mode=aggregate_seeded"]
    )
    assert explicit.synthesis.mode == "aggregate_seeded"
    assert load_config(None, overrides=["input.path=x.csv"]).synthesis.mode == "row_seeded"
