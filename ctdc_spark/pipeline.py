"""Run stages for a run id and keep the run manifest (docs/architecture.md sections 3-4, docs/reliability.md
5).

A run is identified by its run id: given with ``--run-id`` or derived from the input fingerprint
and the config hash, so rerunning an unchanged refresh is a no-op. An invocation appends a run-level
``STARTED`` row, then one ``SUCCEEDED``/``FAILED`` row per stage attempt (with its start and end
times) to the append-only ``runs`` Delta table; the run-level ``SUCCEEDED`` row is written last,
after the release bundle is complete. A run id whose manifest
holds a different input fingerprint or config hash is refused loudly, because Delta's idempotent
writes would silently ignore the changed data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctdc_spark import __version__
from ctdc_spark.config import JobConfig
from ctdc_spark.dp import PRODUCTION_NOISE, NoiseSource
from ctdc_spark.errors import ConfigError, RunConflictError, StageFailedError, error_class_of
from ctdc_spark.io import delta as delta_io
from ctdc_spark.io.files import assemble_bundle, switch_latest
from ctdc_spark.io.paths import is_local_path, local_path
from ctdc_spark.prepare import list_input_files
from ctdc_spark.schemas import RUNS
from ctdc_spark.stage import RunContext, StageResult

log = logging.getLogger(__name__)

STAGES = ("prepare", "aggregate", "synthesize", "evaluate", "publish")
RUN_STAGE = "run"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


StageFunction = Callable[[SparkSession, RunContext], StageResult]


def _stage_functions() -> dict[str, StageFunction]:
    # Imported lazily so `ctdc-spark validate` and unit tests do not import every stage.
    from ctdc_spark.aggregate import run_aggregate
    from ctdc_spark.evaluate import run_evaluate
    from ctdc_spark.prepare import run_prepare
    from ctdc_spark.publish import run_publish
    from ctdc_spark.synthesize import run_synthesize

    registry: dict[str, StageFunction] = {
        "prepare": run_prepare,
        "aggregate": run_aggregate,
        "synthesize": run_synthesize,
        "evaluate": run_evaluate,
        "publish": run_publish,
    }
    return registry


def validate_run_id(run_id: str) -> str:
    """Check a user-given run id (it names folders and Delta partitions).

    Raises:
        ConfigError: when it has characters other than letters, digits, ``.``, ``_``, ``-``.
    """
    if not _RUN_ID.match(run_id):
        raise ConfigError(
            f"--run-id {run_id!r}: use 1-80 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return run_id


def input_fingerprint(spark: SparkSession, cfg: JobConfig) -> str:
    """SHA-256 over the input's content (files) or its table version (Delta)."""
    inp = cfg.input
    digest = hashlib.sha256(f"{inp.format}\x1f".encode())
    if inp.format == "delta":
        version = delta_io.latest_version(spark, inp.path)
        digest.update(f"delta\x1f{inp.path}\x1f{version}".encode())
        return digest.hexdigest()
    files = list_input_files(inp)
    if is_local_path(inp.path):
        for name in files:
            path = local_path(name)
            digest.update(f"{path.name}\x1f{path.stat().st_size}\x1f".encode())
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        return digest.hexdigest()
    contents = (
        spark.read.format("binaryFile")
        .load(inp.path)
        .select("path", F.sha2("content", 256).alias("h"))
        .orderBy("path")
        .collect()
    )
    for row in contents:
        digest.update(f"{row['path']}\x1f{row['h']}\x1f".encode())
    return digest.hexdigest()


def derive_run_id(fingerprint: str, config_hash: str) -> str:
    """A stable run id for an unchanged input and config: reruns become no-ops."""
    return "r-" + hashlib.sha256(f"{fingerprint}:{config_hash}".encode()).hexdigest()[:16]


def _manifest_rows(spark: SparkSession, root: str, run_id: str) -> list[dict[str, object]]:
    path = delta_io.table_path(root, RUNS.name)
    if not delta_io.table_exists(spark, path):
        return []
    rows = (
        delta_io.read_table(spark, RUNS, root=root)
        .where(delta_io.run_filter(run_id))
        .select("stage", "status", "input_fingerprint", "config_hash", "started_at")
        .collect()
    )
    return [r.asDict() for r in rows]


def _succeeded(rows: Sequence[dict[str, object]], stage: str) -> bool:
    return any(r["stage"] == stage and r["status"] == "SUCCEEDED" for r in rows)


@contextlib.contextmanager
def run_lock(root: str, run_id: str) -> Iterator[None]:
    """Hold an exclusive lock file per run id, so two invocations cannot interleave one run.

    A lock left by a dead process on this host is taken over; one held by a live process (or on
    another host) makes the second invocation fail cleanly.
    """
    lock_dir = local_path(root) / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{run_id}.lock"
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _stale_lock(path):
                path.unlink(missing_ok=True)
                continue
            raise RunConflictError(
                f"run {run_id} is already in progress (lock {path}); wait for it to finish, "
                "or start this run with another --run-id."
            ) from None
        with os.fdopen(fd, "w") as handle:
            json.dump(owner, handle)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _stale_lock(path: Path) -> bool:
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _library_versions(spark: SparkSession) -> dict[str, str]:
    from importlib.metadata import version

    return {
        "ctdc_spark": __version__,
        "spark": spark.version,
        **{name: version(name) for name in ("delta-spark", "numpy", "pandas", "pyarrow")},
    }


@dataclass
class _Manifest:
    spark: SparkSession
    ctx: RunContext
    config_hash: str
    attempt_id: str
    versions: dict[str, str]

    def record(
        self,
        stage: str,
        status: str,
        started: dt.datetime,
        *,
        result: StageResult | None = None,
        error_class: str | None = None,
    ) -> None:
        ended = None if status == "STARTED" else dt.datetime.now(dt.timezone.utc)
        row = {
            "run_id": self.ctx.run_id,
            "attempt_id": self.attempt_id,
            "stage": stage,
            "status": status,
            "started_at": started,
            "ended_at": ended,
            "elapsed_seconds": (ended - started).total_seconds() if ended else None,
            "input_fingerprint": self.ctx.input_fingerprint,
            "config_hash": self.config_hash,
            "row_counts": result.row_counts if result else None,
            "delta_versions": result.delta_versions if result else None,
            "library_versions": self.versions,
            "privacy": result.privacy if result else None,
            "error_class": error_class,
        }
        delta_io.append_rows(self.spark, RUNS, [row], root=self.ctx.root)


@dataclass
class RunSummary:
    """What ``ctdc-spark run`` prints: the run id, what ran, and where results are."""

    run_id: str
    stages_run: list[str]
    stages_skipped: list[str]
    outputs: list[str]
    release_dir: str | None
    staging_dir: str | None


def plan_stages(stages: Sequence[str]) -> list[str]:
    """Requested stages plus every earlier stage (run only if not already done for this run).

    Raises:
        ConfigError: for an unknown stage name, naming the valid ones.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(
            f"--stages: unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}."
        )
    last = max(STAGES.index(s) for s in stages)
    return list(STAGES[: last + 1])


def _absolute_output_root(cfg: JobConfig) -> JobConfig:
    """Delta needs absolute table locations; a relative local ``output.root`` is the working dir's."""
    root = cfg.output.root
    if not is_local_path(root) or Path(root).is_absolute():
        return cfg
    return dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, root=str(Path(root).resolve())))


def run_pipeline(
    spark: SparkSession,
    cfg: JobConfig,
    *,
    stages: Sequence[str] = STAGES,
    run_id: str | None = None,
    noise_source: NoiseSource = PRODUCTION_NOISE,
) -> RunSummary:
    """Run ``stages`` (and any missing earlier stage) for one run id.

    Args:
        spark: The session from :func:`ctdc_spark.session.build_session`.
        cfg: Validated config.
        stages: Requested stages; earlier stages already done for this run are skipped.
        run_id: Explicit run id, or None to derive one from input and config.
        noise_source: Where DP noise comes from. The CLI and the jobs never pass it, so a release
            always gets OpenDP's unseeded noise; a test passes a seeded source for a reproducible run.

    Returns:
        The run summary.

    Raises:
        RunConflictError: the run id exists with another input/config, or is locked.
        CtdcError: from a stage (bad input, failed verification, ...).
    """
    cfg = _absolute_output_root(cfg)
    config_hash = cfg.config_hash()
    fingerprint = input_fingerprint(spark, cfg)
    run_id = validate_run_id(run_id) if run_id else derive_run_id(fingerprint, config_hash)
    plan = plan_stages(stages)
    registry = _stage_functions()
    plan = [s for s in plan if s in registry]
    with run_lock(cfg.output.root, run_id):
        previous = _manifest_rows(spark, cfg.output.root, run_id)
        for row in previous:
            if row["input_fingerprint"] != fingerprint or row["config_hash"] != config_hash:
                raise RunConflictError(
                    f"run {run_id} already exists with a different "
                    f"{'input' if row['input_fingerprint'] != fingerprint else 'config'}; a run id "
                    "must always mean the same input and config. Use a new --run-id for changed data."
                )
        ctx = RunContext(cfg=cfg, run_id=run_id, input_fingerprint=fingerprint, noise_source=noise_source)
        full_run = list(stages) == list(STAGES)
        if full_run and _succeeded(previous, RUN_STAGE):
            log.info("run %s already succeeded with this input and config; nothing to do", run_id)
            release = ctx.release_root / run_id
            return RunSummary(run_id, [], list(plan), [], str(release) if release.exists() else None, None)

        manifest = _Manifest(spark, ctx, config_hash, uuid.uuid4().hex, _library_versions(spark))
        run_started = dt.datetime.now(dt.timezone.utc)
        skipped = [s for s in plan if _succeeded(previous, s)]
        for stage in skipped:
            log.info("stage %s already succeeded for run %s; skipping", stage, run_id)
        if len(skipped) < len(plan):
            manifest.record(RUN_STAGE, "STARTED", run_started)
        ran, outputs = [], []
        for stage in (s for s in plan if s not in skipped):
            result = _run_stage(spark, ctx, manifest, stage, registry[stage])
            ran.append(stage)
            outputs.extend(result.outputs)
        bundle = ctx.release_root / run_id
        # Only a complete bundle (publish done, hence verified) is ever released.
        published = "publish" in ran or _succeeded(previous, "publish")
        if published and (ran or not bundle.exists()):
            assemble_bundle(ctx.staging_dir, ctx.release_root, run_id)
            switch_latest(ctx.release_root, run_id)
        elif published and full_run:
            # An earlier attempt assembled the bundle but died before the run-level SUCCEEDED row,
            # possibly before switching `latest`: finish that step now.
            switch_latest(ctx.release_root, run_id)
        if full_run:
            manifest.record(RUN_STAGE, "SUCCEEDED", run_started, result=StageResult())
        if bundle.exists() and not ctx.staging_dir.exists():
            # The public files now live only in the bundle: report them where a reader finds them.
            outputs = [_released_path(path, ctx.staging_dir, bundle) for path in outputs]
        return RunSummary(
            run_id, ran, skipped, outputs, str(bundle) if bundle.exists() else None, str(ctx.staging_dir)
        )


def _released_path(path: str, staging: Path, bundle: Path) -> str:
    """``path`` moved from the staging folder into the bundle, or ``path`` itself if it was not there."""
    try:
        return str(bundle / Path(path).relative_to(staging))
    except ValueError:
        return path


def _run_stage(
    spark: SparkSession, ctx: RunContext, manifest: _Manifest, stage: str, function: StageFunction
) -> StageResult:
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.monotonic()
    log.info("stage %s started (run %s)", stage, ctx.run_id)
    spark.sparkContext.setJobGroup(f"ctdc-{stage}", f"ctdc-spark {stage} stage", interruptOnCancel=False)
    try:
        result = function(spark, ctx)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            manifest.record(stage, "FAILED", started, error_class=error_class_of(exc))
        if isinstance(exc, PySparkException | Py4JError):
            # A failure inside Spark (lost executors, out of memory, ...): the stage failed, and
            # the original message is dropped because Spark can quote record values in it.
            raise StageFailedError(
                f"stage {stage} failed in Spark ({error_class_of(exc)}); rerun the same command to "
                "resume the run (finished stages are skipped)."
            ) from None
        raise
    manifest.record(stage, "SUCCEEDED", started, result=result)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(result.row_counts.items()))
    log.info("stage %s finished in %.1fs (%s)", stage, time.monotonic() - clock, counts or "no rows")
    return result
