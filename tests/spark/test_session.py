"""Session building: Delta's jars are resolved once, then loaded directly on every later start."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from ctdc_spark.session import cached_delta_jars, delta_jars_cache
from tests.conftest import REPO


def test_cached_jars_are_used_only_while_every_file_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cached_delta_jars() is None
    jars = [tmp_path / "io.delta_delta-spark_4.1_2.13-4.3.1.jar", tmp_path / "antlr.jar"]
    for jar in jars:
        jar.write_bytes(b"PK")
    delta_jars_cache().parent.mkdir(parents=True)
    delta_jars_cache().write_text(",".join(f"file://{j}" for j in jars))
    assert cached_delta_jars() == ",".join(f"file://{j}" for j in jars)
    jars[1].unlink()
    assert cached_delta_jars() is None


@pytest.mark.spark
@pytest.mark.slow
def test_a_second_start_needs_no_dependency_resolution(spark: SparkSession, tmp_path: Path) -> None:
    # The session fixture was built through build_session, which remembered the resolved jars.
    assert cached_delta_jars() is not None
    probe = (
        "from ctdc_spark.config import SparkConfig\n"
        "from ctdc_spark.session import build_session\n"
        "s = build_session(SparkConfig(master='local[1]'), under_spark_submit=False)\n"
        "s.range(3).write.format('delta').save(__import__('sys').argv[1])\n"
        "s.stop()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "table")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resolving dependencies" not in done.stderr and ":: retrieving ::" not in done.stderr


# Where the Delta coordinate may be written out: its definition, the README (the one place the docs
# state it; the rest say $DELTA_PACKAGE), and files that cannot import it: docker-compose.yml (YAML),
# the Airflow DAG (it must parse on schedulers without ctdc_spark) and scripts/local_cluster.py's
# docstring.
WRITTEN_OUT = {
    "ctdc_spark/session.py": 1,
    "README.md": 1,
    "docker-compose.yml": 1,
    "deploy/airflow/ctdc_refresh_dag.py": 1,
    "scripts/local_cluster.py": 1,
}


def test_the_delta_artifact_is_written_out_only_where_it_cannot_be_imported() -> None:
    """Code takes the coordinate from ctdc_spark.session; the few files that cannot are checked here."""
    from ctdc_spark.session import DELTA_PACKAGE

    mentions: dict[str, list[str]] = {}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in tracked.stdout.splitlines():
        path = REPO / name
        if not path.is_file():
            continue
        found = re.findall(rb"io\.delta:delta-spark_[\w.]+:[\w.]+", path.read_bytes())
        if found:
            mentions[name] = [coordinate.decode() for coordinate in found]
    assert {name: len(found) for name, found in mentions.items()} == WRITTEN_OUT
    assert {name: set(found) for name, found in mentions.items() if set(found) != {DELTA_PACKAGE}} == {}


def test_the_delta_artifact_matches_the_pinned_pyspark_and_delta_spark() -> None:
    from ctdc_spark.session import DELTA_PACKAGE

    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    pins = dict(re.findall(r'"(pyspark|delta-spark)==([\d.]+)"', pyproject))
    spark_line = ".".join(pins["pyspark"].split(".")[:2])
    # Spark 4.x is built for Scala 2.13 only.
    assert DELTA_PACKAGE == f"io.delta:delta-spark_{spark_line}_2.13:{pins['delta-spark']}"
