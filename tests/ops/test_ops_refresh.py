"""Scheduled-refresh semantics (docs/reliability.md 1.2, 1.3, 1.6, 5): reruns, partial failures, manifest,
latest.

Runs the whole pipeline in-process on the shared ``local[2]`` session (tests/ops/_ops.py: 1,500 CTDC-shaped
rows, k = 5, L = 3, explicit seed and release date) under one output root:

* run A completes;
* run B (same input and config, another run id) fails in turn in *every* stage: between the first two
  table commits of prepare, then after all Delta writes of aggregate, synthesize, evaluate and publish,
  then while assembling its bundle, then between the bundle's rename and the ``latest`` switch; each
  rerun resumes; the last completes without running a stage again;
* then B must equal A (rows per table, one commit per run, stage and table, the bundle up to the run
  id), the manifest must tell the story, ``latest`` must have moved only at the end, time travel to A's
  recorded versions must give A's tables, and reruns of finished runs must change nothing;
* a rerun of a run id with changed input (or config) exits 2 and writes nothing;
* a driver killed between two table commits (a real ``os._exit`` in a subprocess) leaves its lock and a
  STARTED row behind; the rerun takes the stale lock over and completes the stage with one commit per
  table.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pytest tests/ops/test_ops_refresh.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _ops
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctdc_spark import cli, pipeline
from ctdc_spark.config import JobConfig, load_config
from ctdc_spark.errors import RunConflictError
from ctdc_spark.io import delta as delta_io
from ctdc_spark.io import files as files_io
from ctdc_spark.io.files import verify_bundle
from ctdc_spark.schemas import REPORTABLE_AGGREGATES

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(2400)]

RUN_A = "ops-run-A"
RUN_B = "ops-run-B"  # same length as RUN_A: bundles are compared byte for byte with the id swapped
RUN_C = "ops-run-C"

# What each stage writes (docs/architecture.md 4, default k-anonymity mode with the risk analysis).
STAGE_TABLES = {
    "prepare": ("records", "attributes", "columns"),
    "aggregate": ("sensitive_aggregates", "reportable_aggregates", "risk_by_length"),
    "synthesize": ("synthetic_records",),
    "evaluate": ("evaluation_metrics",),
    "publish": (),
}
RUN_TABLES = [t for tables in STAGE_TABLES.values() for t in tables]


class InjectedFailure(RuntimeError):
    """A failure a test injects into the driver."""


@dataclass
class World:
    root: Path
    input: Path
    cfg: JobConfig


@dataclass
class Attempt:
    name: str
    error: str | None
    latest: str | None
    bundle_b: bool
    hidden_in_release: list[str]
    stages_run: list[str] = field(default_factory=list)


@dataclass
class Chain:
    attempts: list[Attempt]
    runs_version: int  # the manifest's version right after run B completed
    summary: pipeline.RunSummary


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("refresh")
    data = _ops.write_ctdc_input(base / "input" / "ctdc.csv")
    root = base / "output"
    return World(root, data, load_config(_ops.CONFIG, overrides=_ops.overrides(data, root)))


@pytest.fixture(scope="module")
def first(spark: SparkSession, world: World) -> dict[str, Any]:
    summary = pipeline.run_pipeline(spark, world.cfg, run_id=RUN_A)
    assert summary.stages_run == list(pipeline.STAGES)
    bundle = world.root / "release" / RUN_A
    return {"summary": summary, "bundle": _ops.bundle_bytes(bundle)}


def _latest(world: World) -> str | None:
    link = world.root / "release" / "latest"
    return os.readlink(link) if link.is_symlink() else None


def _fail_after(stage: str) -> Callable[[], dict[str, pipeline.StageFunction]]:
    """A stage registry whose ``stage`` does all its work (and Delta writes), then raises."""
    real_registry = pipeline._stage_functions

    def registry() -> dict[str, pipeline.StageFunction]:
        functions = real_registry()
        real = functions[stage]

        def run_then_fail(spark: SparkSession, ctx: Any) -> Any:
            real(spark, ctx)
            raise InjectedFailure(f"after the {stage} stage's writes")

        functions[stage] = run_then_fail
        return functions

    return registry


@pytest.fixture(scope="module")
def chain(spark: SparkSession, world: World, first: dict[str, Any]) -> Chain:
    real_write = delta_io.write_run_table

    def die_before_attributes(df: Any, spec: Any, **kwargs: Any) -> int:
        if spec.name == "attributes":  # records is committed, attributes never will be
            raise InjectedFailure("between the records and attributes commits")
        return real_write(df, spec, **kwargs)

    def fail_checksums(path: Path) -> str:
        raise InjectedFailure("while checksumming the bundle")

    def fail_switch(release_root: Path, run_id: str) -> Path:
        raise InjectedFailure("between the bundle's rename and the latest switch")

    faults: list[tuple[str, Callable[[pytest.MonkeyPatch], None]]] = [
        (
            "prepare between commits",
            lambda mp: mp.setattr(delta_io, "write_run_table", die_before_attributes),
        ),
        *[
            (
                f"{stage} after writes",
                lambda mp, s=stage: mp.setattr(pipeline, "_stage_functions", _fail_after(s)),
            )
            for stage in ("aggregate", "synthesize", "evaluate", "publish")
        ],
        ("bundle assembly", lambda mp: mp.setattr(files_io, "sha256_file", fail_checksums)),
        ("latest switch", lambda mp: mp.setattr(pipeline, "switch_latest", fail_switch)),
    ]
    attempts = []
    for name, install in faults:
        error = None
        with pytest.MonkeyPatch.context() as mp:
            install(mp)
            try:
                pipeline.run_pipeline(spark, world.cfg, run_id=RUN_B)
            except InjectedFailure as exc:
                error = type(exc).__name__
        release = world.root / "release"
        attempts.append(
            Attempt(
                name,
                error,
                _latest(world),
                (release / RUN_B).exists(),
                sorted(p.name for p in release.iterdir() if p.name.startswith(".")),
            )
        )
    summary = pipeline.run_pipeline(spark, world.cfg, run_id=RUN_B)
    attempts.append(
        Attempt("clean rerun", None, _latest(world), (world.root / "release" / RUN_B).exists(), [])
    )
    attempts[-1].stages_run = summary.stages_run
    runs_version = _ops.latest_versions(world.root)["runs"]
    return Chain(attempts, runs_version, summary)


def _manifest(
    spark: SparkSession, world: World, run_id: str, *, version: int | None = None
) -> list[dict[str, Any]]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    rows = reader.load(str(world.root / "tables" / "runs")).where(F.col("run_id") == run_id).collect()
    return [r.asDict() for r in rows]


def _snapshot(world: World) -> tuple[dict[str, int], dict[str, str]]:
    return _ops.latest_versions(world.root), _ops.file_tree(world.root)


# ------------------------------------------------------------------ Delta write semantics (tiny data)


def test_run_table_writes_replace_only_their_run_and_retries_are_no_ops(
    spark: SparkSession, tmp_path: Path
) -> None:
    root = str(tmp_path)
    path = delta_io.table_path(root, REPORTABLE_AGGREGATES.name)

    def frame(run_id: str, count: int) -> Any:
        return spark.createDataFrame(
            [(run_id, 1, "a:1", count, [1])],
            "run_id string, length int, selections string, protected_count long, combo array<int>",
        )

    def write(run_id: str, count: int, signature: str = "content-1") -> int:
        return delta_io.write_run_table(
            frame(run_id, count),
            REPORTABLE_AGGREGATES,
            root=root,
            run_id=run_id,
            signature=signature,
            stage="t",
        )

    def counts() -> dict[str, int]:
        return {r["run_id"]: r["protected_count"] for r in spark.read.format("delta").load(path).collect()}

    assert write("x", 10) == 0
    assert write("y", 20) == 1
    # A retry of x (same txnAppId/txnVersion) commits nothing and names x's own commit, not y's.
    assert write("x", 10) == 0
    assert delta_io.latest_version(spark, path) == 1
    # Delta silently drops a "retry" with different data under the same app id ...
    assert write("x", 99) == 0
    assert counts() == {"x": 10, "y": 20}
    # ... which is why the app id carries the run's signature (input fingerprint + config hash):
    # other content is another app id, and replaces the run's rows.
    assert write("x", 99, signature="content-2") == 2
    assert counts() == {"x": 99, "y": 20}
    history = {
        r["version"]: json.loads(r["userMetadata"])
        for r in delta_io.DeltaTable.forPath(spark, path).history().collect()
    }
    assert history == {
        0: {"run_id": "x", "stage": "t", "table": "reportable_aggregates"},
        1: {"run_id": "y", "stage": "t", "table": "reportable_aggregates"},
        2: {"run_id": "x", "stage": "t", "table": "reportable_aggregates"},
    }
    # replaceWhere checks every written row against the run's predicate.
    with pytest.raises(Exception, match="DELTA_REPLACE_WHERE_MISMATCH"):
        delta_io.write_run_table(
            frame("y", 5), REPORTABLE_AGGREGATES, root=root, run_id="z", signature="content-1", stage="t"
        )
    assert counts() == {"x": 99, "y": 20}


# --------------------------------------------------------------------------------- partial failures


def test_every_injected_failure_fails_the_attempt_and_leaves_latest_on_the_previous_release(
    world: World, chain: Chain
) -> None:
    failed = chain.attempts[:-1]
    assert [a.error for a in failed] == ["InjectedFailure"] * len(failed), [(a.name, a.error) for a in failed]
    assert all(a.latest == RUN_A for a in failed), [(a.name, a.latest) for a in failed]
    # No bundle of B until it was complete; the one failed assembly left no half-built copy behind.
    assert [a.bundle_b for a in failed] == [False] * 6 + [True]
    assert all(a.hidden_in_release == [] for a in chain.attempts), [
        (a.name, a.hidden_in_release) for a in failed
    ]
    done = chain.attempts[-1]
    assert (done.latest, done.bundle_b, done.stages_run) == (RUN_B, True, [])
    # Earlier releases stay, intact.
    assert verify_bundle(world.root / "release" / RUN_A) == []
    assert verify_bundle(world.root / "release" / RUN_B) == []


def test_resumed_run_has_the_same_rows_as_a_clean_run_and_no_duplicates(
    spark: SparkSession, world: World, chain: Chain
) -> None:
    assert sorted(_ops.table_dirs(world.root)) == sorted([*RUN_TABLES, "runs"])
    for table in RUN_TABLES:
        clean = _ops.run_rows_hash(spark, world.root, table, RUN_A)
        resumed = _ops.run_rows_hash(spark, world.root, table, RUN_B)
        assert clean[0] > 0, table
        assert resumed == clean, table


def test_each_table_has_exactly_one_commit_per_run_and_stage(world: World, chain: Chain) -> None:
    tables = _ops.table_dirs(world.root)
    for stage, names in STAGE_TABLES.items():
        for name in names:
            for run_id in (RUN_A, RUN_B):
                found = _ops.run_commits(tables[name], run_id)
                assert [c["meta"] for c in found] == [{"run_id": run_id, "stage": stage, "table": name}], (
                    name,
                    run_id,
                )
                assert found[0]["operation"] == "WRITE"
                assert found[0]["operationParameters"]["predicate"] == f"run_id = '{run_id}'"


def test_the_released_bundle_of_the_resumed_run_equals_the_clean_one(
    world: World, first: dict[str, Any], chain: Chain
) -> None:
    clean = first["bundle"]
    resumed = _ops.bundle_bytes(world.root / "release" / RUN_B)
    assert sorted(resumed) == sorted(clean)
    for name, data in clean.items():
        if name == "SHA256SUMS":
            continue  # lists the checksum of metadata.json, which names the run
        assert resumed[name] == data.replace(RUN_A.encode(), RUN_B.encode()), name
    # The clean run's own release did not change either.
    assert _ops.bundle_bytes(world.root / "release" / RUN_A) == clean


def test_manifest_tells_the_story_of_the_resumed_run(spark: SparkSession, world: World, chain: Chain) -> None:
    rows = _manifest(spark, world, RUN_B)
    a_rows = _manifest(spark, world, RUN_A)
    # One input and one config behind every row of both runs.
    assert {(r["input_fingerprint"], r["config_hash"]) for r in rows + a_rows} == {
        (a_rows[0]["input_fingerprint"], world.cfg.config_hash())
    }
    assert len(a_rows[0]["input_fingerprint"]) == 64
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_stage.setdefault(r["stage"], []).append(r)
    for stage in pipeline.STAGES:
        statuses = sorted(r["status"] for r in by_stage[stage])
        # One failed attempt and one successful rerun (each invocation's STARTED row is run-level).
        assert statuses == ["FAILED", "SUCCEEDED"], (stage, statuses)
        failed = next(r for r in by_stage[stage] if r["status"] == "FAILED")
        assert failed["error_class"] == "InjectedFailure"
        ok = next(r for r in by_stage[stage] if r["status"] == "SUCCEEDED")
        assert ok["ended_at"] >= ok["started_at"]
        assert ok["elapsed_seconds"] == pytest.approx(
            (ok["ended_at"] - ok["started_at"]).total_seconds(), abs=1e-3
        )
        assert ok["row_counts"], stage
        assert set(ok["library_versions"]) >= {"ctdc_spark", "spark", "delta-spark"}
        # The versions recorded are those of the commits holding the run's rows.
        tables = _ops.table_dirs(world.root)
        assert ok["delta_versions"] == {
            t: _ops.run_commits(tables[t], RUN_B)[0]["version"] for t in STAGE_TABLES[stage]
        }, stage
    counts = {
        s: next(r for r in by_stage[s] if r["status"] == "SUCCEEDED")["row_counts"] for s in pipeline.STAGES
    }
    assert counts["prepare"]["records"] == _ops.ROWS
    assert (
        counts["aggregate"]["reportable_aggregates"]
        == _ops.run_rows_hash(spark, world.root, "reportable_aggregates", RUN_B)[0]
    )
    assert (
        counts["synthesize"]["synthetic_records"]
        == _ops.run_rows_hash(spark, world.root, "synthetic_records", RUN_B)[0]
    )
    # Run level: a STARTED row per invocation that had stages to run, never FAILED, and one
    # SUCCEEDED row, the last write of the run.
    run_rows = by_stage[pipeline.RUN_STAGE]
    (run_row,) = [r for r in run_rows if r["status"] == "SUCCEEDED"]
    started = [r for r in run_rows if r["status"] == "STARTED"]
    assert len(started) + 1 == len(run_rows) and len(started) >= len(pipeline.STAGES)
    assert all(r["started_at"] <= run_row["ended_at"] for r in started)
    assert run_row["ended_at"] >= max(r["ended_at"] for r in rows if r["ended_at"] is not None)

    def run_succeeded(version: int) -> bool:
        return any(
            (r["stage"], r["status"]) == (pipeline.RUN_STAGE, "SUCCEEDED")
            for r in _manifest(spark, world, RUN_B, version=version)
        )

    assert run_succeeded(chain.runs_version) and not run_succeeded(chain.runs_version - 1)
    release_time = dt.datetime.fromtimestamp((world.root / "release" / RUN_B / "SHA256SUMS").stat().st_mtime)
    assert run_row["ended_at"] >= release_time - dt.timedelta(seconds=1)


def test_time_travel_to_recorded_versions_reproduces_earlier_tables(
    spark: SparkSession, world: World, chain: Chain
) -> None:
    a_ok = {r["stage"]: r for r in _manifest(spark, world, RUN_A) if r["status"] == "SUCCEEDED"}
    b_ok = {r["stage"]: r for r in _manifest(spark, world, RUN_B) if r["status"] == "SUCCEEDED"}
    for stage, tables in STAGE_TABLES.items():
        for table in tables:
            a_version = a_ok[stage]["delta_versions"][table]
            b_version = b_ok[stage]["delta_versions"][table]
            # B's commits came later and rewrote the table (new files, new versions) ...
            assert b_version > a_version, table
            # ... yet A's recorded version still reads as A's table: A's rows, nothing of B.
            assert _ops.run_rows_hash(
                spark, world.root, table, RUN_A, version=a_version
            ) == _ops.run_rows_hash(spark, world.root, table, RUN_A), table
            assert _ops.run_rows_hash(spark, world.root, table, RUN_B, version=a_version) == (0, 0), table
            assert _ops.run_rows_hash(
                spark, world.root, table, RUN_B, version=b_version
            ) == _ops.run_rows_hash(spark, world.root, table, RUN_B), table


# ------------------------------------------------------------------------------------------- reruns


def test_rerunning_finished_runs_changes_nothing(spark: SparkSession, world: World, chain: Chain) -> None:
    before = _snapshot(world)
    for run_id in (RUN_A, RUN_B):
        summary = pipeline.run_pipeline(spark, world.cfg, run_id=run_id)
        assert summary.stages_run == [] and summary.release_dir == str(world.root / "release" / run_id)
    # Asking for one stage of a finished run is a no-op too (and does not move `latest` back to A).
    assert pipeline.run_pipeline(spark, world.cfg, stages=["aggregate"], run_id=RUN_A).stages_run == []
    assert pipeline.run_pipeline(spark, world.cfg, stages=["publish"], run_id=RUN_A).stages_run == []
    after = _snapshot(world)
    assert after[0] == before[0]  # no new Delta version in any table, the manifest included
    assert after[1] == before[1]  # the same files with the same bytes, `latest` unchanged


@pytest.fixture
def _keep_logging() -> Iterator[None]:
    """cli.main configures the root logger; give pytest its handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("ctdc_spark", "py4j")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_changed_input_or_config_under_a_finished_run_id_exits_2_and_writes_nothing(
    spark: SparkSession,
    world: World,
    chain: Chain,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    _keep_logging: None,
) -> None:
    monkeypatch.setattr("ctdc_spark.session.build_session", lambda cfg, under_spark_submit: spark)
    original = world.input.read_bytes()
    before = _snapshot(world)
    args = ["run", *_ops.app_args(RUN_B, world.input, world.root)]
    try:
        lines = original.split(b"\r\n")
        world.input.write_bytes(b"\r\n".join([*lines[:-1], lines[1], b""]))  # one more (duplicate) record
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert f"run {RUN_B} already exists with a different input" in err
        assert "Use a new --run-id" in err
    finally:
        world.input.write_bytes(original)
    assert cli.main([*args, "--set", "privacy.resolution=6"]) == 2
    assert "already exists with a different config" in capsys.readouterr().err
    assert _snapshot(world) == before
    with pytest.raises(RunConflictError) as info:
        pipeline.run_pipeline(
            spark,
            load_config(
                _ops.CONFIG, overrides=_ops.overrides(world.input, world.root, "privacy.reporting_length=2")
            ),
            run_id=RUN_A,
        )
    assert info.value.exit_code == 2


# ------------------------------------------------------------------------- a killed driver (process)


def test_driver_killed_between_table_commits_is_resumed_by_the_rerun(
    spark: SparkSession, world: World, chain: Chain
) -> None:
    args = [*_ops.app_args(RUN_C, world.input, world.root, "spark.master=local[2]"), "--stages", "prepare"]
    env = _ops.clean_env(pythonpath=True, CTDC_OPS_EXIT_AFTER_COMMIT="records")
    killed = _ops.run(_ops.cli_command("run", args), env=env)
    assert killed.returncode == 1, killed.tail()
    assert f"run {RUN_C}" not in killed.stdout  # it never got to report anything
    lock = world.root / "locks" / f"{RUN_C}.lock"
    owner = json.loads(lock.read_text())  # left behind by the dead driver
    with pytest.raises(ProcessLookupError):
        os.kill(owner["pid"], 0)
    tables = _ops.table_dirs(world.root)
    assert len(_ops.run_commits(tables["records"], RUN_C)) == 1
    assert _ops.run_commits(tables["attributes"], RUN_C) == []
    statuses = [(r["stage"], r["status"]) for r in _manifest(spark, world, RUN_C)]
    # The invocation's run-level STARTED row and no stage row: the process just vanished.
    assert statuses == [(pipeline.RUN_STAGE, "STARTED")]

    summary = pipeline.run_pipeline(spark, world.cfg, stages=["prepare"], run_id=RUN_C)
    assert summary.stages_run == ["prepare"]
    assert not lock.exists()
    for table in STAGE_TABLES["prepare"]:
        assert len(_ops.run_commits(_ops.table_dirs(world.root)[table], RUN_C)) == 1, table
        assert _ops.run_rows_hash(spark, world.root, table, RUN_C) == _ops.run_rows_hash(
            spark, world.root, table, RUN_A
        )
    assert sorted(r["status"] for r in _manifest(spark, world, RUN_C)) == ["STARTED", "STARTED", "SUCCEEDED"]


def test_a_lock_held_by_a_live_process_refuses_the_run(
    spark: SparkSession, world: World, chain: Chain
) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock = world.root / "locks" / f"{RUN_A}.lock"
    try:
        lock.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(RunConflictError, match=f"run {RUN_A} is already in progress"):
            pipeline.run_pipeline(spark, world.cfg, run_id=RUN_A)
        assert lock.exists()  # someone else's lock is never removed
    finally:
        sleeper.kill()
        sleeper.wait()
        lock.unlink(missing_ok=True)
