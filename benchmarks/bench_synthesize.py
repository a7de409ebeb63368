"""Benchmark synthesis: records/s of every mode of the Spark stage against a one-process ``row_seeded``.

For each size N (CTDC-shaped records from :func:`tools.ctdc_model.generate_ctdc_like`, the columns,
unknown values, k and L of ``conf/local.yaml``):

* ``spark``: the prepare and aggregate stages run once (untimed) on ``local[2]``; then the synthesize
  stage (:func:`ctdc_spark.synthesize.run_synthesize`) runs once per mode (``row_seeded``, ``unseeded``,
  ``value_seeded``, ``aggregate_seeded``) and is timed whole: sampling, the Delta write of
  ``synthetic_records`` and the CSV export to ``pending/``.
* ``baseline``: ``row_seeded`` as SDS describes it (docs/spec.md 4.1: seeded rows, consolidation,
  suppression) by the reference implementation (:func:`tests.oracle.row_seeded`, single-process
  numpy + Python sharing no code with the library): a record's k-safe partial records are grown
  attribute by attribute, each partial record's matching rows and per-attribute supports computed
  once and kept in a bounded cache, as SDS's cache does.

Records/s is *synthetic records produced per second of the stage* (also reported: sensitive records
per second). Both ``row_seeded`` implementations must give every attribute exactly its reported count
``floor(count / k) * k``; the benchmark checks it for both (and the Spark modes' record counts are
reported). Each implementation runs in its own process, memory is the peak PSS of its process tree
(benchmarks/_bench_util.py). Writes ``benchmarks/synthesize.json`` and ``benchmarks/synthesize.md``;
numbers are reported, not asserted.

Usage, from the repository root::

    PYTHONPATH=. python -m benchmarks.bench_synthesize                        # 50k, 200k, 1M, all modes
    PYTHONPATH=. python -m benchmarks.bench_synthesize --sizes 50000 --modes row_seeded,unseeded
    PYTHONPATH=. python -m benchmarks.bench_synthesize --sizes 1000000 --append  # merge into the JSON
    PYTHONPATH=. python -m benchmarks.bench_synthesize --sizes 1000000 --skip-baseline 1000000 \
        --modes value_seeded --append                                        # add one mode to a size
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._bench_util import (
    CONFIG,
    ctdc_columns,
    ctdc_frame,
    machine,
    measured,
    run_worker_process,
)
from ctdc_spark.config import load_config
from tests import oracle

MODES = ("row_seeded", "unseeded", "value_seeded", "aggregate_seeded")


def privacy_settings() -> tuple[int, int]:
    """k and L of ``conf/local.yaml``."""
    privacy = load_config(CONFIG).privacy
    return privacy.resolution, privacy.reporting_length


def worker_baseline(rows: int, seed: int, work: Path) -> dict[str, Any]:
    frame = ctdc_frame(rows, seed)
    _, unknown = ctdc_columns()
    k, _ = privacy_settings()
    with measured() as enc:
        encoded = oracle.encode_frame(frame, oracle.CellRules(unknown_values=unknown))
        records = encoded.records()
    del frame
    with measured() as phase:
        synthetic = oracle.row_seeded(records, encoded.attr_column.tolist(), k, random.Random(seed))
    n_attributes = len(encoded.names)
    counts = np.bincount([a for r in synthetic for a in r], minlength=n_attributes)
    single = np.bincount(encoded.indices, minlength=n_attributes)
    return {
        "encode": enc.as_dict(),
        "row_seeded": {
            "stage": phase.as_dict(),
            "synthetic_records": len(synthetic),
            "exact_attribute_counts": bool(np.array_equal(counts, oracle.rounded_down(single, k))),
        },
    }


# --------------------------------------------------------------------------------------------
# The Spark stage.
# --------------------------------------------------------------------------------------------


def worker_spark(
    rows: int,
    seed: int,
    work: Path,
    modes: Sequence[str],
    spark_conf: Mapping[str, str],
    *,
    checkpoint: Callable[[Mapping[str, Any]], None],
) -> dict[str, Any]:
    """Prepare and aggregate once, then time the synthesize stage per mode.

    ``checkpoint`` receives the results after every mode, so the modes already measured survive
    a later mode failing or the run being stopped (a 1M run takes the best part of an hour).
    """
    from pyspark.sql import functions as F

    from ctdc_spark.config import SparkConfig
    from ctdc_spark.io import delta as delta_io
    from ctdc_spark.pipeline import run_pipeline
    from ctdc_spark.schemas import ATTRIBUTES, SYNTHETIC_RECORDS
    from ctdc_spark.session import build_session
    from ctdc_spark.stage import RunContext
    from ctdc_spark.synthesize import run_synthesize

    csv = work / f"ctdc_{rows}.csv"
    ctdc_frame(rows, seed).to_csv(csv, index=False)
    root = work / f"spark_{rows}"
    conf = {"spark.driver.memory": "4g", **spark_conf}
    spark = build_session(
        SparkConfig(master="local[2]", app_name="bench-synthesize", conf=conf), under_spark_submit=False
    )
    k, _ = privacy_settings()

    def cfg(mode: str) -> Any:
        return load_config(
            str(CONFIG),
            overrides=[
                f"input.path={csv}",
                f"output.root={root}",
                f"synthesis.mode={mode}",
                f"synthesis.seed={seed}",
            ],
        )

    with measured() as setup:
        run_pipeline(spark, cfg(MODES[0]), stages=["prepare", "aggregate"], run_id="bench")
    single = (
        delta_io.read_run_table(spark, ATTRIBUTES, root=str(root), run_id="bench")
        .select("attr_id", "count")
        .toPandas()
        .set_index("attr_id")["count"]
    )
    out: dict[str, Any] = {"prepare_and_aggregate": setup.as_dict(), "conf": conf, "modes": {}}
    for mode in modes:
        # The same run id: each mode reads the run's prepared tables and aggregates and
        # replaces its synthetic_records rows (the config, hence the write's signature, differs).
        ctx = RunContext(cfg=cfg(mode), run_id="bench", input_fingerprint="bench")
        with measured() as phase:
            result = run_synthesize(spark, ctx)
        entry: dict[str, Any] = {
            "stage": phase.as_dict(),
            "synthetic_records": result.row_counts[SYNTHETIC_RECORDS.name],
        }
        if mode in ("row_seeded", "value_seeded"):
            synthetic = delta_io.read_run_table(spark, SYNTHETIC_RECORDS, root=str(root), run_id="bench")
            produced = (
                synthetic.select(F.explode("attrs").alias("attr_id"))
                .groupBy("attr_id")
                .count()
                .toPandas()
                .set_index("attr_id")["count"]
                .reindex(single.index, fill_value=0)
            )
            expected = oracle.rounded_down(single.to_numpy(), k)
            entry["exact_attribute_counts"] = bool((expected == produced).all())
        out["modes"][mode] = entry
        checkpoint(out)
    spark.stop()
    return out


# --------------------------------------------------------------------------------------------
# Orchestration and report.
# --------------------------------------------------------------------------------------------


def run_worker(
    impl: str, rows: int, *, seed: int, work: Path, modes: Sequence[str], conf: Sequence[str]
) -> Any:
    """Run one implementation in a fresh process; return its JSON (or the error)."""
    args = ["--modes", ",".join(modes), "--seed", str(seed)]
    args += [arg for c in conf for arg in ("--spark-conf", c)]
    return run_worker_process("benchmarks.bench_synthesize", impl, rows, args, work=work)


def summarise(rows: int, results: Mapping[str, Any]) -> dict[str, Any]:
    """One size of the report: per mode, time, records/s, memory, and the ratio to the baseline."""
    case: dict[str, Any] = {"rows": rows, "modes": {}}
    base = results.get("baseline", {}).get("row_seeded")
    base_rate = base["synthetic_records"] / base["stage"]["seconds"] if base else None
    if base:
        case["baseline_row_seeded"] = {
            **_rates(base, rows),
            "exact_attribute_counts": base["exact_attribute_counts"],
        }
    else:
        case["baseline_row_seeded"] = {"error": results.get("baseline", {}).get("error", "not run")}
    spark = results.get("spark", {})
    for mode, entry in (spark.get("modes") or {}).items():
        summary = {**_rates(entry, rows), "exact_attribute_counts": entry.get("exact_attribute_counts")}
        rate = summary["records_per_second"]
        summary["ratio_to_baseline"] = round(rate / base_rate, 3) if base_rate else None
        case["modes"][mode] = summary
    if "error" in spark:
        case["spark_error"] = spark["error"]
    return case


def merge_case(earlier: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """One size measured in two runs (``--append``): the new run's modes replace the same modes only.

    A size too slow to measure in one sitting can so be completed mode by mode; the baseline is
    the new run's when it ran, else the earlier one's (ratios are those of the run that measured
    each mode).
    """
    modes = {**earlier.get("modes", {}), **new.get("modes", {})}
    # Rows keep the same mode order at every size, whichever run measured them.
    merged = {**earlier, **new, "modes": {m: modes[m] for m in MODES if m in modes}}
    if "error" in new["baseline_row_seeded"]:
        merged["baseline_row_seeded"] = earlier["baseline_row_seeded"]
    if "spark_error" not in new:
        merged.pop("spark_error", None)
    return merged


def _rates(entry: Mapping[str, Any], rows: int) -> dict[str, Any]:
    stage = entry["stage"]
    return {
        "seconds": stage["seconds"],
        "cpu_seconds": stage["cpu_seconds"],
        "peak_tree_mb": stage["peak_tree_mb"],
        "synthetic_records": entry["synthetic_records"],
        "records_per_second": round(entry["synthetic_records"] / stage["seconds"], 1),
        "sensitive_records_per_second": round(rows / stage["seconds"], 1),
        "load": stage["load_after"],
    }


def markdown(report: Mapping[str, Any]) -> str:
    """The report as a markdown table."""
    lines = [
        "# Synthesis benchmark",
        "",
        f"Generated by `benchmarks/bench_synthesize.py` on {report['machine']} at {report['generated']}.",
        f"k = {report['k']}, L = {report['reporting_length']} (conf/local.yaml), Spark `local[2]`, "
        "4 GB driver. Records/s = synthetic records per second of the whole synthesize stage "
        "(sampling, Delta write, CSV export). Baseline: a one-process `row_seeded` (numpy + Python, "
        "docs/spec.md 4.1), the reference implementation in `tests/oracle`. Ratio = records/s over the "
        "baseline's in the same run. "
        "Exact = every attribute's synthetic count is floor(count / k) * k.",
        "",
        "| N | implementation | mode | seconds | CPU s | synthetic records | records/s | peak MB "
        "| ratio to baseline | exact |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for case in report["cases"]:
        base = case["baseline_row_seeded"]
        if "error" in base:
            lines.append(f"| {case['rows']:,} | baseline | row_seeded | {base['error']} | | | | | | |")
        else:
            lines.append(_row(case["rows"], "baseline", "row_seeded", base))
        for mode, entry in case["modes"].items():
            lines.append(_row(case["rows"], "spark", mode, entry))
        if "spark_error" in case:
            lines.append(f"| {case['rows']:,} | spark | | {case['spark_error']} | | | | | | |")
    return "\n".join(lines) + "\n"


def _row(rows: int, impl: str, mode: str, entry: Mapping[str, Any]) -> str:
    ratio = entry.get("ratio_to_baseline")
    exact = entry.get("exact_attribute_counts")
    return (
        f"| {rows:,} | {impl} | {mode} | {entry['seconds']:.1f} | {entry['cpu_seconds']:.1f} "
        f"| {entry['synthetic_records']:,} | {entry['records_per_second']:,.0f} "
        f"| {entry['peak_tree_mb']:,.0f} | {'' if ratio is None else f'{ratio:.2f}'} "
        f"| {'' if exact is None else ('yes' if exact else 'NO')} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", default="50000,200000,1000000")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    parser.add_argument("--append", action="store_true", help="merge into the existing JSON by size")
    parser.add_argument("--skip-baseline", default="", help="sizes at which the baseline is not run")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--worker", choices=("baseline", "spark"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    unknown_modes = sorted(set(modes) - set(MODES))
    if unknown_modes:
        parser.error(f"unknown modes {unknown_modes}; choose from {', '.join(MODES)}")

    if args.worker:
        (rows,) = sizes
        result_path = args.work / f"{args.worker}_{rows}.json"

        def write_result(result: Mapping[str, Any]) -> None:
            result_path.write_text(json.dumps(result), encoding="utf-8")

        if args.worker == "baseline":
            write_result(worker_baseline(rows, args.seed, args.work))
        else:
            conf = dict(c.split("=", 1) for c in args.spark_conf)
            write_result(worker_spark(rows, args.seed, args.work, modes, conf, checkpoint=write_result))
        return 0

    skip_baseline = {int(s) for s in args.skip_baseline.split(",") if s}
    k, length = privacy_settings()
    json_path = args.out / "synthesize.json"
    cases: dict[int, Any] = {}
    if args.append and json_path.exists():
        cases = {c["rows"]: c for c in json.loads(json_path.read_text(encoding="utf-8"))["cases"]}
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="bench_synthesize_") as tmp:
            work = Path(tmp)
            results = {}
            if rows not in skip_baseline:
                results["baseline"] = run_worker(
                    "baseline", rows, seed=args.seed, work=work, modes=modes, conf=args.spark_conf
                )
            results["spark"] = run_worker(
                "spark", rows, seed=args.seed, work=work, modes=modes, conf=args.spark_conf
            )
        case = summarise(rows, results)
        cases[rows] = merge_case(cases[rows], case) if rows in cases else case
        print(json.dumps(cases[rows], indent=1), flush=True)
    report = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "k": k,
        "reporting_length": length,
        "cases": [cases[r] for r in sorted(cases)],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (args.out / "synthesize.md").write_text(markdown(report), encoding="utf-8")
    print(f"wrote {json_path} and {args.out / 'synthesize.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
