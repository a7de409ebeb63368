"""All Delta Lake reads and writes; every write is idempotent per run id.

A stage writes a run's rows with ``mode("overwrite")`` + ``replaceWhere run_id = '<id>'`` (so a
rerun replaces, never duplicates, and other runs' rows are untouched) and with Delta's idempotent
``txnAppId``/``txnVersion`` (so a retry after a crash no-ops tables already committed). Delta
silently ignores a retried write with *different* data; the run manifest guards against that by
refusing a run id whose input fingerprint or config hash changed (:mod:`ctdc_spark.pipeline`).

Every commit carries ``userMetadata`` with the run id (never data values). Tables are created
by their first write with their declared schema; no table keeps per-file column statistics, because
``_delta_log`` would otherwise store min/max cell values of private tables (docs/reliability.md 1.8).
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import delta.exceptions as delta_errors
from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ctdc_spark.errors import StageFailedError
from ctdc_spark.schemas import RUNS, TableSpec
from ctdc_spark.stage import ReleaseFacts

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class _TableCreatedConcurrently(Exception):
    """Another run committed a table's first version while this write tried to: retry the write."""


_CONFLICTS = (
    _TableCreatedConcurrently,
    delta_errors.ConcurrentAppendException,
    delta_errors.ConcurrentDeleteReadException,
    delta_errors.ConcurrentDeleteDeleteException,
    delta_errors.ConcurrentTransactionException,
    delta_errors.MetadataChangedException,
    delta_errors.ProtocolChangedException,
    delta_errors.ConcurrentWriteException,
)
_CONFLICT_ATTEMPTS = 6
_CREATE_WAIT_SECONDS = 30.0


def table_path(root: str, name: str) -> str:
    """Location of table ``name`` under ``<output.root>/tables``."""
    return posixpath.join(root, "tables", name)


def retry_on_conflict(action: Callable[[], _T], *, what: str) -> _T:
    """Run a Delta commit, retrying only Delta's optimistic-concurrency conflicts.

    Two runs writing disjoint ``run_id`` partitions do not conflict, but creating the same table
    at once or appending to the manifest can; those are retried with backoff (docs/reliability.md 1.1).
    """
    for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
        try:
            return action()
        except _CONFLICTS as exc:
            if attempt == _CONFLICT_ATTEMPTS:
                raise
            log.warning("concurrent Delta commit on %s (%s); retrying", what, type(exc).__name__)
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when a Delta table exists at ``path``."""
    return bool(DeltaTable.isDeltaTable(spark, path))


def ensure_table(spark: SparkSession, root: str, spec: TableSpec) -> str:
    """Create an append-only table (the run manifest) if missing; return its path.

    Other tables are created by their first write (one commit fewer); their properties come from
    :data:`ctdc_spark.session.SAFE_DEFAULT_CONF` defaults for new tables.
    """
    path = table_path(root, spec.name)
    if table_exists(spark, path):
        return path

    def create() -> None:
        builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(spec.schema)
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        try:
            builder.property("delta.appendOnly", "true").execute()
        except Exception:
            # Two runs starting at once on a fresh output root race to write the table's first
            # commit, and the loser fails with an error that depends on the timing (a non-empty
            # location, the commit file already there). The winner's table is the one we wanted.
            if not _wait_for_table(spark, path, seconds=_CREATE_WAIT_SECONDS):
                raise

    retry_on_conflict(create, what=spec.name)
    return path


def _wait_for_table(spark: SparkSession, path: str, *, seconds: float) -> bool:
    """Whether a table is (or appears within ``seconds``, polled) at ``path``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            # A read, not DeltaTable.isDeltaTable: that answers from Delta's cached log of the
            # path, which still says "no table" after another process created it; a read
            # refreshes the cached log.
            spark.read.format("delta").load(path).schema  # noqa: B018
            return True
        except AnalysisException:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def _conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Select the spec's columns in schema order, cast to the declared types."""
    return df.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in spec.schema.fields])


def run_filter(run_id: str) -> Column:
    """The predicate selecting one run's rows (a run id, never a data value)."""
    return F.col("run_id") == F.lit(run_id)


def write_run_table(
    df: DataFrame,
    spec: TableSpec,
    *,
    root: str,
    run_id: str,
    signature: str,
    stage: str,
    txn_version: int = 1,
    partition_values: Mapping[str, int] | None = None,
) -> int:
    """Replace one run's rows of a table, idempotently.

    Args:
        df: Rows to write; must have the spec's columns (``run_id`` included).
        spec: Target table.
        root: ``output.root``.
        run_id: The run whose partition is replaced.
        signature: What the run's content depends on (input fingerprint and config hash, see
            :attr:`ctdc_spark.stage.RunContext.signature`); part of the Delta ``txnAppId``, so a
            write of the same run id with different content is never mistaken for a retry (Delta
            silently skips a retry, docs/reliability.md 0.4).
        stage: Stage name, recorded in the commit metadata.
        txn_version: Delta ``txnVersion`` for this run's app id; a retry with the same value (or a
            smaller one) is a no-op. Increase it when a stage legitimately writes the same table
            several times in one run.
        partition_values: Further integer partition columns whose single value this write
            replaces (e.g. ``{"length": 2}`` for one level); only integers, so no data value ever
            reaches the predicate.

    Returns:
        The table version holding the run's rows: that of this write's commit, or, when the write
        was skipped as an idempotent retry, that of the earlier commit it repeats (never a version
        another run committed in the meantime).
    """
    spark = df.sparkSession
    path = table_path(root, spec.name)
    metadata = json.dumps({"run_id": run_id, "stage": stage, "table": spec.name}, sort_keys=True)
    app_id = f"ctdc-spark/{spec.name}/{run_id}/{signature}"
    predicate = f"run_id = '{_quote(run_id)}'" + "".join(
        f" AND {name} = {int(value)}" for name, value in sorted((partition_values or {}).items())
    )

    creates = not table_exists(spark, path)

    def write() -> None:
        nonlocal creates
        try:
            (
                _conform(df, spec)
                .write.format("delta")
                .mode("overwrite")
                .option("replaceWhere", predicate)
                .option("txnAppId", app_id)
                .option("txnVersion", str(txn_version))
                .option("userMetadata", metadata)
                .partitionBy(*spec.partition_by)
                .save(path)
            )
        except _CONFLICTS:
            raise
        except Exception:
            # As in ensure_table: another run created the table first; write into its table.
            # A losing write fails at commit, when the winner's first commit already exists: one
            # look, no waiting (a failure of this write's own job must not be delayed).
            if creates and _wait_for_table(spark, path, seconds=0):
                creates = False  # once: a second failure is this write's own
                raise _TableCreatedConcurrently(spec.name) from None
            raise

    retry_on_conflict(write, what=spec.name)
    return _last_commit_with(spark, path, metadata)


def _last_commit_with(spark: SparkSession, path: str, metadata: str) -> int:
    """Version of the newest commit carrying ``metadata`` (a run id, stage and table; no values).

    ``latest_version`` right after a write could name another run's concurrent commit, and after an
    idempotent no-op it names whatever was committed last.
    """
    # The newest matching commit on the driver: a Spark aggregate over the few history rows would
    # cost two more jobs per write.
    found = [
        int(row[0])
        for row in DeltaTable.forPath(spark, path)
        .history()
        .where(F.col("userMetadata") == F.lit(metadata))
        .select("version")
        .collect()
    ]
    # Empty only if the commit has aged out of the log (delta.logRetentionDuration).
    return max(found) if found else latest_version(spark, path)


def append_rows(spark: SparkSession, spec: TableSpec, rows: list[Mapping[str, Any]], *, root: str) -> None:
    """Append a few driver-side rows to an append-only table (the run manifest)."""
    path = ensure_table(spark, root, spec)
    df = spark.createDataFrame([tuple(r.get(f.name) for f in spec.schema.fields) for r in rows], spec.schema)

    def append() -> None:
        df.write.format("delta").mode("append").save(path)

    retry_on_conflict(append, what=spec.name)


def read_table(spark: SparkSession, spec: TableSpec, *, root: str, version: int | None = None) -> DataFrame:
    """Read a whole table (optionally as of a version, for time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(table_path(root, spec.name))


def read_run_table(spark: SparkSession, spec: TableSpec, *, root: str, run_id: str) -> DataFrame:
    """Read one run's rows of a table.

    Raises:
        FileNotFoundError: when the table does not exist yet (an earlier stage did not run).
    """
    path = table_path(root, spec.name)
    try:
        df = spark.read.format("delta").load(path)
    except AnalysisException:
        raise FileNotFoundError(path) from None
    return df.where(run_filter(run_id))


def latest_version(spark: SparkSession, path: str) -> int:
    """Current version of the Delta table at ``path``."""
    return int(DeltaTable.forPath(spark, path).history(1).select("version").collect()[0][0])


def rows_written(spark: SparkSession, spec: TableSpec, *, root: str, run_id: str) -> int:
    """Rows of the run in the table, from Delta's commit metrics when the last commit was this run's.

    Reading ``operationMetrics`` costs no Spark job; only when the last commit belongs to another
    writer (or was skipped as an idempotent retry) are the run's rows counted.
    """
    path = table_path(root, spec.name)
    last = DeltaTable.forPath(spark, path).history(1).select("userMetadata", "operationMetrics").collect()[0]
    metadata = json.loads(last["userMetadata"]) if last["userMetadata"] else {}
    metrics = last["operationMetrics"] or {}
    if metadata.get("run_id") == run_id and "numOutputRows" in metrics:
        return int(metrics["numOutputRows"])
    return read_run_table(spark, spec, root=root, run_id=run_id).count()


def run_has_rows(spark: SparkSession, spec: TableSpec, *, root: str, run_id: str) -> bool:
    """True when the table exists and holds at least one row of the run."""
    path = table_path(root, spec.name)
    if not table_exists(spark, path):
        return False
    return bool(read_run_table(spark, spec, root=root, run_id=run_id).limit(1).count())


@dataclass(frozen=True)
class RunTables:
    """One run's rows of the tables under ``output.root`` (:attr:`ctdc_spark.stage.RunContext.tables`).

    Holds the run's identity, so a stage names only the table: ``ctx.tables.read(spark, RECORDS)``
    instead of repeating root, run id and signature at every read and write.
    """

    root: str
    run_id: str
    signature: str

    def read(self, spark: SparkSession, spec: TableSpec) -> DataFrame:
        """The run's rows of ``spec`` (:func:`read_run_table`)."""
        return read_run_table(spark, spec, root=self.root, run_id=self.run_id)

    def write(
        self,
        df: DataFrame,
        spec: TableSpec,
        *,
        stage: str,
        txn_version: int = 1,
        partition_values: Mapping[str, int] | None = None,
    ) -> int:
        """Replace the run's rows of ``spec`` idempotently (:func:`write_run_table`); its new version."""
        return write_run_table(
            df,
            spec,
            root=self.root,
            run_id=self.run_id,
            signature=self.signature,
            stage=stage,
            txn_version=txn_version,
            partition_values=partition_values,
        )

    def rows_written(self, spark: SparkSession, spec: TableSpec) -> int:
        """The run's rows in ``spec`` (:func:`rows_written`)."""
        return rows_written(spark, spec, root=self.root, run_id=self.run_id)

    def has_rows(self, spark: SparkSession, spec: TableSpec) -> bool:
        """Whether ``spec`` exists and holds a row of the run (:func:`run_has_rows`)."""
        return run_has_rows(spark, spec, root=self.root, run_id=self.run_id)

    def release_facts(self, spark: SparkSession) -> ReleaseFacts:
        """The run's :class:`ReleaseFacts`, from the manifest row of its successful aggregate stage."""
        key = ReleaseFacts.MANIFEST_KEY
        rows = []
        if table_exists(spark, table_path(self.root, RUNS.name)):
            recorded = F.col("row_counts").getItem(key)
            rows = (
                read_table(spark, RUNS, root=self.root)
                .where(run_filter(self.run_id) & (F.col("stage") == "aggregate"))
                .where((F.col("status") == "SUCCEEDED") & recorded.isNotNull())
                .orderBy(F.col("ended_at").desc())
                .select(recorded.alias(key))
                .limit(1)
                .collect()
            )
        if not rows:
            raise StageFailedError(
                f"run {self.run_id} has no successful aggregate stage that recorded the published record "
                "count (runs of an earlier version do not); rerun it with --stages aggregate."
            )
        return ReleaseFacts(published_record_count=int(rows[0][key]))


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
