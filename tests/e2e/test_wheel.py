"""The built wheel works on its own: validate without pyspark, then the embedded default in an empty folder.

This is the README's promise to someone who only has the wheel: no checkout, no conf/ folder, no
sample file beside them. The wheel ships the embedded default and its sample as package data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CTDC"))}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_the_built_wheel_validates_without_pyspark_then_runs_the_embedded_default(tmp_path: Path) -> None:
    dist, venv, empty = tmp_path / "dist", tmp_path / "v", tmp_path / "empty"
    empty.mkdir()
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(REPO)], REPO
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("ctdc_spark-*.whl")
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    pip, cli = str(venv / "bin/pip"), str(venv / "bin/ctdc-spark")

    core = _run([pip, "install", "--quiet", str(wheel)], tmp_path)
    assert core.returncode == 0, core.stderr[-2000:]
    assert _run([str(venv / "bin/python"), "-c", "import pyspark"], empty).returncode != 0
    assert _run([cli, "--help"], empty).returncode == 0
    validated = _run([cli, "validate"], empty)
    assert validated.returncode == 0, validated.stderr[-2000:]
    assert "config OK; input OK" in validated.stdout and "58 used" in validated.stdout

    local = _run([pip, "install", "--quiet", f"{wheel}[local]"], tmp_path)
    assert local.returncode == 0, local.stderr[-2000:]
    done = _run([cli, "run"], empty)
    assert done.returncode == 0, done.stderr[-3000:]
    match = re.search(r"^release bundle: (.+)$", done.stdout, re.MULTILINE)
    assert match, done.stdout[-2000:]
    bundle = Path(match.group(1))
    assert bundle.parent == empty / "output" / "release"
    assert {"README.md", "codebook.csv", "LICENSE", "explorer"} <= {p.name for p in bundle.iterdir()}
    assert sorted(p.name for p in empty.iterdir()) == ["output"], "nothing but the output in the folder"
