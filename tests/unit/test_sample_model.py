"""The CTDC-shaped sample model, the committed sample and the CTDC configs. Pure pandas, no Spark.

Run from the repository root with the root on the path, e.g.
``PYTHONPATH=$PWD python -m pytest tests/unit/test_sample_model.py`` (``scripts`` is not installed).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ctdc_spark.config import load_config
from tools.ctdc_model import (
    CONCATENATED_COLUMNS,
    HEADER,
    INDICATOR_COLUMNS,
    TERMS_OF_USE_COLUMN,
    UNKNOWN,
    generate_ctdc_like,
)
from tools.generate_sample import DEFAULT_OUT, DEFAULT_ROWS, DEFAULT_SEED, write_csv

REPO = Path(__file__).resolve().parents[2]
# CI puts the shared data folder beside the checkout (../shared/data/README.md); a user's clone has none.
CTDC_SCHEMA_CSV = REPO.parent / "shared/data/ctdc_global_schema/ctdc_global_2020_header_and_example_rows.csv"
needs_ctdc_schema = pytest.mark.skipif(
    not CTDC_SCHEMA_CSV.is_file(),
    reason=f"CTDC schema not found at {CTDC_SCHEMA_CSV}: the shared data folder is only beside CI checkouts",
)
SAMPLE = REPO / DEFAULT_OUT
CONFIGS = sorted((REPO / "conf").glob("*.yaml"))
DATA_COLUMNS = [c for c in HEADER if c != TERMS_OF_USE_COLUMN]


def _informative(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Per record, the number of cells that give an attribute: not empty, not -99, not 0."""
    cells = frame[columns].to_numpy()
    return ((cells != "") & (cells != UNKNOWN) & (cells != "0")).sum(axis=1)


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    """A model draw big enough for stable shares, small enough to take well under a second."""
    return generate_ctdc_like(20_000, seed=11)


@needs_ctdc_schema
def test_header_is_ctdc_global_header() -> None:
    with CTDC_SCHEMA_CSV.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert tuple(header) == HEADER
    assert list(generate_ctdc_like(3, seed=0).columns) == header


@needs_ctdc_schema
def test_ctdc_example_values_occur_in_the_sample() -> None:
    """CTDC's own example cells (codes, labels, age ranges) are in the model's vocabulary."""
    examples = pd.read_csv(CTDC_SCHEMA_CSV, dtype=str, keep_default_na=False)
    sample = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    for column in examples.columns:
        missing = set(examples[column]) - set(sample[column])
        assert not missing, f"{column}: example values {sorted(missing)} never occur in the sample"


def test_same_seed_gives_same_records() -> None:
    pd.testing.assert_frame_equal(generate_ctdc_like(3_000, seed=5), generate_ctdc_like(3_000, seed=5))


def test_different_seeds_give_different_records() -> None:
    a = generate_ctdc_like(3_000, seed=5).to_numpy()
    b = generate_ctdc_like(3_000, seed=6).to_numpy()
    assert (a != b).any(axis=1).mean() > 0.9


def test_zero_rows_give_the_header_only() -> None:
    frame = generate_ctdc_like(0, seed=1)
    assert frame.shape == (0, len(HEADER))
    assert tuple(frame.columns) == HEADER


def test_negative_rows_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_rows"):
        generate_ctdc_like(-1, seed=1)


def test_cells_are_ctdc_strings(records: pd.DataFrame) -> None:
    assert all(isinstance(v, str) for v in records.to_numpy().ravel())
    assert (records[TERMS_OF_USE_COLUMN] == "").all()
    assert not (records[DATA_COLUMNS] == "").to_numpy().any(), "unknown must be -99, not empty"
    for column in INDICATOR_COLUMNS:
        assert set(records[column]) <= {"0", "1", UNKNOWN}, column
    years = records["yearOfRegistration"].astype(int)
    assert set(years) <= set(range(2002, 2021))
    assert years.is_monotonic_increasing, "CTDC publishes records in order of registration"
    # Reserved characters of the attribute encoding would be renamed by the pipeline.
    assert not records[DATA_COLUMNS].apply(lambda c: c.str.contains(":|,|\n")).to_numpy().any()


def _assert_concatenated_consistent(frame: pd.DataFrame) -> None:
    for column, group in CONCATENATED_COLUMNS.items():
        ones = np.column_stack([frame[name] == "1" for name, _ in group])
        labels = np.array([label for _, label in group])
        expected = [";".join(sorted(labels[row])) or UNKNOWN for row in ones]
        assert frame[column].tolist() == expected, column


def test_concatenated_columns_repeat_their_indicators(records: pd.DataFrame) -> None:
    _assert_concatenated_consistent(records)
    assert (records["typeOfExploitConcatenated"] == "Forced labour;Sexual exploitation").any()
    both = (records["isForcedLabour"] == "1") & (records["isSexualExploit"] == "1")
    assert ((records["isSexAndLabour"] == "1") == both).all()


@settings(max_examples=20, deadline=None)
@given(n_rows=st.integers(0, 300), seed=st.integers(0, 2**63 - 1))
def test_concatenated_columns_are_consistent_for_any_seed(n_rows: int, seed: int) -> None:
    _assert_concatenated_consistent(generate_ctdc_like(n_rows, seed))


def test_sparsity_is_ctdc_like(records: pd.DataFrame) -> None:
    """Far fewer attributes than columns: that is what keeps combination counting tractable."""
    per_record = _informative(records, DATA_COLUMNS)
    assert 10 <= np.median(per_record) <= 15
    assert per_record.max() <= 40
    indicators = records[list(INDICATOR_COLUMNS)].to_numpy()
    assert np.isin(indicators, ["0", UNKNOWN]).mean() > 0.85


def test_patterns_are_correlated_like_ctdc(records: pd.DataFrame) -> None:
    female = records["gender"] == "Female"
    known_gender = records["gender"] != UNKNOWN
    sexual_only = records["typeOfExploitConcatenated"] == "Sexual exploitation"
    assert female[sexual_only & known_gender].mean() > 0.85
    assert 0.6 < female[known_gender].mean() < 0.8
    construction = (records["typeOfLabourConstruction"] == "1") & known_gender
    domestic = (records["typeOfLabourDomesticWork"] == "1") & known_gender
    assert female[construction].mean() < 0.25
    assert female[domestic].mean() > 0.75
    # Control methods depend on the type of exploitation.
    labour_only = records["typeOfExploitConcatenated"] == "Forced labour"
    documents = records["meansOfControlWithholdsDocuments"] == "1"
    sexual_abuse = records["meansOfControlSexualAbuse"] == "1"
    assert documents[labour_only].mean() > 2 * documents[sexual_only].mean()
    assert sexual_abuse[sexual_only].mean() > 2 * sexual_abuse[labour_only].mean()
    # Hotlines are US-based, start in 2015 and leave more cells unknown than case files.
    hotline = records["Datasource"] == "Hotline"
    assert 0.1 < hotline.mean() < 0.4
    assert (records.loc[hotline, "yearOfRegistration"].astype(int) >= 2015).all()
    assert (records.loc[hotline, "CountryOfExploitation"] == "US").mean() > 0.9
    unknown_share = (records[DATA_COLUMNS] == UNKNOWN).groupby(hotline).mean().mean(axis=1)
    assert unknown_share[True] > unknown_share[False] + 0.03
    # Registrations grow over time; citizenship is regionally tied to the country of exploitation.
    years = records["yearOfRegistration"].astype(int)
    assert (years >= 2015).mean() > 2 * (years < 2010).mean()
    from_ukraine = records.loc[records["citizenship"] == "UA", "CountryOfExploitation"]
    assert from_ukraine.isin(["RU", "UA", "TR", "PL", "CZ", "AE", "IL"]).mean() > 0.8
    for column in ("citizenship", "CountryOfExploitation"):
        counts = records.loc[records[column] != UNKNOWN, column].value_counts()
        assert 40 <= len(counts) <= 80, column
        assert counts.iloc[:5].sum() > 0.4 * counts.sum(), f"{column}: a few countries dominate, as in CTDC"


def test_committed_sample_is_the_default_generator_output(tmp_path: Path) -> None:
    regenerated = tmp_path / "ctdc_sample.csv"
    write_csv(generate_ctdc_like(DEFAULT_ROWS, DEFAULT_SEED), regenerated)
    assert SAMPLE.read_bytes() == regenerated.read_bytes(), (
        "data/sample/ctdc_sample.csv is stale; run: python -m tools.generate_sample"
    )


def test_committed_sample_is_rfc4180_csv() -> None:
    raw = SAMPLE.read_bytes()
    assert raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n")
    assert len(raw) < 8_000_000
    with SAMPLE.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, strict=True))
    assert tuple(rows[0]) == HEADER
    assert len(rows) == DEFAULT_ROWS + 1
    assert {len(r) for r in rows} == {len(HEADER)}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path: Path) -> None:
    load_config(path)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_columns_exist_in_ctdc_header(path: Path) -> None:
    """Every conf/*.yaml maps the CTDC global layout; names match case-insensitively after trimming."""
    cfg = load_config(path)
    header = {c.strip().lower() for c in HEADER}
    used = [c.strip().lower() for c in cfg.input.use_columns]
    assert set(used) <= header
    assert len(used) == len(set(used))
    # The terms-of-use column is always empty and the summary columns repeat the indicators.
    assert not set(used) & {c.lower() for c in (TERMS_OF_USE_COLUMN, *CONCATENATED_COLUMNS)}

    exp = cfg.explorer
    visuals = {*exp.default_columns, *(c for cols in exp.pages.values() for c in cols)}
    referenced = visuals - set(exp.groups)  # pages and default columns may name groups
    referenced |= {a.rsplit(":", 1)[0] for attrs in exp.groups.values() for a in attrs}
    referenced |= {c for labels in exp.column_labels.values() for c in labels}
    referenced |= {c for texts in exp.column_descriptions.values() for c in texts}
    referenced |= {a.split(":", 1)[0] for labels in exp.value_labels.values() for a in labels}
    referenced |= {*exp.country_columns, *exp.ordinal_columns}
    available = set(used) or header  # an empty use_columns means every column
    assert {c.strip().lower() for c in referenced} <= available, "explorer names a column that is not used"
    group_attributes = [a for attrs in exp.groups.values() for a in attrs]
    assert all(a.endswith(":1") for a in group_attributes), "groups are built from indicator attributes"


def test_local_config_runs_the_ctdc_mapping_on_the_sample() -> None:
    """conf/local.yaml extends conf/ctdc_global.yaml and adds only the settings of a laptop run."""
    local = yaml.safe_load((REPO / "conf/local.yaml").read_text(encoding="utf-8"))
    assert local["extends"] == "ctdc_global.yaml"
    assert set(local) == {"extends", "synthesis", "output", "spark"}
    cfg = load_config(REPO / "conf/local.yaml")
    ctdc = load_config(REPO / "conf/ctdc_global.yaml")
    for section in ("input", "privacy", "explorer"):
        assert getattr(cfg, section) == getattr(ctdc, section), section
    # A relative input.path in a config file is relative to that file (conf/), wherever one runs.
    assert Path(cfg.input.path) == REPO / DEFAULT_OUT and Path(cfg.input.path).is_file()
    assert cfg.synthesis.seed is not None
    assert cfg.spark.master is not None


def test_ctdc_mapping_words_every_sample_value_and_column_in_every_language() -> None:
    """Every column and every value a reader can see in the default release has a label in ar/en/fr/de/es.

    Countries (named by the reader's browser), numbers (years) and the indicators' "1" (shown as
    "yes" by the page) need none; "-99" and "0" are never attributes.
    """
    cfg = load_config(REPO / "conf/ctdc_global.yaml")
    exp = cfg.explorer
    frame = pd.read_csv(REPO / DEFAULT_OUT, dtype=str, keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    countries = set(exp.country_columns)
    for language in ("ar", "en", "fr", "de", "es"):
        assert language in exp.languages
        for text in ("title", "description", "licence", "citation", "record_noun"):
            assert getattr(exp, text).get(language), (language, text)
        for column in cfg.input.use_columns:
            assert exp.column_labels[language].get(column), (language, column)
            assert exp.column_descriptions[language].get(column), (language, column)
            if column in countries:
                continue
            for value in set(frame[column]) - {"-99", "0", "1", ""}:
                if not value.isdigit():
                    assert exp.value_labels[language].get(f"{column}:{value}"), (language, column)
        for name in (*exp.pages, *exp.groups):
            table = exp.page_labels if name in exp.pages else exp.group_labels
            assert table[language].get(name), (language, name)
