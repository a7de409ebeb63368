"""Runs started at the same time against one output root (docs/reliability.md 1.1, 5.2).

Three CLI processes start together on the same input and output root (tests/ops/_ops.py data, conf/local.yaml,
``local[2]`` each): X and Y with different run ids, and a second X. Expected:

* X and Y both succeed: their Delta writes touch disjoint ``run_id`` partitions, and the commits that
  can collide (creating a table, appending to the manifest) are retried;
* of the two X processes exactly one runs; the other exits 2 with the run-lock message and writes nothing;
* nothing is corrupted: every Delta table reads, each run's rows are complete (equal to the other run's,
  as input, config and seed are the same), each table holds one commit per run, the manifest versions
  name those commits, both bundles verify against their SHA256SUMS and are equal up to the run id.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pytest tests/ops/test_ops_concurrency.py`` (a few minutes on 2
cores: two whole pipelines share them).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import _ops
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctdc_spark.io.files import verify_bundle
from ctdc_spark.pipeline import STAGES

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.timeout(3600)]

RUN_X = "ops-conc-X"
RUN_Y = "ops-conc-Y"


@dataclass
class Concurrent:
    root: Path
    results: dict[str, _ops.Finished]


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory: pytest.TempPathFactory) -> Concurrent:
    base = tmp_path_factory.mktemp("concurrency")
    data = _ops.write_ctdc_input(base / "input" / "ctdc.csv")
    root = base / "output"
    env = _ops.clean_env(pythonpath=True)
    jobs = {"x1": RUN_X, "y": RUN_Y, "x2": RUN_X}
    procs = {}
    started = time.monotonic()
    for name, run_id in jobs.items():
        args = _ops.app_args(run_id, data, root, "spark.master=local[2]")
        out, err = (open(base / f"{name}.{s}", "w") for s in ("out", "err"))
        procs[name] = (
            subprocess.Popen(_ops.cli_command("run", args), env=env, cwd=base, stdout=out, stderr=err),
            out,
            err,
        )
    results = {}
    for name, (proc, out, err) in procs.items():
        try:
            code = proc.wait(timeout=_ops.RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()
            err.close()
        results[name] = _ops.Finished(
            code,
            (base / f"{name}.out").read_text(),
            (base / f"{name}.err").read_text(),
            time.monotonic() - started,
        )
        print(f"{name} ({jobs[name]}): exit {code} after {results[name].seconds:.0f}s")
    return Concurrent(root, results)


def test_the_same_run_id_twice_at_once_one_fails_cleanly_with_the_lock_message(
    concurrent: Concurrent,
) -> None:
    x1, x2 = concurrent.results["x1"], concurrent.results["x2"]
    assert sorted([x1.returncode, x2.returncode]) == [0, 2], x1.tail() + x2.tail()
    loser = x1 if x1.returncode == 2 else x2
    assert f"error: run {RUN_X} is already in progress (lock " in loser.stderr
    assert "start this run with another --run-id" in loser.stderr
    assert "Traceback" not in loser.stderr
    assert loser.stdout == ""


def test_two_run_ids_at_once_both_succeed(concurrent: Concurrent) -> None:
    winner = next(r for k, r in concurrent.results.items() if k != "y" and r.returncode == 0)
    y = concurrent.results["y"]
    assert y.returncode == 0, y.tail()
    for run_id, result in ((RUN_X, winner), (RUN_Y, y)):
        assert f"run {run_id}: ran {', '.join(STAGES)} in" in result.stdout


def test_nothing_is_corrupted_and_each_run_is_complete(spark: SparkSession, concurrent: Concurrent) -> None:
    root = concurrent.root
    tables = _ops.table_dirs(root)
    for name, table in tables.items():
        assert spark.read.format("delta").load(str(table)).count() > 0, name
        if name == "runs":
            continue
        assert _ops.run_rows_hash(spark, root, name, RUN_X) == _ops.run_rows_hash(spark, root, name, RUN_Y), (
            name
        )
        for run_id in (RUN_X, RUN_Y):
            assert len(_ops.run_commits(table, run_id)) == 1, (name, run_id)
    manifest = spark.read.format("delta").load(str(tables["runs"]))
    for run_id in (RUN_X, RUN_Y):
        rows = [r.asDict() for r in manifest.where(F.col("run_id") == run_id).collect()]
        # One attempt per run id: the process refused by the lock wrote no manifest row.
        assert len({r["attempt_id"] for r in rows}) == 1, run_id
        ok = {r["stage"]: r for r in rows if r["status"] == "SUCCEEDED"}
        assert sorted(ok) == sorted([*STAGES, "run"]), run_id
        for stage, row in ok.items():
            for table, version in (row["delta_versions"] or {}).items():
                # The version recorded is the run's own commit, not the other run's concurrent one.
                assert version == _ops.run_commits(tables[table], run_id)[0]["version"], (
                    run_id,
                    stage,
                    table,
                )
    bundles = {run_id: root / "release" / run_id for run_id in (RUN_X, RUN_Y)}
    for bundle in bundles.values():
        assert verify_bundle(bundle) == []
    x, y = (_ops.bundle_bytes(b) for b in bundles.values())
    assert sorted(x) == sorted(y)
    for name, data in x.items():
        if name != "SHA256SUMS":
            assert y[name] == data.replace(RUN_X.encode(), RUN_Y.encode()), name
    assert os.readlink(root / "release" / "latest") in (RUN_X, RUN_Y)
    assert sorted(p.name for p in (root / "release").iterdir()) == sorted([RUN_X, RUN_Y, "latest"])
    assert list((root / "locks").iterdir()) == []
