"""Console script ``ctdc-spark``: the only place that reads argv and the environment and configures logging.

Usage (docs/architecture.md 3.1)::

    ctdc-spark run [--config conf/local.yaml] [--stages a,b] [--run-id ID] [--set key.path=value ...]
    ctdc-spark prepare|aggregate|synthesize|evaluate|publish [same options]
    ctdc-spark validate --config FILE [--set ...]

Exit codes: 0 success; 2 bad config or bad input; 3 a stage failed; 1 internal error.
Errors are reported by type, message (our messages never contain cell values) and, for
unexpected exceptions, only their class and frames: Spark and Python messages can quote data.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ctdc_spark import __version__
from ctdc_spark.config import JobConfig, load_config
from ctdc_spark.errors import CtdcError, error_class_of, safe_traceback
from ctdc_spark.wording import Wording, config_wording

log = logging.getLogger("ctdc_spark")

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def embedded_default() -> Path:
    """The embedded default config: the checkout's ``conf/local.yaml``, or the copy in the wheel.

    The wheel ships ``conf/`` and the sample as ``ctdc_spark/_defaults/`` (pyproject.toml), laid
    out like the checkout, so the config's relative sample path holds in both.
    """
    checkout = PROJECT_ROOT / "conf" / "local.yaml"
    if checkout.is_file():
        return checkout
    return Path(str(resources.files("ctdc_spark").joinpath("_defaults", "conf", "local.yaml")))


_ENV_PREFIX = "CTDC__"
STAGE_COMMANDS = ("prepare", "aggregate", "synthesize", "evaluate", "publish")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": round(record.created, 3),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("CTDC_LOG_FORMAT", "").lower() == "json" or not sys.stderr.isatty():
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("ctdc_spark").setLevel(logging.INFO)
    # py4j logs Java exceptions (which can quote data) at INFO/ERROR; keep it quiet.
    logging.getLogger("py4j").setLevel(logging.CRITICAL)


def _env_overrides(environ: dict[str, str]) -> dict[str, str]:
    """``CTDC__PRIVACY__RESOLUTION=5`` -> ``{"privacy.resolution": "5"}``."""
    return {
        key[len(_ENV_PREFIX) :].lower().replace("__", "."): value
        for key, value in environ.items()
        if key.startswith(_ENV_PREFIX)
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctdc-spark",
        description="Publish k-synthetic microdata, reportable aggregates and an offline explorer.",
    )
    parser.add_argument("--version", action="version", version=f"ctdc-spark {__version__}")
    commands = parser.add_subparsers(dest="command")

    def add_common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            help="YAML config (default: the embedded default conf/local.yaml on the shipped sample data)",
        )
        sub.add_argument("--run-id", help="run id (default: derived from the input and config)")
        sub.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY.PATH=VALUE",
            help="override a config value, e.g. --set privacy.resolution=5 (repeatable)",
        )

    run = commands.add_parser("run", help="run the pipeline (default: all stages)")
    add_common(run)
    run.add_argument("--stages", help="comma-separated stages, e.g. prepare,aggregate")
    for stage in STAGE_COMMANDS:
        add_common(commands.add_parser(stage, help=f"run the {stage} stage (and missing earlier stages)"))
    validate = commands.add_parser("validate", help="check a config and the input header without Spark jobs")
    validate.add_argument("--config", help="YAML config (default: the embedded default)")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    return parser


def _load(args: argparse.Namespace) -> JobConfig:
    env = _env_overrides(dict(os.environ))
    return load_config(args.config or embedded_default(), overrides=args.overrides, env_overrides=env)


def _validate(cfg: JobConfig) -> int:
    from ctdc_spark.prepare import inspect_input

    layout = inspect_input(cfg.input)
    if layout is None:
        print(f"config OK; input {cfg.input.path} is not on this machine, so its header was not checked.")
        _print_translations(config_wording(cfg.explorer, cfg.input.use_columns))
        return 0
    roles = {"single": 0, "multi": 0, "binned": 0}
    for col in layout.columns:
        roles[col.role] += 1
    print(
        f"config OK; input OK: {len(layout.files)} file(s), {layout.n_fields} columns in the header, "
        f"{len(layout.columns)} used ({roles['single']} single-value, {roles['multi']} multi-value, "
        f"{roles['binned']} binned)"
        + (
            f", subject id column {layout.header[layout.subject_id_index]}"
            if layout.subject_id_index is not None
            else ""
        )
        + "."
    )
    names = [c.name for c in layout.columns if c.role != "multi"]
    _print_translations(config_wording(cfg.explorer, names))
    return 0


def _print_translations(wording: Wording) -> None:
    lines = wording.summary_lines(limit=40)
    if not lines:
        print(f"translations: complete for {', '.join(wording.languages)}.")
        return
    print("translations: missing texts (the release shows English for them):")
    for line in lines:
        print(f"  {line}")


def _run(args: argparse.Namespace, cfg: JobConfig) -> int:
    from ctdc_spark.pipeline import STAGES, plan_stages, run_pipeline
    from ctdc_spark.prepare import inspect_input
    from ctdc_spark.session import build_session

    if args.command == "run":
        stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else list(STAGES)
    else:
        stages = [args.command]
    # Fail on a bad stage name, a missing input or a header that does not fit the config before
    # Spark starts (seconds of JVM start-up, and dozens of lines of output, for nothing).
    plan_stages(stages)
    inspect_input(cfg.input)
    clock = time.monotonic()
    # spark-submit starts the Python driver with a gateway already running and passes its port.
    spark = build_session(cfg.spark, under_spark_submit="PYSPARK_GATEWAY_PORT" in os.environ)
    summary = run_pipeline(spark, cfg, stages=stages, run_id=args.run_id)
    elapsed = time.monotonic() - clock
    if summary.stages_run:
        print(f"run {summary.run_id}: ran {', '.join(summary.stages_run)} in {elapsed:.1f}s")
    else:
        print(f"run {summary.run_id}: already complete, nothing to do")
    if summary.stages_skipped:
        print(f"  already done earlier: {', '.join(summary.stages_skipped)}")
    for path in summary.outputs:
        print(f"  wrote {os.path.abspath(path)}")
    if summary.release_dir:
        print(f"release bundle: {os.path.abspath(summary.release_dir)}")
    elif summary.staging_dir:
        print(
            f"public files so far (published as a release bundle once the run reaches publish): "
            f"{os.path.abspath(summary.staging_dir)}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of every ``jobs/*.py`` shim."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        args = _parser().parse_args(["run"])
    _configure_logging()

    try:
        cfg = _load(args)
        if args.command == "validate":
            return _validate(cfg)
        return _run(args, cfg)
    except CtdcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Never print str(exc): Spark/Delta/Python messages can quote raw cell values.
        print(
            f"internal error ({error_class_of(exc)}); the message is withheld because it may contain "
            f"record values. Frames: {safe_traceback(exc)}",
            file=sys.stderr,
        )
        return 1
