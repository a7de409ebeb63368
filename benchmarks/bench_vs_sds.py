"""Benchmark ctdc-spark side by side with SDS's own CLI: the same data, per stage and per synthesis mode.

For each size (the shipped 15k quickstart sample ``data/sample/ctdc_sample.csv``, and CTDC-shaped
records from :func:`tools.ctdc_model.generate_ctdc_like`), with the columns, unknown values, k
and L of ``conf/local.yaml`` (k 10, L 3):

* **SDS** (``--sds-cli``, sds-cli 1.9.0 as in ``../shared/anchors/sds``; skipped with a message when
  absent): ``aggregate`` (the SDS TSV and the ``--aggregates-json`` that ``value_seeded`` and
  ``aggregate_seeded`` read), then ``generate --mode M`` for every mode, each a process of its own
  with ``--n-threads`` = the core count. Its input is the same CSV restricted to the used columns,
  with the unknown values written as empty cells (SDS's "no attribute").
* **ctdc-spark**: one fresh process (``--worker``) builds the session of ``conf/local.yaml`` and runs
  ``prepare`` and ``aggregate`` through :func:`ctdc_spark.pipeline.run_pipeline` one stage at a
  time (manifest, idempotent writes and all), then ``synthesize`` and ``evaluate`` per mode
  (``row_seeded`` last, through the pipeline, then ``publish``); the other modes run the stage
  functions on the same run's tables, as ``benchmarks/bench_synthesize.py`` does. Our aggregate
  stage also writes the risk analysis and the TSV/CSV exports; evaluate (verification, fidelity,
  attacks) and publish (the explorer) have no SDS counterpart.
* **quickstart**: ``ctdc-spark run`` in an empty folder (the embedded default on the sample),
  timed from outside: Python start, JVM start and every stage; the stage seconds are read from
  the run's JSON log.

Memory is the peak PSS (the proportional share of RSS, so pages shared after a fork count once) of
the measured process tree, sampled from ``/proc`` (:mod:`benchmarks._bench_util`): the SDS process; for
ctdc-spark, the worker's driver Python, JVM and Python workers during each stage. CPU seconds are
the tree's user + system time, the fairer measure on a shared machine. Ratios are ctdc-spark over
SDS, wall time. Writes ``benchmarks/vs_sds.json`` and ``benchmarks/vs_sds.md``; numbers are
reported, not asserted.

Usage, from the repository root::

    PYTHONPATH=. python -m benchmarks.bench_vs_sds --sds-cli ../shared/anchors/sds/sds-cli
    PYTHONPATH=. python -m benchmarks.bench_vs_sds --sds-cli S --sizes sample,20000 --skip-quickstart
    PYTHONPATH=. python -m benchmarks.bench_vs_sds --sds-cli S --sizes 1000000 --append  # add 1M
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks._bench_util import (
    CONFIG,
    ctdc_columns,
    ctdc_frame,
    load,
    machine,
    measure_command,
    measured,
    run_worker_process,
)
from benchmarks.bench_synthesize import MODES, privacy_settings
from ctdc_spark.pipeline import STAGES

SAMPLE = Path("data/sample/ctdc_sample.csv")
SAMPLE_SIZE = "sample"
DEFAULT_SIZES = f"{SAMPLE_SIZE},20000,200000"
SDS_TIMEOUT_SECONDS = 3600.0
"""Per SDS command: the issue compares with SDS where it finishes within an hour."""
MODES_READING_AGGREGATES_JSON = ("value_seeded", "aggregate_seeded")
"""Modes whose SDS ``generate`` reads the aggregate step's ``--aggregates-json``."""
STAGES_BEFORE_SYNTHESIS = ("prepare", "aggregate")


# --------------------------------------------------------------------------------------------
# Pure parts: SDS command lines, the run log, the report.
# --------------------------------------------------------------------------------------------


def sds_command(
    sds_cli: str,
    data: Path,
    columns: Sequence[str],
    *,
    resolution: int,
    threads: int,
    step: Sequence[str],
) -> list[str]:
    """One ``sds-cli`` call on a comma-separated file, ``step`` the subcommand and its options.

    ``--use-columns`` takes several values, so it would swallow the subcommand's name: the columns
    come first, ended by the next option.
    """
    cmd = [sds_cli]
    for column in columns:
        cmd += ["--use-columns", column]
    cmd += ["--resolution", str(resolution), "--sensitive-path", str(data)]
    cmd += ["--sensitive-delimiter", ",", "--n-threads", str(threads)]
    return cmd + list(step)


def sds_steps(work: Path, *, length: int, modes: Sequence[str]) -> dict[str, list[str]]:
    """The SDS subcommands to time, by step name: ``aggregate`` first, then ``generate:<mode>``."""
    aggregates_json = str(work / "sds_aggregates.json")
    steps = {
        "aggregate": [
            "aggregate",
            "--aggregates-path",
            str(work / "sds_aggregates.tsv"),
            "--reporting-length",
            str(length),
            "--aggregates-json",
            aggregates_json,
        ]
    }
    for mode in modes:
        step = ["generate", "--synthetic-path", str(work / f"sds_{mode}.tsv"), "--mode", mode]
        if mode in MODES_READING_AGGREGATES_JSON:
            step += ["--aggregates-json", aggregates_json]
        steps[f"generate:{mode}"] = step
    return steps


def stage_seconds_from_log(lines: Iterable[str]) -> dict[str, float]:
    """Stage seconds from a run's JSON log lines (``stage X finished in 12.3s (...)``).

    Lines that are not our JSON log (the JVM's, Ivy's) are skipped.
    """
    stages: dict[str, float] = {}
    for line in lines:
        try:
            message = json.loads(line)["message"]
        except (ValueError, KeyError, TypeError):
            continue
        words = message.split()
        if len(words) >= 4 and words[0] == "stage" and words[2:4] == ["finished", "in"]:
            stages[words[1]] = float(words[4].rstrip("s"))
    return stages


def ratio(ours: Mapping[str, Any] | None, sds: Mapping[str, Any] | None) -> float | None:
    """ctdc-spark's wall seconds over SDS's, when both finished."""
    if not ours or not sds or "seconds" not in ours or sds.get("error") or not sds.get("seconds"):
        return None
    return round(float(ours["seconds"]) / float(sds["seconds"]), 3)


def whole_run(phases: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """Sum of measured phases (seconds, CPU, max of the peaks), ``None`` if any is missing or failed."""
    if not phases or any(not p or "seconds" not in p for p in phases.values()):
        return None
    done = [p for p in phases.values() if p]
    return {
        "seconds": round(sum(p["seconds"] for p in done), 3),
        "cpu_seconds": round(sum(p["cpu_seconds"] for p in done), 2),
        "peak_tree_mb": max(p["peak_tree_mb"] for p in done),
    }


def comparison_rows(
    case: Mapping[str, Any],
) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    """``(step, ctdc-spark phase, SDS phase)`` rows of one size, in reading order."""
    spark, sds = case.get("spark") or {}, case.get("sds") or {}
    modes = spark.get("modes") or {}
    rows: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("session (JVM start)", spark.get("session"), None),
        ("prepare", spark.get("prepare"), None),
        ("aggregate", spark.get("aggregate"), sds.get("aggregate")),
    ]
    for mode in MODES:
        if mode in modes or f"generate:{mode}" in sds:
            rows.append(
                (f"synthesize {mode}", (modes.get(mode) or {}).get("synthesize"), sds.get(f"generate:{mode}"))
            )
    for mode in MODES:
        if mode in modes:
            rows.append((f"evaluate {mode}", modes[mode].get("evaluate"), None))
    rows.append(("publish (row_seeded)", spark.get("publish"), None))
    row_seeded = modes.get("row_seeded") or {}
    ours = whole_run(
        {
            "session": spark.get("session"),
            **{stage: spark.get(stage) for stage in STAGES_BEFORE_SYNTHESIS},
            "synthesize": row_seeded.get("synthesize"),
            "evaluate": row_seeded.get("evaluate"),
            "publish": spark.get("publish"),
        }
    )
    theirs = whole_run({"aggregate": sds.get("aggregate"), "generate": sds.get("generate:row_seeded")})
    rows.append(("whole run, row_seeded (SDS: aggregate + generate)", ours, theirs))
    return rows


def _cell(phase: Mapping[str, Any] | None, key: str, fmt: str) -> str:
    if not phase:
        return "–"
    if phase.get("error"):
        return str(phase["error"]) if key == "seconds" else "–"
    value = phase.get(key)
    return "–" if value is None else format(value, fmt)


def _records(phase: Mapping[str, Any] | None) -> str:
    n = (phase or {}).get("synthetic_records")
    return "" if n is None else f"{n:,}"


def markdown(report: Mapping[str, Any]) -> str:
    """The report as a markdown page."""
    sds = report.get("sds_cli") or "not run (no --sds-cli, or the file is absent)"
    lines = [
        "# ctdc-spark side by side with SDS's own CLI",
        "",
        f"Generated {report['generated_at']} by `python -m benchmarks.bench_vs_sds` on {report['machine']}. "
        f"k = {report['k']}, L = {report['reporting_length']} (conf/local.yaml); SDS: {sds}, "
        f"`--n-threads {report['threads']}`; ctdc-spark: the session of conf/local.yaml (`local[*]`).",
        "",
        "**The machine was shared** with other engineers' test runs and benchmarks while this ran, so "
        "wall seconds include time spent waiting for a core: `load` is the 1-minute load average when "
        "each size started (2 cores; above 2 means we did not have the machine to ourselves). CPU "
        "seconds (user + system time of the measured process tree) are the steadier figure.",
        "",
        "Peak MB = the largest sampled PSS of the measured process tree (SDS: its process; ctdc-spark: "
        "driver Python + JVM + Python workers during that stage). Ratio = ctdc-spark wall seconds / "
        "SDS wall seconds (< 1: ctdc-spark faster). Our aggregate stage also writes the private risk "
        "analysis and the TSV/CSV exports; evaluate (verification, fidelity metrics, attacks) and "
        "publish (explorer, documents) have no SDS counterpart.",
        "",
    ]
    quick = report.get("quickstart")
    if quick:
        seconds = quick.get("stages", {})
        stages = ", ".join(f"{s} {seconds[s]:.1f}" for s in STAGES if s in seconds)
        lines += [
            "## Quickstart: `ctdc-spark run` on the embedded default (15k sample)",
            "",
            f"Whole command, from outside: {_cell(quick, 'seconds', '.1f')} s wall, "
            f"{_cell(quick, 'cpu_seconds', '.1f')} s CPU, peak {_cell(quick, 'peak_tree_mb', ',.0f')} MB, "
            f"exit code {quick.get('returncode')}, load {quick.get('load_before', ['–'])[0]}. "
            f"Stages (s, from the run log): {stages or '–'}. The rest is Python start-up, JVM start "
            "and the run manifest.",
            "",
        ]
    for case in report["cases"]:
        spark_err = (case.get("spark") or {}).get("error")
        lines += [
            f"## {case['label']}: {case['rows']:,} records",
            "",
            f"load at start {case.get('load', ['–'])[0]}"
            + (f"; ctdc-spark worker: {spark_err}" if spark_err else ""),
            "",
            "| step | ctdc-spark s | CPU s | peak MB | SDS s | CPU s | peak MB | ratio | synthetic records "
            "(ours / SDS) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for step, ours, theirs in comparison_rows(case):
            r = ratio(ours, theirs)
            records = f"{_records(ours)} / {_records(theirs)}" if step.startswith("synthesize") else ""
            lines.append(
                f"| {step} | {_cell(ours, 'seconds', '.1f')} | {_cell(ours, 'cpu_seconds', '.1f')} "
                f"| {_cell(ours, 'peak_tree_mb', ',.0f')} | {_cell(theirs, 'seconds', '.1f')} "
                f"| {_cell(theirs, 'cpu_seconds', '.1f')} | {_cell(theirs, 'peak_tree_mb', ',.0f')} "
                f"| {'–' if r is None else f'{r:.2f}'} | {records} |"
            )
        lines.append("")
    lines += [*report.get("notes", []), ""]
    for section in report.get("sections", []):
        lines += [section.rstrip(), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# SDS runs (from this process) and the ctdc-spark worker (a process of its own).
# --------------------------------------------------------------------------------------------


def _sds_input(data: Path, work: Path) -> Path:
    """``data`` as SDS reads it: the used columns, unknown values as empty cells (untimed)."""
    columns, unknown = ctdc_columns()
    frame = pd.read_csv(data, dtype=str, keep_default_na=False, usecols=columns)[columns]
    path = work / "sds_input.csv"
    frame.replace(dict.fromkeys(unknown, "")).to_csv(path, index=False)
    return path


def run_sds(sds_cli: str, data: Path, work: Path, *, modes: Sequence[str], timeout: float) -> dict[str, Any]:
    """Time every SDS step on ``data``; a failed or timed-out aggregate skips the generate steps."""
    columns, _ = ctdc_columns()
    k, length = privacy_settings()
    sds_data = _sds_input(data, work)
    threads = os.cpu_count() or 1
    out: dict[str, Any] = {}
    for name, step in sds_steps(work, length=length, modes=modes).items():
        if name != "aggregate" and out["aggregate"].get("error"):
            out[name] = {"error": "skipped: the aggregate step did not finish"}
            continue
        cmd = sds_command(sds_cli, sds_data, columns, resolution=k, threads=threads, step=step)
        print(f"[{datetime.now():%H:%M:%S}] SDS {name}", flush=True)
        ran = measure_command(cmd, cwd=work, timeout=timeout)
        entry = ran.phase.as_dict()
        if ran.returncode is None:
            entry["error"] = f"stopped after {timeout:.0f} s"
        elif ran.returncode != 0:
            entry["error"] = f"exit code {ran.returncode}"
        elif name.startswith("generate:"):
            with (work / f"sds_{name.split(':', 1)[1]}.tsv").open(encoding="utf-8") as handle:
                entry["synthetic_records"] = sum(1 for _ in handle) - 1
        out[name] = entry
    return out


def worker_spark(data: Path, modes: Sequence[str], seed: int, work: Path, checkpoint: Any) -> dict[str, Any]:
    """Session, prepare and aggregate once; synthesize and evaluate per mode; publish once."""
    from ctdc_spark.config import load_config
    from ctdc_spark.evaluate import run_evaluate
    from ctdc_spark.io import delta as delta_io
    from ctdc_spark.pipeline import input_fingerprint, run_pipeline
    from ctdc_spark.schemas import SYNTHETIC_RECORDS
    from ctdc_spark.session import build_session
    from ctdc_spark.stage import RunContext
    from ctdc_spark.synthesize import run_synthesize

    root = work / "spark_out"

    def cfg(mode: str) -> Any:
        overrides = [f"input.path={data.resolve()}", f"output.root={root}"]
        return load_config(
            str(CONFIG), overrides=[*overrides, f"synthesis.mode={mode}", f"synthesis.seed={seed}"]
        )

    out: dict[str, Any] = {"modes": {}}
    with measured() as phase:
        spark = build_session(cfg("row_seeded").spark, under_spark_submit=False)
    out["session"] = phase.as_dict()
    for stage in STAGES_BEFORE_SYNTHESIS:
        with measured() as phase:
            run_pipeline(spark, cfg("row_seeded"), stages=[stage], run_id="bench")
        out[stage] = phase.as_dict()
        checkpoint(out)
    # row_seeded last, through the pipeline, so that its evaluation is the one published.
    for mode in sorted(modes, key=lambda m: m == "row_seeded"):
        entry: dict[str, Any] = {}
        mode_cfg = cfg(mode)
        ctx = RunContext(cfg=mode_cfg, run_id="bench", input_fingerprint=input_fingerprint(spark, mode_cfg))
        for stage, function in (("synthesize", run_synthesize), ("evaluate", run_evaluate)):
            with measured() as phase:
                if mode == "row_seeded":
                    run_pipeline(spark, mode_cfg, stages=[stage], run_id="bench")
                else:
                    function(spark, ctx)
            entry[stage] = phase.as_dict()
        entry["synthesize"]["synthetic_records"] = delta_io.rows_written(
            spark, SYNTHETIC_RECORDS, root=str(root), run_id="bench"
        )
        out["modes"][mode] = entry
        checkpoint(out)
    if "row_seeded" in modes:
        with measured() as phase:
            run_pipeline(spark, cfg("row_seeded"), stages=["publish"], run_id="bench")
        out["publish"] = phase.as_dict()
    spark.stop()
    return out


def run_quickstart() -> dict[str, Any]:
    """``ctdc-spark run`` in an empty folder: the whole command timed from outside."""
    cli = Path(sys.executable).with_name("ctdc-spark")
    with tempfile.TemporaryDirectory(prefix="bench_vs_sds_quickstart_") as tmp:
        print(f"[{datetime.now():%H:%M:%S}] quickstart: {cli} run", flush=True)
        ran = measure_command([str(cli), "run"], cwd=Path(tmp))
    out = ran.phase.as_dict()
    out["returncode"] = ran.returncode
    out["stages"] = stage_seconds_from_log(ran.stderr.splitlines())
    return out


# --------------------------------------------------------------------------------------------
# Orchestration.
# --------------------------------------------------------------------------------------------


def _data_for(size: str, work: Path, seed: int) -> tuple[Path, int, str]:
    """The CSV of a size, its record count and its report label."""
    if size == SAMPLE_SIZE:
        rows = len(pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, usecols=[0]))
        return SAMPLE, rows, "15k quickstart sample (data/sample/ctdc_sample.csv)"
    rows = int(size)
    path = work / f"ctdc_{rows}.csv"
    ctdc_frame(rows, seed).to_csv(path, index=False)
    return path, rows, f"CTDC-shaped, seed {seed}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sizes (or one worker) and write ``<out>/vs_sds.json`` and ``.md``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sds-cli", help="path of sds-cli; the SDS comparison is skipped without it")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"'{SAMPLE_SIZE}' and record counts")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--sds-timeout", type=float, default=SDS_TIMEOUT_SECONDS, metavar="SECONDS")
    parser.add_argument("--skip-quickstart", action="store_true")
    parser.add_argument("--skip-sds", default="", help="sizes at which SDS is not run")
    parser.add_argument("--skip-spark", action="store_true", help="run SDS only (e.g. before an --append)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    parser.add_argument("--append", action="store_true", help="merge into the existing JSON by size")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    parser.add_argument(
        "--section",
        type=Path,
        action="append",
        default=[],
        help="a markdown file appended to the report as a section of its own (replaces earlier ones)",
    )
    parser.add_argument("--worker", choices=("spark",), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if sorted(set(modes) - set(MODES)):
        parser.error(f"unknown modes {sorted(set(modes) - set(MODES))}; choose from {', '.join(MODES)}")

    if args.worker:
        (rows,) = (int(s) for s in args.sizes.split(","))
        result_path = args.work / f"{args.worker}_{rows}.json"

        def write_result(result: Mapping[str, Any]) -> None:
            result_path.write_text(json.dumps(result), encoding="utf-8")

        write_result(worker_spark(args.data, modes, args.seed, args.work, write_result))
        return 0

    sds_cli = args.sds_cli if args.sds_cli and Path(args.sds_cli).is_file() else None
    if sds_cli is None:
        print(f"SDS CLI {'not given' if not args.sds_cli else args.sds_cli + ' absent'}: ctdc-spark only.")
    else:
        version = subprocess.run([sds_cli, "--version"], capture_output=True, text=True, check=False)
        sds_cli = f"{sds_cli} ({version.stdout.strip()})"
    skip_sds = {s for s in args.skip_sds.split(",") if s}
    k, length = privacy_settings()
    json_path = args.out / "vs_sds.json"
    report: dict[str, Any] = {"cases": [], "notes": []}
    if args.append and json_path.exists():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    report.update(
        {
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "k": k,
            "reporting_length": length,
            "threads": os.cpu_count(),
            "sds_cli": sds_cli or report.get("sds_cli"),
        }
    )
    report["notes"] = list(dict.fromkeys([*report.get("notes", []), *args.note]))
    if args.section:
        report["sections"] = [path.read_text(encoding="utf-8") for path in args.section]
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        report["cases"].sort(key=lambda c: c["rows"])
        json_path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        (args.out / "vs_sds.md").write_text(markdown(report), encoding="utf-8")

    if not args.skip_quickstart:
        report["quickstart"] = run_quickstart()
        save()
    for size in (s for s in args.sizes.split(",") if s):
        with tempfile.TemporaryDirectory(prefix="bench_vs_sds_") as tmp:
            work = Path(tmp)
            data, rows, label = _data_for(size, work, args.seed)
            case: dict[str, Any] = {"size": size, "rows": rows, "label": label, "load": load()}
            if sds_cli and size not in skip_sds:
                case["sds"] = run_sds(args.sds_cli, data, work, modes=modes, timeout=args.sds_timeout)
            if not args.skip_spark:
                worker_args = ["--data", str(data.resolve()), "--modes", ",".join(modes)]
                worker_args += ["--seed", str(args.seed)]
                case["spark"] = run_worker_process(
                    "benchmarks.bench_vs_sds", "spark", rows, worker_args, work=work
                )
        # With --append, a size's SDS and ctdc-spark results may come from two runs of this script.
        earlier: dict[str, Any] = next((c for c in report["cases"] if c["size"] == size), {})
        report["cases"] = [c for c in report["cases"] if c["size"] != size] + [{**earlier, **case}]
        save()
        print(markdown(report), flush=True)
    print(f"wrote {json_path} and {args.out / 'vs_sds.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
