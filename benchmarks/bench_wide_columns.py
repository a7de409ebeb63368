"""Benchmark a column whose values are nearly all unique (a case id): the whole run with and without it.

The issue's shape: ``--rows`` records (default 100,000) of three categorical columns with 5, 8 and 11
values, and the same records plus ``case_id``, a distinct value per record. Each variant is one
``ctdc-spark run`` of every stage (k 10, L 3, the embedded default's other settings), a process of
its own timed from outside (:func:`benchmarks._bench_util.measure_command`: wall and CPU seconds and
the peak PSS of its process tree); the stage seconds come from its JSON log, and the report says
whether prepare's warning named the column. The variants alternate (narrow, wide, narrow, wide,
...) for ``--repeats`` rounds, so a load change on a shared machine hits both alike; the ratio is
wide over narrow, per round and for the median.

Writes ``benchmarks/wide_columns.json`` and ``benchmarks/wide_columns.md``; numbers are reported,
never asserted. Generated data only.

Usage, from the repository root::

    PYTHONPATH=. python -m benchmarks.bench_wide_columns
    PYTHONPATH=. python -m benchmarks.bench_wide_columns --rows 20000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._bench_util import load, machine, measure_command
from benchmarks.bench_vs_sds import stage_seconds_from_log

VARIANTS = ("narrow", "wide")
WIDE_COLUMN = "case_id"
SETTINGS = (
    "input.use_columns=[]",
    "privacy.resolution=10",
    "privacy.reporting_length=3",
    "explorer.country_columns=[]",
    "explorer.ordinal_columns={}",
    "explorer.release_date=2026-01-01",
    "synthesis.seed=7",
)


def records(rows: int, *, wide: bool, seed: int) -> pd.DataFrame:
    """Three categorical columns (5, 8 and 11 values), plus a distinct ``case_id`` when ``wide``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"c{i}": rng.integers(0, 5 + 3 * i, rows).astype(str) for i in range(3)})
    if wide:
        frame[WIDE_COLUMN] = [f"case-{i:07d}" for i in range(rows)]
    return frame


def run_variant(data: Path, work: Path) -> dict[str, Any]:
    """One whole ``ctdc-spark run`` on ``data``, measured from outside."""
    cli = Path(sys.executable).with_name("ctdc-spark")
    command = [str(cli), "run", "--set", f"input.path={data}", "--set", f"output.root={work / 'out'}"]
    for setting in SETTINGS:
        command += ["--set", setting]
    ran = measure_command(command, cwd=work)
    out = ran.phase.as_dict()
    out["returncode"] = ran.returncode
    out["stages"] = stage_seconds_from_log(ran.stderr.splitlines())
    out["warned_about_column"] = f"column {WIDE_COLUMN} has" in ran.stderr
    if ran.returncode != 0:
        errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
        out["error"] = errors[-1] if errors else f"exit code {ran.returncode}"
    return out


def _ratio(wide: dict[str, Any], narrow: dict[str, Any]) -> float | None:
    if wide.get("returncode") != 0 or narrow.get("returncode") != 0:
        return None
    return round(float(wide["seconds"]) / float(narrow["seconds"]), 2)


def report(result: dict[str, Any]) -> str:
    """The markdown report."""
    rounds = result["rounds"]
    lines = [
        "# A column with a distinct value per record (issue 16: wide columns)",
        "",
        f"Generated {result['generated']} by `python -m benchmarks.bench_wide_columns` "
        f"on {result['machine']}. "
        f"{result['rows']:,} records of three categorical columns (5, 8 and 11 values); *wide* adds "
        f"`{WIDE_COLUMN}`, a distinct value per record. Each cell is one whole `ctdc-spark run` (every "
        "stage, k 10, L 3) in a process of its own, timed from outside; variants alternate, so both "
        "see the same load. Ratio = wide wall seconds / narrow wall seconds.",
        "",
        "| round | variant | wall s | CPU s | peak MB | prepare | aggregate | synthesize | evaluate | "
        "publish | warned | load at start |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for number, entry in enumerate(rounds, start=1):
        for variant in VARIANTS:
            run = entry[variant]
            stages = run["stages"]
            cells = " | ".join(
                f"{stages[s]:.1f}" if s in stages else "–"
                for s in ("prepare", "aggregate", "synthesize", "evaluate", "publish")
            )
            lines.append(
                f"| {number} | {variant} | {run['seconds']:.1f} | {run['cpu_seconds']:.1f} | "
                f"{run['peak_tree_mb']:,.0f} | {cells} | {'yes' if run['warned_about_column'] else 'no'} | "
                f"{run['load_before'][0]:.2f} |"
            )
    ratios = [r for r in (_ratio(e["wide"], e["narrow"]) for e in rounds) if r is not None]
    median = f"{statistics.median(ratios):.2f}" if ratios else "–"
    lines += ["", f"Ratio per round: {', '.join(f'{r:.2f}' for r in ratios) or '–'}; median {median}."]
    failed = [
        f"round {n} {v}: {e[v]['error']}"
        for n, e in enumerate(rounds, 1)
        for v in VARIANTS
        if "error" in e[v]
    ]
    lines += [f"* failed: {line}" for line in failed]
    lines += [f"* {note}" for note in result.get("notes", [])]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds and write ``<out>/wide_columns.json`` and ``.md``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    parser.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "rows": args.rows,
        "rounds": [],
        "notes": args.note,
    }
    with tempfile.TemporaryDirectory(prefix="bench_wide_columns_") as tmp:
        for variant in VARIANTS:
            records(args.rows, wide=variant == "wide", seed=args.seed).to_csv(
                Path(tmp) / f"{variant}.csv", index=False
            )
        for number in range(args.repeats):
            entry = {}
            for variant in VARIANTS:
                work = Path(tmp) / f"{variant}_{number}"
                work.mkdir()
                print(f"[{datetime.now():%H:%M:%S}] round {number + 1} {variant} load={load()}", flush=True)
                entry[variant] = run_variant(Path(tmp) / f"{variant}.csv", work)
            result["rounds"].append(entry)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "wide_columns.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "wide_columns.md").write_text(report(result), encoding="utf-8")
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
