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


def test_every_place_naming_the_delta_artifact_names_the_session_s() -> None:
    """Code takes the coordinate from ctdc_spark.session; docs, configs and deploy files are checked here."""
    from ctdc_spark.session import DELTA_PACKAGE

    mentions: dict[str, set[str]] = {}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in tracked.stdout.splitlines():
        path = REPO / name
        if path.suffix in {".py", ".md", ".yaml", ".yml", ".json", ".toml", ".sh"} and path.is_file():
            found = set(re.findall(r"io\.delta:delta-spark_[\w.]+:[\w.]+", path.read_text(encoding="utf-8")))
            if found:
                mentions[name] = found
    assert len(mentions) >= 10, "the scan found the coordinate where it is documented"
    assert {name: found for name, found in mentions.items() if found != {DELTA_PACKAGE}} == {}
    pinned = re.search(r'"delta-spark==([\d.]+)"', (REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pinned and DELTA_PACKAGE.endswith(f":{pinned.group(1)}"), "the jar and the pip package agree"
