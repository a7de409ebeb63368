"""The one place a SparkSession is built (Delta-enabled; local or under spark-submit).

Local runs (plain ``python``/console script) get Delta's JVM artifacts through Spark's standard
package mechanism: :func:`delta.configure_spark_with_delta_pip` sets ``spark.jars.packages`` and
Spark's Ivy resolves them from the local Maven repository or Maven Central on first use; the
resolved jar files are remembered (:func:`cached_delta_jars`) and later sessions load them
directly, without Ivy. Under
``spark-submit`` the submitter owns the master and the packages (``--master``, ``--packages``), and
settings given there win because the builder ends in ``getOrCreate()``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import urllib.parse
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from pyspark.sql import SparkSession

from ctdc_spark.config import SparkConfig
from ctdc_spark.errors import ConfigError

log = logging.getLogger(__name__)

DELTA_PACKAGE = "io.delta:delta-spark_4.1_2.13:4.3.1"
"""The Delta artifact matching the pinned pyspark 4.1.1 / delta-spark 4.3.1 pair (for spark-submit)."""

DELTA_CONF: Mapping[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

# Side doors closed by default (docs/reliability.md 3.6): the UI and the event log render data values
# from plans and failed tasks, so they are off unless a user turns them on explicitly.
SAFE_DEFAULT_CONF: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.eventLog.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Deterministic shuffles: AQE may coalesce partitions differently run to run, which is harmless
    # for correctness (all sampling is keyed by record id) but makes task-level tests flaky.
    "spark.sql.adaptive.coalescePartitions.enabled": "false",
    # Delta's default of 50 snapshot partitions is tuned for big tables; ours are small.
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.sources.partitionOverwriteMode": "static",
    # New Delta tables keep no per-file min/max statistics: in private tables they would copy cell
    # values into _delta_log (docs/reliability.md 1.8); our reads filter by run_id partitions only.
    "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "0",
}

LOCAL_DEFAULT_CONF: Mapping[str, str] = {
    # A 2-core laptop: few shuffle partitions, a bounded driver (local mode runs executors in it).
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "4",
    "spark.driver.memory": "4g",
    "spark.ui.showConsoleProgress": "false",
}


def build_session(cfg: SparkConfig, *, under_spark_submit: bool) -> SparkSession:
    """Build (or reuse) the SparkSession for a run.

    Args:
        cfg: The ``spark`` config section; ``conf`` entries override every default here.
        under_spark_submit: True when the driver was launched by ``spark-submit`` (detected by the
            CLI); then master and packages are left to the submitter.

    Returns:
        A Delta-enabled session with the privacy-safe defaults (UI and event log off).

    Raises:
        ConfigError: if Delta Lake classes are not on the classpath under spark-submit.
    """
    builder = SparkSession.builder.appName(cfg.app_name)
    conf: dict[str, str] = {**SAFE_DEFAULT_CONF, **DELTA_CONF}
    if not under_spark_submit:
        conf.update(LOCAL_DEFAULT_CONF)
        # The pipeline reads and writes Delta tables by path, never through the catalog; without
        # this, Spark leaves an empty spark-warehouse/ folder wherever the command was run.
        conf["spark.sql.warehouse.dir"] = str(Path(tempfile.gettempdir()) / "ctdc-spark-warehouse")
        log4j = resources.files("ctdc_spark").joinpath("resources/log4j2.properties")
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j}"
        # Local Python workers must run this interpreter (the one with ctdc_spark installed);
        # PySpark reads the worker executable from the environment only.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(cfg.master or "local[*]")
    elif cfg.master:
        builder = builder.master(cfg.master)
    conf.update({k: str(v) for k, v in cfg.conf.items()})
    for key, value in conf.items():
        builder = builder.config(key, value)
    resolve_delta = not under_spark_submit and not {"spark.jars", "spark.jars.packages"} & set(cfg.conf)
    cached_jars = cached_delta_jars() if resolve_delta else None
    if cached_jars:
        builder = builder.config("spark.jars", cached_jars)
    elif resolve_delta:
        from delta import configure_spark_with_delta_pip

        builder = configure_spark_with_delta_pip(builder)
    _silence_value_quoting_loggers()
    spark = builder.getOrCreate()
    _check_delta_available(spark)
    if resolve_delta and not cached_jars:
        _remember_delta_jars(spark)
    spark.sparkContext.setLogLevel("ERROR")
    log.info("spark session ready (master %s, Spark %s)", spark.sparkContext.master, spark.version)
    return spark


def delta_jars_cache() -> Path:
    """Where the resolved Delta jar list is kept (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ctdc-spark" / f"{DELTA_PACKAGE.replace(':', '_')}.jars"


def cached_delta_jars() -> str | None:
    """The local Delta jars an earlier session resolved, if every one of them is still there.

    Resolving ``spark.jars.packages`` runs Ivy at every JVM start: seconds of dependency
    resolution and about 85 lines on stderr per run, for the same 33 jars each time. Later
    sessions pass the files as ``spark.jars`` instead, which needs no resolution and no network.
    """
    try:
        jars = delta_jars_cache().read_text(encoding="utf-8").split(",")
    except OSError:
        return None
    paths = [Path(urllib.parse.urlparse(j).path) for j in jars if j]
    if not paths or not all(p.is_file() for p in paths):
        return None
    return ",".join(jars)


def _remember_delta_jars(spark: SparkSession) -> None:
    jars = spark.sparkContext.getConf().get("spark.jars", "")
    if "delta-spark" not in jars:
        return
    path = delta_jars_cache()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(jars, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        log.info("cannot write %s; Delta's jars will be resolved again next time", path)


def _silence_value_quoting_loggers() -> None:
    """Disable PySpark's query-context loggers: they print failed plans and messages to stderr.

    Error messages and plans can quote cell values (docs/reliability.md 3.6); our CLI reports errors
    by class instead.
    """
    from pyspark.logger import PySparkLogger

    for name in ("DataFrameQueryContextLogger", "SQLQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True


def _check_delta_available(spark: SparkSession) -> None:
    # Utils.classForName uses Spark's context class loader, which also sees --packages jars
    # (java.lang.Class.forName through py4j would only see the system class path).
    jvm = spark.sparkContext._jvm
    try:
        jvm.org.apache.spark.util.Utils.classForName(  # type: ignore[union-attr]
            "io.delta.sql.DeltaSparkSessionExtension", True, False
        )
    except Exception:
        raise ConfigError(
            "Delta Lake is not on the Spark classpath; add "
            f"--packages {DELTA_PACKAGE} to spark-submit (or install it in the cluster image)."
        ) from None
