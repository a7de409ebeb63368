"""Benchmark exact aggregation: our Spark stage, a one-process numpy count and pac-synth (SDS's Rust core).

For each size N (CTDC-shaped records from :func:`tools.ctdc_model.generate_ctdc_like`, the columns
and unknown values of ``conf/local.yaml``) and each reporting length L, three implementations count
every combination of length <= L exactly:

* ``spark``: the aggregate stage (:func:`ctdc_spark.aggregate.run_aggregate`) on ``local[2]`` after
  the prepare stage. Its headline time is the ``sensitive_aggregates`` phase: the enumeration job,
  the shuffle and the Delta write of ``sensitive_aggregates``. Reading the prepared tables (``load``),
  the reportable table, the TSV/CSV exports and the risk analysis are timed separately. JVM start
  and the prepare stage (CSV parsing and encoding) are excluded.
* ``baseline``: the reference implementation's single-process numpy count (:mod:`tests.oracle`, which
  shares no code with the library): cells become attribute ids as SDS reads them
  (``encode_frame``), then every record length's l-subsets are gathered, numbered as int64 and
  ``np.unique``-d (``count_encoded``). Encoding and counting are timed separately; ratios use the
  counting time.
* ``pac-synth``: ``Dataset.from_data_frame(df).get_aggregates(L, ";")`` (timed: ``get_aggregates``;
  building the Dataset is reported as its encoding).

Each implementation runs in its own process (``--worker``), one after the other, so memory is
measured per implementation: the peak PSS of the worker's process tree (for Spark: driver Python,
JVM and Python workers), sampled from ``/proc``. The three results are then compared exactly
(every combination and its count). Writes ``benchmarks/aggregate.json`` and ``benchmarks/aggregate.md``;
numbers are reported, not asserted. The machine is shared: each phase records ``os.getloadavg()``.

Usage, from the repository root::

    PYTHONPATH=. python -m benchmarks.bench_aggregate                       # 50k, 200k, 1M x L = 2, 3, 4
    PYTHONPATH=. python -m benchmarks.bench_aggregate --sizes 50000,200000 --lengths 3
    PYTHONPATH=. python -m benchmarks.bench_aggregate --sizes 1000000 --lengths 3 \\
        --skip-pacsynth 1000000 --append
    # --skip-pacsynth takes sizes (N) or size:length pairs (200000:4); --append merges into the
    # existing JSON (replacing the same cases) so a long matrix can be run in pieces.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
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
    tree_cpu_seconds,
)
from tests import oracle

IMPLEMENTATIONS = ("baseline", "pac-synth", "spark")


# --------------------------------------------------------------------------------------------
# Workers: one process per implementation and size.
# --------------------------------------------------------------------------------------------


def _save(path: Path, names: Sequence[str], combos: np.ndarray, counts: np.ndarray) -> None:
    np.savez(path, names=np.array(names, dtype=object), combos=combos, counts=counts)


def _csr_to_padded(offsets: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    out = np.full((len(offsets) - 1, length), -1, dtype=np.int16)
    sizes = np.diff(offsets)
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        out[rows, :size] = values[offsets[rows][:, None] + np.arange(size)]
    return out


def worker_baseline(rows: int, lengths: Sequence[int], seed: int, work: Path) -> dict[str, Any]:
    frame = ctdc_frame(rows, seed)
    _, unknown = ctdc_columns()
    with measured() as enc:
        encoded = oracle.encode_frame(frame, oracle.CellRules(unknown_values=unknown))
    del frame
    out: dict[str, Any] = {"encode": enc.as_dict(), "by_length": {}}
    for length in lengths:
        with measured() as phase:
            combos, counts = oracle.count_encoded(encoded.indptr, encoded.indices, length)
        out["by_length"][str(length)] = {
            "count": phase.as_dict(),
            "distinct": len(counts),
            "occurrences": int(counts.sum()),
        }
        _save(work / f"baseline_{rows}_{length}.npz", encoded.names, combos.astype(np.int16), counts)
    return out


def worker_pacsynth(rows: int, lengths: Sequence[int], seed: int, work: Path) -> dict[str, Any]:
    import os

    import pacsynth

    frame = ctdc_frame(rows, seed)
    _, unknown = ctdc_columns()
    # pac-synth treats "" and "0" as no attribute; our config's unknown values become "".
    frame = frame.replace(dict.fromkeys(unknown, ""))
    pacsynth.set_number_of_threads(os.cpu_count() or 1)
    with measured() as enc:
        dataset = pacsynth.Dataset.from_data_frame(frame)
    out: dict[str, Any] = {"encode": enc.as_dict(), "by_length": {}, "threads": os.cpu_count()}
    for length in lengths:
        with measured() as phase:
            aggregates = dataset.get_aggregates(length, ";")
        out["by_length"][str(length)] = {"count": phase.as_dict(), "distinct": len(aggregates)}
        names = sorted({a for combo in aggregates for a in combo.split(";")})
        ids = {name: i for i, name in enumerate(names)}
        combos = np.full((len(aggregates), length), -1, dtype=np.int16)
        counts = np.zeros(len(aggregates), dtype=np.int64)
        for row, (combo, n) in enumerate(aggregates.items()):
            attrs = sorted(ids[a] for a in combo.split(";"))
            combos[row, : len(attrs)] = attrs
            counts[row] = n
        out["by_length"][str(length)]["occurrences"] = int(counts.sum())
        del aggregates
        _save(work / f"pac-synth_{rows}_{length}.npz", names, combos, counts)
    return out


def _record_phase_cpu() -> dict[str, float]:
    """Make ``StageResult.timed`` also record the process tree's CPU seconds per phase.

    A measurement hook for this benchmark only: the stage times its phases by wall clock, which on a
    shared machine mostly measures the other jobs.
    """
    import contextlib
    import os

    from ctdc_spark.stage import StageResult

    cpu: dict[str, float] = {}
    wall_timed = StageResult.timed

    @contextlib.contextmanager
    def timed(self: StageResult, phase: str) -> Iterator[None]:
        start = tree_cpu_seconds(os.getpid())
        try:
            with wall_timed(self, phase):
                yield
        finally:
            cpu[phase] = cpu.get(phase, 0.0) + tree_cpu_seconds(os.getpid()) - start

    StageResult.timed = timed  # type: ignore[method-assign]
    return cpu


def worker_spark(
    rows: int, lengths: Sequence[int], seed: int, work: Path, spark_conf: Mapping[str, str]
) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from ctdc_spark.aggregate import run_aggregate
    from ctdc_spark.config import SparkConfig, load_config
    from ctdc_spark.io import delta as delta_io
    from ctdc_spark.pipeline import run_pipeline
    from ctdc_spark.schemas import ATTRIBUTES, COLUMNS, RECORDS, SENSITIVE_AGGREGATES
    from ctdc_spark.session import build_session
    from ctdc_spark.stage import RunContext

    phase_cpu = _record_phase_cpu()
    csv = work / f"ctdc_{rows}.csv"
    ctdc_frame(rows, seed).to_csv(csv, index=False)
    root = work / f"spark_{rows}"
    conf = {"spark.driver.memory": "4g", **spark_conf}
    spark = build_session(
        SparkConfig(master="local[2]", app_name="bench-aggregate", conf=conf), under_spark_submit=False
    )

    def cfg(length: int) -> Any:
        return load_config(
            str(CONFIG),
            overrides=[f"input.path={csv}", f"output.root={root}", f"privacy.reporting_length={length}"],
        )

    with measured() as prep:
        run_pipeline(spark, cfg(lengths[0]), stages=["prepare"], run_id="bench")
    attrs = (
        delta_io.read_run_table(spark, ATTRIBUTES, root=str(root), run_id="bench")
        .select("attr_id", "column", "value")
        .toPandas()
    )
    names_by_id = dict(zip(attrs["attr_id"], attrs["column"] + ":" + attrs["value"], strict=True))

    def run_id_for(length: int) -> str:
        # Delta writes are idempotent per (table, run id): each L needs its own run id, so the
        # prepared rows are copied under it (untimed) instead of preparing the CSV again.
        run_id = f"bench-L{length}"
        for spec in (RECORDS, ATTRIBUTES, COLUMNS):
            prepared = delta_io.read_run_table(spark, spec, root=str(root), run_id="bench")
            delta_io.write_run_table(
                prepared.withColumn("run_id", F.lit(run_id)),
                spec,
                root=str(root),
                run_id=run_id,
                signature="bench-copy",
                stage="copy",
            )
        return run_id

    # Warm-up (untimed): JIT, Python workers and Delta code paths, on L = 1.
    run_aggregate(spark, RunContext(cfg=cfg(1), run_id=run_id_for(1), input_fingerprint="bench"))
    out: dict[str, Any] = {"prepare": prep.as_dict(), "conf": conf, "by_length": {}}
    for length in lengths:
        run_id = run_id_for(length)
        ctx = RunContext(cfg=cfg(length), run_id=run_id, input_fingerprint="bench")
        phase_cpu.clear()
        with measured() as phase:
            result = run_aggregate(spark, ctx)
        table = (
            delta_io.read_run_table(spark, SENSITIVE_AGGREGATES, root=str(root), run_id=run_id)
            .select("combo", "count")
            .toArrow()
        )
        combo = table.column("combo").combine_chunks()
        spark_ids = combo.flatten().to_numpy(zero_copy_only=False)
        names = sorted(names_by_id.values())
        remap = np.full(max(names_by_id) + 1, -1, dtype=np.int64)
        rank = {name: i for i, name in enumerate(names)}
        for attr_id, name in names_by_id.items():
            remap[attr_id] = rank[name]
        offsets = np.asarray(combo.offsets, dtype=np.int64)
        ids = remap[spark_ids]
        # Sort each combination by the benchmark's ids (the library's order may differ).
        padded = _csr_to_padded(offsets, ids, length).astype(np.int64)
        padded = np.where(padded < 0, np.iinfo(np.int64).max, padded)
        padded.sort(axis=1)
        padded = np.where(padded == np.iinfo(np.int64).max, -1, padded).astype(np.int16)
        counts = table.column("count").to_numpy()
        out["by_length"][str(length)] = {
            "stage": phase.as_dict(),
            "phases": {k: round(v, 3) for k, v in result.timings.items()},
            "phases_cpu": {k: round(v, 2) for k, v in phase_cpu.items()},
            "distinct": len(counts),
            "occurrences": int(counts.sum()),
        }
        _save(work / f"spark_{rows}_{length}.npz", names, padded, counts)
    spark.stop()
    return out


# --------------------------------------------------------------------------------------------
# Orchestration, comparison and report.
# --------------------------------------------------------------------------------------------


def _canonical(path: Path, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Load a worker's result as rows of ids over the shared attribute list ``names``, rows sorted.

    Each row holds a combination's ids ascending, then ``len(names)`` in the unused slots.
    """
    data = np.load(path, allow_pickle=True)
    rank = {name: i for i, name in enumerate(names)}
    remap = np.array([rank[n] for n in data["names"]] + [len(names)], dtype=np.int64)  # -1 -> unused
    combos = data["combos"].astype(np.int64)
    mapped = np.sort(remap[np.where(combos < 0, len(remap) - 1, combos)], axis=1)
    order = np.lexsort(mapped.T[::-1])
    return mapped[order], data["counts"][order]


def compare(work: Path, rows: int, length: int, present: Sequence[str]) -> dict[str, Any]:
    """Exact agreement of the implementations' results for one case."""
    files = {impl: work / f"{impl}_{rows}_{length}.npz" for impl in present}
    files = {impl: path for impl, path in files.items() if path.exists()}
    if len(files) < 2:
        return {"compared": sorted(files), "agree": None}
    names = sorted({str(n) for p in files.values() for n in np.load(p, allow_pickle=True)["names"]})
    loaded = {impl: _canonical(path, names) for impl, path in files.items()}
    reference_impl = "baseline" if "baseline" in loaded else next(iter(loaded))
    ref_keys, ref_counts = loaded[reference_impl]
    details = {}
    for impl, (keys, counts) in loaded.items():
        if impl == reference_impl:
            continue
        same = bool(np.array_equal(keys, ref_keys) and np.array_equal(counts, ref_counts))
        missing = extra = 0
        if not same:
            found, expected = set(map(tuple, keys.tolist())), set(map(tuple, ref_keys.tolist()))
            missing, extra = len(expected - found), len(found - expected)
        details[impl] = {"agree": same, "missing": missing, "extra": extra}
    for path in files.values():
        path.unlink()
    return {
        "compared": sorted(files),
        "reference": reference_impl,
        "agree": all(d["agree"] for d in details.values()),
        "details": details,
    }


def run_worker(
    impl: str, rows: int, lengths: Sequence[int], *, seed: int, work: Path, conf: Sequence[str]
) -> Any:
    """Run one implementation in a fresh process; return its JSON (or the error)."""
    args = ["--lengths", ",".join(map(str, lengths)), "--seed", str(seed)]
    args += [arg for c in conf for arg in ("--spark-conf", c)]
    return run_worker_process(
        "benchmarks.bench_aggregate", impl, rows, args, work=work, label=f" L={list(lengths)}"
    )


def _skip(spec: Sequence[str], rows: int, length: int) -> bool:
    for item in spec:
        size, _, only = item.partition(":")
        if int(size) == rows and (not only or int(only) == length):
            return True
    return False


def summarise(
    rows: int, length: int, results: Mapping[str, Any], agreement: Mapping[str, Any]
) -> dict[str, Any]:
    """One case of the report: times, throughput, memory, ratios."""
    case: dict[str, Any] = {"rows": rows, "length": length, "agreement": agreement}
    occurrences = None
    for impl, res in results.items():
        lres = (res.get("by_length") or {}).get(str(length))
        if not lres:
            case[impl] = {"error": res.get("error", "not run")}
            continue
        if impl == "spark":
            seconds = lres["phases"]["sensitive_aggregates"]
            entry = {
                "seconds": seconds,
                "cpu_seconds": lres.get("phases_cpu", {}).get("sensitive_aggregates"),
                "phases_cpu": lres.get("phases_cpu", {}),
                "phases": lres["phases"],
                "stage_seconds": lres["stage"]["seconds"],
                "peak_mb": lres["stage"]["peak_tree_mb"],
                "load": lres["stage"]["load_before"],
                "prepare_seconds": res["prepare"]["seconds"],
            }
        else:
            seconds = lres["count"]["seconds"]
            entry = {
                "seconds": seconds,
                "cpu_seconds": lres["count"].get("cpu_seconds"),
                "encode_seconds": res["encode"]["seconds"],
                "peak_mb": max(lres["count"]["peak_tree_mb"], lres["count"]["peak_rss_self_mb"] or 0.0),
                "load": lres["count"]["load_before"],
            }
        entry["distinct"] = lres["distinct"]
        occurrences = lres.get("occurrences", occurrences)
        entry["rows_per_s"] = rows / seconds if seconds else None
        case[impl] = entry
    case["occurrences"] = occurrences
    for impl in IMPLEMENTATIONS:
        measured_entry = case.get(impl)
        if measured_entry and "seconds" in measured_entry and occurrences:
            measured_entry["combinations_per_s"] = occurrences / measured_entry["seconds"]
    spark = case.get("spark", {})
    for other in ("baseline", "pac-synth"):
        if "seconds" in spark and "seconds" in case.get(other, {}):
            case[f"spark_over_{other}"] = spark["seconds"] / case[other]["seconds"]
            if spark.get("cpu_seconds") and case[other].get("cpu_seconds"):
                case[f"spark_over_{other}_cpu"] = spark["cpu_seconds"] / case[other]["cpu_seconds"]
    return case


def _num(value: float | None, fmt: str = ",") -> str:
    return "–" if value is None else format(value, fmt)


def _rate(value: float | None) -> str:
    if not value:
        return "–"
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"


def _seconds(entry: Mapping[str, Any] | None, encode: bool = False) -> str:
    if not entry or "seconds" not in entry:
        return "–"
    text = f"{entry['seconds']:.1f}"
    if entry.get("cpu_seconds") is not None:
        text += f" / {entry['cpu_seconds']:.1f}"
    return text + (f" (+{entry['encode_seconds']:.1f})" if encode else "")


def _ratio(case: Mapping[str, Any], other: str) -> str:
    wall = case.get(f"spark_over_{other}")
    cpu = case.get(f"spark_over_{other}_cpu")
    if wall is None:
        return "–"
    return f"{wall:.2f}" + (f" / {cpu:.2f}" if cpu is not None else "")


def markdown(report: Mapping[str, Any]) -> str:
    """The report as a markdown page."""
    cases = sorted(report["cases"], key=lambda c: (c["rows"], c["length"]))
    lines = [
        "# Exact aggregation: Spark stage vs one-process numpy vs pac-synth",
        "",
        f"Generated {report['generated_at']} by `python -m benchmarks.bench_aggregate` "
        f"on {report['machine']}. "
        "The machine is shared with other sessions' Spark jobs: `load` is the 1-minute load average when "
        "each measurement started (2 cores, so load > 2 means we did not have the machine to ourselves).",
        "",
        f"Data: CTDC-shaped records (`generate_ctdc_like`, seed {report['seed']}), the {report['columns']} "
        "columns of `conf/local.yaml` (unknown and `0` cells are not attributes).",
        "",
        "* **Spark**: `local[2]`, Spark conf "
        + ", ".join(f"`{k}={v}`" for k, v in sorted(report["spark_conf"].items()))
        + "; time = the aggregate stage's `sensitive_aggregates` phase (enumeration job, shuffle, Delta "
        "write); JVM start and the prepare stage (CSV parsing, encoding) excluded; the other phases are "
        "in the second table.",
        "* **baseline**: the reference implementation (`tests/oracle`), numpy in one process, counting "
        "time; encoding in brackets.",
        "* **pac-synth** 0.0.8: `Dataset.get_aggregates(L)` on all cores; `Dataset.from_data_frame` in "
        "brackets.",
        "* Times are `wall / CPU` seconds (CPU = user + system time of the implementation's whole "
        "process tree, the fairer measure when other jobs share the 2 cores); ratios likewise "
        "`wall / CPU`; rows/s and comb/s use wall time.",
        "* `occurrences` = sum over records of sum_{l<=L} C(m, l), the combinations enumerated; "
        "comb/s = occurrences / time. `agree` = every combination and count identical across the "
        "implementations listed.",
        "",
        "## Time and throughput",
        "",
        "| N | L | distinct | occurrences | Spark s | baseline s | pac-synth s | Spark rows/s "
        "| Spark comb/s | baseline comb/s | pac-synth comb/s | Spark / baseline | Spark / pac-synth "
        "| agree | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for c in cases:
        spark, base, pac = c.get("spark"), c.get("baseline"), c.get("pac-synth")
        distinct = next((e["distinct"] for e in (spark, base, pac) if e and "distinct" in e), None)
        agreement = c["agreement"]
        agree = {True: "yes", False: "**NO**", None: "–"}[agreement.get("agree")]
        if agreement.get("compared"):
            agree += " (" + ", ".join(agreement["compared"]) + ")"
        loads = "/".join(f"{e['load'][0]:.1f}" for e in (spark, base, pac) if e and "load" in e)
        lines.append(
            f"| {c['rows']:,} | {c['length']} | {_num(distinct)} | {_num(c['occurrences'])} | "
            f"{_seconds(spark)} | {_seconds(base, True)} | {_seconds(pac, True)} | "
            f"{_rate((spark or {}).get('rows_per_s'))} | {_rate((spark or {}).get('combinations_per_s'))} | "
            f"{_rate((base or {}).get('combinations_per_s'))} | "
            f"{_rate((pac or {}).get('combinations_per_s'))} | "
            f"{_ratio(c, 'baseline')} | {_ratio(c, 'pac-synth')} | "
            f"{agree} | {loads} |"
        )
    lines += [
        "",
        "`load` lists the 1-minute load average at the start of the Spark / baseline / pac-synth run.",
        "",
        "## Memory and the other phases of the Spark stage",
        "",
        "Peak memory = the largest sampled PSS of the implementation's process tree (Spark: driver Python + "
        "JVM + Python workers, over the whole aggregate stage; baseline and pac-synth: one process, "
        "the larger of the sampled PSS and the kernel's peak RSS over the counting call).",
        "",
        "| N | L | Spark peak MB | baseline peak MB | pac-synth peak MB | Spark load s | "
        "Spark reportable s | Spark exports s | Spark risk analysis s | Spark whole stage s "
        "| Spark prepare s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        spark, base, pac = c.get("spark") or {}, c.get("baseline") or {}, c.get("pac-synth") or {}
        phases = spark.get("phases", {})
        lines.append(
            f"| {c['rows']:,} | {c['length']} | {_num(spark.get('peak_mb'), ',.0f')} | "
            f"{_num(base.get('peak_mb'), ',.0f')} | {_num(pac.get('peak_mb'), ',.0f')} | "
            f"{_num(phases.get('load'), '.1f')} | {_num(phases.get('reportable_aggregates'), '.1f')} | "
            f"{_num(phases.get('exports'), '.1f')} | {_num(phases.get('risk_analysis'), '.1f')} | "
            f"{_num(spark.get('stage_seconds'), '.1f')} | {_num(spark.get('prepare_seconds'), '.1f')} |"
        )
    errors = [
        f"* N = {c['rows']:,}, L = {c['length']}, {impl}: {c[impl]['error']}"
        for c in cases
        for impl in IMPLEMENTATIONS
        if "error" in (c.get(impl) or {})
    ]
    if errors:
        lines += ["", "Not measured:", "", *errors]
    lines += ["", *report.get("notes", []), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix (or one worker) and write ``<out>/aggregate.json`` and ``.md``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="50000,200000,1000000")
    parser.add_argument("--lengths", default="2,3,4")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--skip-pacsynth",
        nargs="*",
        default=[],
        metavar="N[:L]",
        help="sizes (or size:length pairs) where pac-synth is not run",
    )
    parser.add_argument("--skip-baseline", nargs="*", default=[], metavar="N[:L]")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    parser.add_argument("--append", action="store_true", help="merge into the existing JSON")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    lengths = [int(x) for x in args.lengths.split(",")]
    conf = dict(c.split("=", 1) for c in args.spark_conf)

    if args.worker:
        rows = sizes[0]
        if args.worker == "baseline":
            out = worker_baseline(rows, lengths, args.seed, args.work)
        elif args.worker == "pac-synth":
            out = worker_pacsynth(rows, lengths, args.seed, args.work)
        else:
            out = worker_spark(rows, lengths, args.seed, args.work, conf)
        (args.work / f"{args.worker}_{rows}.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
        return 0

    json_path, md_path = args.out / "aggregate.json", args.out / "aggregate.md"
    report: dict[str, Any] = {"cases": [], "notes": []}
    if args.append and json_path.exists():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    report.update(
        {
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "seed": args.seed,
            "columns": len(ctdc_columns()[0]),
            "spark_conf": {"spark.driver.memory": "4g", **conf},
        }
    )
    report["notes"] = list(dict.fromkeys([*report.get("notes", []), *args.note]))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_aggregate_") as tmp:
        work = Path(tmp)
        for rows in sizes:
            results: dict[str, Any] = {}
            for impl in IMPLEMENTATIONS:
                skip = (
                    args.skip_pacsynth
                    if impl == "pac-synth"
                    else (args.skip_baseline if impl == "baseline" else [])
                )
                wanted = [length for length in lengths if not _skip(skip, rows, length)]
                if wanted:
                    results[impl] = run_worker(
                        impl, rows, wanted, seed=args.seed, work=work, conf=args.spark_conf
                    )
                else:
                    results[impl] = {"error": "skipped (--skip-" + impl.replace("-", "") + ")"}
                for length in lengths:
                    if _skip(skip, rows, length) and "by_length" in results[impl]:
                        results[impl]["by_length"].pop(str(length), None)
            for length in lengths:
                present = [
                    impl for impl in IMPLEMENTATIONS if str(length) in results[impl].get("by_length", {})
                ]
                case = summarise(rows, length, results, compare(work, rows, length, present))
                report["cases"] = [
                    c for c in report["cases"] if (c["rows"], c["length"]) != (rows, length)
                ] + [case]
                print(json.dumps(case, indent=1), flush=True)
            json_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            md_path.write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
