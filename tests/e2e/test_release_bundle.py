"""The release bundle explains itself and no value can break its formats (whole pipeline, tiny input).

One run on a small input whose values include a newline, a tab and a carriage return (each held by
>= k records, so they are released), a country column, an ordinal column, an indicator and a year,
with translations for some languages only. The bundle must hold README.md (and one README per other
language), codebook.csv, LICENSE and the tidy aggregates CSV, all in SHA256SUMS; every TSV line has
exactly one tab; the CSVs round-trip; the explorer payload carries the per-language texts, natural
order, country and indicator flags; missing translations are logged by key, never by value.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from ctdc_spark.config import load_config
from ctdc_spark.evaluate import AgreementRule
from ctdc_spark.io.files import verify_bundle
from ctdc_spark.pipeline import RunSummary
from ctdc_spark.publish import stage as publish
from ctdc_spark.publish._explorer import ExplorerPayload
from tests.conftest import run_stages

pytestmark = [pytest.mark.spark, pytest.mark.slow]

K = 2
NOTES = ("Multi\nLine, v", "Tab\there", "CR\rhere", "plain")
# (gender, age, country, indicator, note, year, copies)
ROWS = (
    ("Female", "9--17", "DE", "1", NOTES[0], "2020", 4),
    ("Female", "48+", "FR", "0", NOTES[1], "2019", 3),
    ("Male", "0--8", "NP", "1", NOTES[2], "2020", 3),
    ("Male", "48+", "DE", "0", NOTES[3], "2019", 2),
    ("Female", "0--8", "NP", "-99", NOTES[3], "2021", 1),
)
CONFIG = {
    "input": {"unknown_values": ["", "-99"]},
    "privacy": {"resolution": K, "reporting_length": 2},
    "synthesis": {"seed": 7},
    "explorer": {
        "title": {"en": "Cases", "fr": "Cas", "de": "Fälle"},
        "licence": {"en": "Terms: cite us.", "fr": "Conditions : citez-nous."},
        "languages": ["en", "fr", "de"],
        "country_columns": ["country"],
        "ordinal_columns": {"age": ["0--8", "9--17", "48+"], "year": []},
        "column_labels": {
            "en": {"gender": "Gender", "age": "Age group", "country": "Country", "ind": "Abducted"},
            "fr": {"gender": "Genre", "age": "Tranche d'âge", "country": "Pays", "ind": "Enlèvement"},
        },
        "value_labels": {"fr": {"gender:Female": "Femme", "gender:Male": "Homme"}},
        "release_date": "2026-12-01",
    },
    "spark": {"conf": {"spark.sql.shuffle.partitions": "2"}},
}


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def released(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, RunSummary, ExplorerPayload, list[logging.LogRecord]]:
    root = tmp_path_factory.mktemp("bundle")
    lines = ["gender,age,country,ind,note,year"]
    for *cells, copies in ROWS:
        lines += [",".join(_csv_cell(str(c)) for c in cells)] * int(copies)
    (root / "input.csv").write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
    config = {**CONFIG, "input": {**CONFIG["input"], "path": str(root / "input.csv")}}
    config["output"] = {"root": str(root / "out")}
    (root / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    cfg = load_config(root / "config.yaml")

    payloads: list[ExplorerPayload] = []
    real_build = publish.build_explorer

    def capture(payload: ExplorerPayload, out_dir: Path) -> Path:
        payloads.append(payload)
        return real_build(payload, out_dir)

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("ctdc_spark").addHandler(handler)
    mp = pytest.MonkeyPatch()
    mp.setattr(publish, "build_explorer", capture)
    try:
        summary = run_stages(spark, cfg, ["prepare", "aggregate", "synthesize", "evaluate", "publish"])
    finally:
        mp.undo()
        logging.getLogger("ctdc_spark").removeHandler(handler)
    assert summary.release_dir is not None
    return Path(summary.release_dir), summary, payloads[0], records


def test_bundle_holds_readmes_codebook_licence_and_tidy_csv_all_checksummed(
    released: tuple[Path, RunSummary, ExplorerPayload, list[logging.LogRecord]],
) -> None:
    bundle, summary, _, _ = released
    expected = {"README.md", "README.fr.md", "README.de.md", "codebook.csv", "LICENSE", "aggregates_tidy.csv"}
    assert expected <= {p.name for p in bundle.iterdir()}
    summed = {line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()}
    assert expected <= summed and verify_bundle(bundle) == []
    files = json.loads((bundle / "metadata.json").read_text())["release"]["files"]
    assert {"README.md", "codebook.csv", "LICENSE", "aggregates_tidy.csv"} <= set(files)
    # No second copy stays in staging/, and the run reports the released paths.
    assert not (bundle.parent.parent / "staging" / summary.run_id).exists()
    public = [p for p in summary.outputs if "/staging/" in p or "/release/" in p]
    assert public and all(Path(p).is_relative_to(bundle) and Path(p).exists() for p in public)


def _tsv_counts(path: Path) -> dict[tuple[str, ...], int]:
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    assert all(line.count("\t") == 1 for line in lines), "every TSV line has exactly one tab"
    return {tuple(sel.split(";")): int(n) for sel, n in (line.split("\t") for line in lines[2:])}


def test_values_with_line_breaks_and_tabs_cannot_break_a_format(
    released: tuple[Path, RunSummary, ExplorerPayload, list[logging.LogRecord]],
) -> None:
    bundle, _, _, _ = released
    counts = _tsv_counts(bundle / "reportable_aggregates.tsv")
    private = bundle.parent.parent / "private" / bundle.name / "sensitive_aggregates.tsv"
    _tsv_counts(private)
    notes = {sel[0] for sel in counts if len(sel) == 1 and sel[0].startswith("note:")}
    assert notes == {"note:Multi Line, v", "note:Tab here", "note:CR here", "note:plain"}

    with (bundle / "reportable_aggregates.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {tuple(r["selections"].split(";")): int(r["protected_count"]) for r in rows} == counts

    with (bundle / "synthetic_microdata.csv").open(encoding="utf-8", newline="") as handle:
        synthetic = list(csv.reader(handle))
    assert len({len(r) for r in synthetic}) == 1, "every synthetic row has the header's width"
    column = synthetic[0].index("note")
    assert {r[column] for r in synthetic[1:]} <= {"", *(n.split(":", 1)[1] for n in notes)}


def test_tidy_aggregates_read_back_equal_the_tsv(
    released: tuple[Path, RunSummary, ExplorerPayload, list[logging.LogRecord]],
) -> None:
    bundle, _, _, _ = released
    with (bundle / "aggregates_tidy.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        tidy = list(reader)
    assert header == ["length", "column_1", "value_1", "column_2", "value_2", "count"]
    read_back = {}
    for row in tidy:
        length = int(row[0])
        pairs = [f"{row[1 + 2 * i]}:{row[2 + 2 * i]}" for i in range(length)]
        assert all(cell == "" for cell in row[1 + 2 * length : -1]), "unused slots stay empty"
        read_back[tuple(pairs)] = int(row[-1])
    assert read_back == _tsv_counts(bundle / "reportable_aggregates.tsv")


def test_readme_codebook_and_licence_speak_each_language(
    released: tuple[Path, RunSummary, ExplorerPayload, list[logging.LogRecord]],
) -> None:
    bundle, _, payload, _ = released
    people = payload.meta.reportable_record_count
    english = (bundle / "README.md").read_text(encoding="utf-8")
    assert english.startswith("# Cases\n") and "Which number to cite" in english
    assert f"about {people:,} people" in english and "multiple of 2" in english
    assert "[Français](README.fr.md)" in english and "[Deutsch](README.de.md)" in english
    assert '"not stated in the source, or left out to protect privacy"' in english
    french = (bundle / "README.fr.md").read_text(encoding="utf-8")
    assert french.startswith("# Cas\n") and "Which number to cite" not in french
    assert "`codebook.csv`" in french and "[English](README.md)" in french
    german = (bundle / "README.de.md").read_text(encoding="utf-8")
    assert german.startswith("# Fälle\n") and "Which number to cite" not in german

    with (bundle / "codebook.csv").open(encoding="utf-8", newline="") as handle:
        codebook = list(csv.DictReader(handle))
    by_code = {r["code"]: r for r in codebook}
    assert by_code["country:DE"]["value_label_fr"] == "Allemagne"
    assert by_code["country:DE"]["value_label_de"] == "Deutschland"
    assert by_code["gender:Female"]["value_label_fr"] == "Femme"
    assert by_code["gender:Female"]["column_label_fr"] == "Genre"
    assert by_code["ind:1"]["value_label_fr"] == "oui" and by_code["ind:1"]["value_label_de"] == "ja"
    assert by_code["year:2019"]["value_label_de"] == "2019"
    single = _tsv_counts(bundle / "reportable_aggregates.tsv")
    assert all(r["official_count"] == str(single.get((r["code"],), "")) for r in codebook), (
        "official_count is the released single count (blank when not released)"
    )

    licence = (bundle / "LICENSE").read_text(encoding="utf-8")
    assert "Terms: cite us." in licence and "Conditions : citez-nous." in licence


def test_payload_carries_languages_order_countries_and_indicators(
    released: tuple[Path, RunSummary, ExplorerPayload, list[logging.LogRecord]],
) -> None:
    _, _, payload, _ = released
    meta = payload.meta
    assert meta.title == {"en": "Cases", "fr": "Cas", "de": "Fälle"}
    assert meta.agreement == AgreementRule(interval=K, relative=0.1, absolute=float(K))
    columns = {c.id: c for c in payload.columns}
    assert [v.value for v in columns["age"].values] == ["0--8", "9--17", "48+"]
    assert [v.code for v in columns["age"].values] == [1, 2, 3]
    assert columns["age"].ordinal and columns["year"].ordinal and not columns["gender"].ordinal
    assert [v.value for v in columns["year"].values] == sorted(v.value for v in columns["year"].values)
    assert columns["country"].geo == "iso3166-1-alpha2" and columns["gender"].geo is None
    assert columns["ind"].indicator and not columns["gender"].indicator
    assert columns["gender"].labels == {"en": "Gender", "fr": "Genre", "de": "Gender"}
    female = next(v for v in columns["gender"].values if v.value == "Female")
    assert female.labels == {"en": "Female", "fr": "Femme", "de": "Female"}
    kinds = {d.name: d.kind for d in payload.downloads}
    assert kinds["README.md"] == "readme" and kinds["aggregates_tidy.csv"] == "aggregates_tidy"
    assert kinds["codebook.csv"] == "codebook" and kinds["LICENSE"] == "licence"
    stats = payload.stats
    assert stats.multi is not None and stats.multi.min_length == 2
    assert stats.agreement is not None and stats.agreement.overall.compared > 0


def test_missing_translations_are_logged_by_key_never_by_value(
    released: tuple[Path, RunSummary, ExplorerPayload, list[logging.LogRecord]],
) -> None:
    _, _, _, records = released
    warnings = [r.getMessage() for r in records if "translations" in r.getMessage()]
    assert any(w.startswith("explorer translations: de:") for w in warnings)
    text = "\n".join(warnings)
    assert "explorer.column_labels.de.gender" in text and "explorer.licence.de" in text
    assert "explorer.title" not in text  # given in every configured language
    assert "value(s) of column gender" in text
    for value in ("Female", "Male", "9--17", "48+", "Multi", "Tab", "plain"):
        assert value not in text, "no value in the log"
