"""Shared helpers of the operations tests (``tests/test_ops_*.py``): input, commands, snapshots, scans.

Every operations test runs the whole pipeline on the same small CTDC-shaped input (1,500 rows of
``tools/ctdc_model.py::generate_ctdc_like``) with ``conf/local.yaml``, k = 5, the default L = 3 and an
explicit synthesis seed and release date, so any two runs of one run id give byte-identical bundles.
The input carries planted canaries: values too rare to be published (count < k) in two used columns and
one value in a column the config does not use. They may appear in private tables and files only.

Nothing here needs Spark except :func:`run_rows_hash`; Delta commits are read straight from
``_delta_log`` JSON, so tests can inspect what another process wrote without a session.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdc_spark._faults import FAULT_HOOK_ENV

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CONFIG = REPO / "conf" / "local.yaml"
DRIVER = REPO / "tests" / "ops" / "ops_pipeline_driver.py"
JOBS = REPO / "jobs"

ROWS = 1_500
DATA_SEED = 7
RESOLUTION = 5
SYNTHESIS_SEED = 20260101
RELEASE_DATE = "2026-01-01"
RUN_TIMEOUT = 1_500  # seconds for one subprocess pipeline run on a busy 2-core machine

RARE_CANARIES = {
    "citizenship": ("Zq7RareCitizenA", [10]),
    "CountryOfExploitation": ("Zq7RareCountryB", [20, 30]),
}
"""Column -> (value, rows): values below k that must never be published."""
UNUSED_CANARY = ("meansOfControlConcatenated", "Zq7UnusedColumnC", [40])
"""A value in a column ``conf/local.yaml`` leaves out: it must not appear under ``output.root`` at all."""
CANARIES = (*(v for v, _ in RARE_CANARIES.values()), UNUSED_CANARY[1])

_HOOK_ENV = (
    FAULT_HOOK_ENV,
    "CTDC_OPS_EXIT_AFTER_COMMIT",
    "CTDC_OPS_SPARK_FAILURE",
    "CTDC_OPS_SESSION_REPORT",
)


# ------------------------------------------------------------------------------------------- input


def write_ctdc_input(path: Path, rows: int = ROWS, seed: int = DATA_SEED) -> Path:
    """Write the CTDC-shaped test input with the planted canaries; return its path."""
    from tools.ctdc_model import generate_ctdc_like
    from tools.generate_sample import write_csv

    frame = generate_ctdc_like(rows, seed)
    for column, (value, at) in RARE_CANARIES.items():
        frame.loc[at, column] = value
    column, value, at = UNUSED_CANARY
    frame.loc[at, column] = value
    write_csv(frame, path)
    return path


def write_tiny_input(path: Path, canary: str, *, extra_field: bool = False) -> Path:
    """40 rows of small numbers in columns a, b, c with ``canary`` in one cell of row 7.

    With ``extra_field`` the canary is a fourth field of that row instead, i.e. a malformed row.
    """
    rows = ["a,b,c", *[f"{i % 3 + 1},{i % 2 + 1},{i % 4 + 1}" for i in range(40)]]
    rows[7] = f"1,2,3,{canary}" if extra_field else f"{canary},1,2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def tiny_args(run_id: str, input_path: Path, output_root: Path, *extra_sets: str) -> list[str]:
    """Arguments for a run on :func:`write_tiny_input` data (conf/local.yaml names CTDC columns)."""
    args = ["--config", str(CONFIG), "--run-id", run_id]
    for item in (
        f"input.path={input_path}",
        f"output.root={output_root}",
        "input.use_columns=[]",
        *extra_sets,
    ):
        args += ["--set", item]
    return args


def overrides(input_path: Path, output_root: Path, *extra: str) -> list[str]:
    """``--set`` values (without the flag) shared by every operations run."""
    return [
        f"input.path={input_path}",
        f"output.root={output_root}",
        f"privacy.resolution={RESOLUTION}",
        f"synthesis.seed={SYNTHESIS_SEED}",
        f"explorer.release_date={RELEASE_DATE}",
        *extra,
    ]


def app_args(run_id: str, input_path: Path, output_root: Path, *extra_sets: str) -> list[str]:
    """Arguments of ``jobs/*.py`` / ``ctdc-spark <command>`` after the command name."""
    args = ["--config", str(CONFIG), "--run-id", run_id]
    for item in overrides(input_path, output_root, *extra_sets):
        args += ["--set", item]
    return args


def clean_env(*, pythonpath: bool, **extra: str) -> dict[str, str]:
    """This process's environment without fault hooks or config overrides, plus ``extra``.

    Args:
        pythonpath: put the checkout first on ``PYTHONPATH`` (plain ``python`` runs); False removes
            ``PYTHONPATH`` entirely, so spark-submit runs import ``ctdc_spark`` from ``--py-files`` only.
    """
    env = {
        k: v for k, v in os.environ.items() if k not in _HOOK_ENV and not k.startswith(("CTDC__", "PYSPARK_"))
    }
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = str(REPO)
    env["PYSPARK_PYTHON"] = PYTHON
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env.pop("SPARK_CONF_DIR", None)
    env.update(extra)
    return env


@dataclass
class Finished:
    """A finished subprocess: exit code, captured output, wall time."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def tail(self, chars: int = 4000) -> str:
        return (
            f"exit {self.returncode}\n--- stdout\n{self.stdout[-chars:]}\n--- stderr\n{self.stderr[-chars:]}"
        )


def run(
    cmd: Sequence[str], *, env: Mapping[str, str], timeout: float = RUN_TIMEOUT, cwd: Path = REPO
) -> Finished:
    """Run a command to completion, capturing its output."""
    started = time.monotonic()
    done = subprocess.run(
        list(cmd), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def cli_command(command: str, args: Sequence[str]) -> list[str]:
    """``python tests/ops/ops_pipeline_driver.py <command> ...``: the CLI (plus env-driven test faults)."""
    return [PYTHON, str(DRIVER), command, *args]


def spark_submit_command(
    master: str, app: Path, args: Sequence[str], *, py_files: Path, confs: Mapping[str, str] | None = None
) -> list[str]:
    """The spark-submit line ``scripts/local_cluster.py`` uses, for any master (e.g. ``local[2]``)."""
    lc = load_local_cluster()
    spark_home = lc._spark_home(PYTHON)
    all_confs = {
        **lc.APP_CONFS,
        **lc.DELTA_CONF,
        "spark.pyspark.python": PYTHON,
        "spark.pyspark.driver.python": PYTHON,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{lc.LOG4J2_CONF}",
        "spark.executor.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{lc.LOG4J2_CONF}",
        **(confs or {}),
    }
    cmd = [str(spark_home / "bin" / "spark-submit"), "--master", master, "--deploy-mode", "client"]
    cmd += ["--packages", lc.DELTA_PACKAGE]
    for key, value in all_confs.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, "--py-files", str(py_files), str(app), *args]


def load_local_cluster() -> Any:
    """``scripts/local_cluster.py`` as a module (it is a script, not a package module)."""
    import importlib.util

    if "local_cluster" in sys.modules:
        return sys.modules["local_cluster"]
    spec = importlib.util.spec_from_file_location("local_cluster", REPO / "scripts" / "local_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_cluster"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def build_zip(dest: Path) -> Path:
    """The ``--py-files`` zip of this checkout (scripts/build_pyfiles.py)."""
    from scripts.build_pyfiles import build_pyfiles_zip

    return Path(build_pyfiles_zip(dest, REPO))


# --------------------------------------------------------------------------------------- snapshots


def table_dirs(root: Path) -> dict[str, Path]:
    """Delta tables under ``<root>/tables``."""
    base = root / "tables"
    return {p.name: p for p in sorted(base.iterdir()) if (p / "_delta_log").is_dir()} if base.is_dir() else {}


def commits(table: Path) -> list[dict[str, Any]]:
    """Every commit's ``commitInfo`` (with ``version``) from ``_delta_log/*.json``, oldest first."""
    found = []
    for path in sorted((table / "_delta_log").glob("*.json")):
        if not re.fullmatch(r"\d{20}\.json", path.name):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "commitInfo" in action:
                found.append({**action["commitInfo"], "version": int(path.stem)})
    return found


def latest_versions(root: Path) -> dict[str, int]:
    """``{table: latest version}`` of every table under ``root``."""
    return {name: commits(path)[-1]["version"] for name, path in table_dirs(root).items()}


def run_commits(table: Path, run_id: str) -> list[dict[str, Any]]:
    """Commits whose ``userMetadata`` names ``run_id``."""
    out = []
    for info in commits(table):
        meta = json.loads(info["userMetadata"]) if info.get("userMetadata") else {}
        if meta.get("run_id") == run_id:
            out.append({**info, "meta": meta})
    return out


def file_tree(root: Path, *, skip: Iterable[str] = ("locks",)) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (symlinks as ``-> target``)."""
    skipped = set(skip)
    tree = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in skipped:
            continue
        if path.is_symlink():
            tree[rel.as_posix()] = f"-> {os.readlink(path)}"
        elif path.is_file():
            tree[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


def bundle_bytes(bundle: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of a release bundle."""
    return {
        p.relative_to(bundle).as_posix(): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()
    }


def run_rows_hash(
    spark: Any, root: Path, table: str, run_id: str, *, version: int | None = None
) -> tuple[int, int]:
    """``(rows, order-free content hash)`` of one run's rows of a table, without the run_id column."""
    from pyspark.sql import functions as F

    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    df = reader.load(str(root / "tables" / table)).where(F.col("run_id") == run_id).drop("run_id")
    row = df.agg(F.count("*"), F.sum(F.xxhash64(*df.columns) % F.lit(2**31))).collect()[0]
    return int(row[0]), int(row[1] or 0)


# -------------------------------------------------------------------------------------------- scans

_SKIP_SUFFIXES = (".jar", ".zip", ".parquet", ".crc")


def find_text(paths: Iterable[Path | str], needles: Iterable[str]) -> list[str]:
    """``path: needle`` for every needle found in the bytes of any file under ``paths`` (or in a string).

    Compressed files (jars, the ``--py-files`` zip, Parquet data) are skipped: a scan of their bytes
    proves nothing. Strings (captured output) are searched as they are.
    """
    wanted = [n.encode() for n in needles]
    hits = []
    for item in paths:
        if isinstance(item, str):
            hits += [f"<text>: {n.decode()}" for n in wanted if n in item.encode()]
            continue
        files = [item] if item.is_file() else sorted(p for p in item.rglob("*") if p.is_file())
        for path in files:
            if path.name.endswith(_SKIP_SUFFIXES):
                continue
            data = path.read_bytes()
            hits += [f"{path}: {n.decode()}" for n in wanted if n in data]
    return hits
