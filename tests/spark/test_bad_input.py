"""Bad input: exit code 2, a message naming the problem and the fix, no raw value anywhere, and
earlier outputs untouched (issue: foundation, "Bad input")."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctdc_spark.cli import main
from ctdc_spark.io import delta as delta_io
from ctdc_spark.schemas import RECORDS, REJECTED, RUNS
from tests.conftest import write_text

pytestmark = pytest.mark.spark

CANARY = "CANARY_9f41c"
GOOD = "gender,age,country\nF,adult,PH\nM,minor,UA\nF,adult,UA\n"


def _config(tmp_path: Path, root: Path, name: str, body: str) -> Path:
    return write_text(tmp_path / f"{name}.yaml", f"output:\n  root: {root}\n{body}")


def _tables_state(root: Path) -> dict[str, str]:
    """Hash of every file under output.root except the manifest (which records failed attempts)."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "tables/runs" not in path.as_posix() and "/locks/" not in path.as_posix():
            state[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture(scope="module")
def earlier_run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output root holding a successful earlier run (run id `earlier`)."""
    base = tmp_path_factory.mktemp("bad_input")
    data = write_text(base / "good.csv", GOOD)
    cfg = _config(base, base / "out", "good", f"input:\n  path: {data}\n")
    assert main(["prepare", "--config", str(cfg), "--run-id", "earlier"]) == 0
    return base / "out"


Case = Callable[[Path], tuple[str, str]]  # tmp_path -> (config body, expected message fragment)


def _file(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    return write_text(tmp_path / "input.csv", text, encoding=encoding)


LATIN1_ROWS = f"{GOOD}F,{CANARY}caf\xe9,PH\n"
MISSING_ID_ROWS = "id,gender\n1,F\n,M\n"

CASES: dict[str, Case] = {
    "missing-path": lambda t: (f"input:\n  path: {t}/nope.csv\n", "does not exist"),
    "folder-without-files": lambda t: (
        f"input:\n  path: {(t / 'empty_dir').mkdir() or t / 'empty_dir'}\n",
        "folder without",
    ),
    "empty-file": lambda t: (f"input:\n  path: {_file(t, '')}\n", "is empty"),
    "header-only": lambda t: (
        f"input:\n  path: {_file(t, 'gender,age,country' + chr(10))}\n",
        "no data rows",
    ),
    "duplicate-columns": lambda t: (
        f"input:\n  path: {_file(t, 'gender, Gender ,age' + chr(10) + 'F,F,adult' + chr(10))}\n",
        "duplicate column names after normalisation",
    ),
    "wrong-field-count": lambda t: (
        f"input:\n  path: {_file(t, GOOD + f'F,{CANARY}' + chr(10) + f'M,a,b,{CANARY}' + chr(10))}\n",
        "2 row(s) have the wrong number of fields (expected 3) (e.g. data rows 4, 5 of input.csv)",
    ),
    "non-utf8": lambda t: (
        f"input:\n  path: {_file(t, LATIN1_ROWS, encoding='latin-1')}\n",
        "contain bytes that are not valid utf-8",
    ),
    "unknown-column": lambda t: (
        f"input:\n  path: {_file(t, GOOD)}\n  use_columns: [gender, agee]\n",
        "input.use_columns names column 'agee', which is not in the input header. Did you mean age",
    ),
    "empty-subject-ids": lambda t: (
        f"input:\n  path: {_file(t, MISSING_ID_ROWS)}\n  subject_id: id\n",
        "records with missing/empty Subject ID: 1 row(s) (e.g. data rows 2 of input.csv)",
    ),
    "non-numeric-bins": lambda t: (
        f"input:\n  path: {_file(t, 'age,gender' + chr(10) + '17,F' + chr(10) + f'{CANARY},M' + chr(10))}\n"
        "  bins: {age: [18, 30]}\n",
        "non-numeric value in binned column age",
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_exits_2_without_values_and_keeps_earlier_outputs(
    case: str,
    earlier_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    body, expected = CASES[case](tmp_path)
    cfg = _config(tmp_path, earlier_run, case, body)
    before = _tables_state(earlier_run)
    with caplog.at_level(logging.DEBUG):
        code = main(["prepare", "--config", str(cfg), "--run-id", f"bad-{case}"])
    out = capsys.readouterr()
    assert code == 2, out.err
    assert expected in out.err
    everything = out.out + out.err + caplog.text
    assert CANARY not in everything
    assert _tables_state(earlier_run) == before


def test_manifest_never_holds_values(spark: SparkSession, earlier_run: Path) -> None:
    manifest = delta_io.read_table(spark, RUNS, root=str(earlier_run))
    text = " ".join(str(r.asDict()) for r in manifest.collect())
    assert CANARY not in text
    assert "FAILED" in text  # the bad runs above were recorded, by error class only


@pytest.mark.slow
def test_quarantine_moves_bad_rows_to_private_table(spark: SparkSession, tmp_path: Path) -> None:
    data = _file(tmp_path, GOOD + f"F,{CANARY}\nM,minor,UA\n")
    cfg = _config(tmp_path, tmp_path / "out", "q", f"input:\n  path: {data}\n  on_bad_rows: quarantine\n")
    assert main(["prepare", "--config", str(cfg), "--run-id", "q"]) == 0
    rejected = delta_io.read_run_table(spark, REJECTED, root=str(tmp_path / "out"), run_id="q")
    rows = rejected.select(
        "row_number", "reason", F.col("raw_record").contains(CANARY).alias("kept")
    ).collect()
    assert [(r["row_number"], r["reason"], r["kept"]) for r in rows] == [
        (4, "wrong number of fields (expected 3)", True)
    ]
    records = delta_io.read_run_table(spark, RECORDS, root=str(tmp_path / "out"), run_id="q")
    assert records.count() == 4


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without permission bits")
def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _file(tmp_path, GOOD)
    data.chmod(0)
    cfg = _config(tmp_path, tmp_path / "out", "u", f"input:\n  path: {data}\n")
    assert main(["validate", "--config", str(cfg)]) == 2
    assert "cannot be read" in capsys.readouterr().err
