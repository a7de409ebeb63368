"""Benchmark the offline explorer at CTDC scale: load-to-ready and per-click time in headless Chromium.

Runs the pipeline (``conf/local.yaml``: the CTDC global layout, k = 10, L = 3; row_seeded) on seeded
CTDC-shaped records (:func:`tools.ctdc_model.generate_ctdc_like`, default 100,000), so the page measured
is the one the publish stage builds from the release's public artefacts; then opens
``release/<run_id>/explorer/index.html`` from ``file://`` and measures, inside the page with
``performance.now()``:

* load-to-ready: navigation start -> ``window.__explorerReady`` (home and explore views);
* per click: the synchronous handler (counting + DOM update) and click -> next animation frame (adds style,
  layout and paint), over a scripted sequence of selections in the explore view.

Writes ``benchmarks/explorer.json`` and ``benchmarks/explorer.md``. Numbers are reported, not asserted.

Usage, from the repository root::

    PYTHONPATH=. python benchmarks/bench_explorer.py                       # 100k CTDC-shaped records
    PYTHONPATH=. python benchmarks/bench_explorer.py --records 20000 --clicks 20 --out /tmp/bench
    PYTHONPATH=. python benchmarks/bench_explorer.py --release output/release/latest   # an existing release
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from benchmarks._bench_util import CONFIG
from ctdc_spark.config import SparkConfig, load_config
from ctdc_spark.pipeline import STAGES, run_pipeline
from ctdc_spark.session import build_session
from tools.ctdc_model import generate_ctdc_like

# The page's one inlined script (frontend/ bundle): part of every explorer file, whatever the data.
SCRIPT_BYTES = len(
    resources.files("ctdc_spark.publish").joinpath("explorer_assets", "explorer.js").read_bytes()
)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_ID = "bench"


def build_release(records: int, seed: int, work: Path) -> tuple[Path, dict[str, float]]:
    """Run every stage on ``records`` CTDC-shaped records under ``work``: the release and stage seconds.

    The attack evaluation is switched off: it is measured by ``benchmarks/bench_attacks.py`` and changes
    nothing the explorer shows.
    """
    csv = work / "ctdc.csv"
    generate_ctdc_like(records, seed).to_csv(csv, index=False)
    cfg = load_config(
        CONFIG,
        overrides=[
            f"input.path={csv}",
            f"output.root={work / 'out'}",
            f"synthesis.seed={seed}",
            "evaluation.attacks.enabled=false",
        ],
    )
    spark = build_session(
        SparkConfig(master="local[2]", app_name="bench-explorer", conf={"spark.driver.memory": "4g"}),
        under_spark_submit=False,
    )
    seconds: dict[str, float] = {}
    try:
        for stage in STAGES:  # one stage at a time (earlier ones are done) to time each
            start = time.perf_counter()
            summary = run_pipeline(spark, cfg, stages=[stage], run_id=RUN_ID)
            seconds[stage] = time.perf_counter() - start
    finally:
        spark.stop()
    assert summary.release_dir is not None, "the publish stage writes the release"
    return Path(summary.release_dir), seconds


CLICK_SCRIPT = """async ({clicks, charts}) => {
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const out = [];
  // Click bars in the charts that are on screen (rendered; maps among them re-render on every click too);
  // the others are rendered only when scrolled to.
  const ids = Array.from(document.querySelectorAll('[data-testid="chart"][data-rendered-version]'))
    .filter(c => c.querySelector('[data-testid="bar"]')).slice(0, charts).map(c => c.dataset.visual);
  for (let i = 0; i < clicks; i++) {
    const visual = ids[i % ids.length];
    const bars = document.querySelectorAll(
      '[data-testid="chart"][data-visual="' + CSS.escape(visual) + '"] [data-testid="bar"]');
    const bar = bars[Math.floor(i / ids.length) % Math.min(3, bars.length)];
    const selections = window.__explorer.state().sel.length;
    const t0 = performance.now();
    bar.click();
    const t1 = performance.now();
    await frame();
    const t2 = performance.now();
    out.push({sync_ms: t1 - t0, frame_ms: t2 - t0, selections_before: selections,
              selections_after: window.__explorer.state().sel.length});
  }
  return out;
}"""


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
        "min": round(ordered[0], 2),
    }


def measure(index: Path, chromium: str, clicks: int, repeats: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    url = index.as_uri()
    results: dict[str, Any] = {"load": {}, "click": {}}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1800},  # a large screen: more charts re-render per click
        )
        try:
            for view in ("home", "explore"):
                ready = []
                for _ in range(repeats):
                    page = context.new_page()
                    page.goto(f"{url}?test=1#view={view}", timeout=120000)
                    page.wait_for_function("() => window.__explorerReady === true", timeout=120000)
                    ready.append(page.evaluate("window.__explorerPerf.readyAt"))
                    page.close()
                results["load"][view] = summarize(ready) | {"runs_ms": [round(x, 1) for x in ready]}
            for name, fragment in (("default_columns", "view=explore"), ("all_columns_lazy", None)):
                page = context.new_page()
                page.goto(f"{url}?test=1#view=explore", timeout=120000)
                page.wait_for_function("() => window.__explorerReady === true", timeout=120000)
                page.click('[data-testid="caveats-ack"]')
                page.wait_for_timeout(300)  # let the IntersectionObserver report the charts now on screen
                if fragment is None:  # every visual on the page; only those in view are rendered
                    page.select_option('[data-testid="page-select"]', value="__all__")
                    page.wait_for_function("() => window.__explorer.state().cols !== null")
                    page.wait_for_timeout(300)
                rendered = page.evaluate(
                    "document.querySelectorAll('[data-testid=chart][data-rendered-version]').length"
                )
                total = page.evaluate("document.querySelectorAll('[data-testid=chart]').length")
                kinds = page.evaluate(
                    """() => Array.from(
                        document.querySelectorAll('[data-testid=chart][data-rendered-version]')
                    ).map(c => window.__explorer.model.visualById.get(c.dataset.visual).type)"""
                )
                samples = page.evaluate(CLICK_SCRIPT, {"clicks": clicks, "charts": 6})
                results["click"][name] = {
                    "charts_in_view": total,
                    "charts_rendered_at_start": rendered,
                    "maps_rendered_at_start": kinds.count("map"),
                    "groups_rendered_at_start": kinds.count("group"),
                    "sync_ms": summarize([s["sync_ms"] for s in samples]),
                    "to_next_frame_ms": summarize([s["frame_ms"] for s in samples]),
                    "first_click_sync_ms": round(samples[0]["sync_ms"], 2),
                    "max_selections": max(s["selections_after"] for s in samples),
                    "samples": samples,
                }
                page.close()
        finally:
            context.close()
    return results


def find_chromium(explicit: str | None) -> str:
    for candidate in (
        explicit,
        os.environ.get("CTDC_CHROMIUM"),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("Chromium not found: install it (apt-get install chromium) or pass --chromium PATH")


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "explorer.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    d = report["dataset"]
    load = report["measurements"]["load"]
    click = report["measurements"]["click"]
    dataset = [
        f"- {d['source']}; {d['synthetic_records']:,} synthetic records ({d['synthesis_mode']}), "
        f"k = {d['k']}, L = {d['L']}",
        f"- {d['aggregate_keys']:,} reportable aggregate keys; explorer file {d['html_mb']:.1f} MB, "
        f"of which the page's script {d['script_kb']:.0f} kB (with the world map's geometry)",
    ]
    if d["stage_seconds"]:
        stages = ", ".join(f"{stage} {seconds:.0f}" for stage, seconds in d["stage_seconds"].items())
        dataset.append(f"- pipeline seconds by stage (`local[2]`): {stages}")
    lines = [
        "# Explorer benchmark",
        "",
        f"Generated by `benchmarks/bench_explorer.py` on {report['generated']} ({report['machine']['cpu']}, "
        f"{report['machine']['cores']} cores; {report['machine']['chromium']}, headless).",
        "Reported, not asserted. Targets (docs/explorer.md M1/M22): load <= 3000 ms, <= 100 ms per click.",
        "",
        "## Dataset",
        "",
        *dataset,
        "",
        "## Load: navigation start to ready (ms)",
        "",
        "| view | median | min | max |",
        "|---|---:|---:|---:|",
    ]
    for view, s in load.items():
        lines.append(f"| {view} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} |")
    lines += [
        "",
        "## Per click in Explore (ms)",
        "",
        "`sync` = click handler: counting, official lookups and DOM update; `frame` = click to the next "
        "animation frame (adds style, layout and paint).",
        "",
        "| grid | charts (rendered at start: maps, groups) | sync median | sync p95 | sync max "
        "| frame median | frame p95 | frame max | first click sync |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in click.items():
        lines.append(
            f"| {name} | {c['charts_in_view']} ({c['charts_rendered_at_start']}: "
            f"{c['maps_rendered_at_start']} maps, {c['groups_rendered_at_start']} groups) "
            f"| {c['sync_ms']['median']:.1f} | {c['sync_ms']['p95']:.1f} | {c['sync_ms']['max']:.1f} "
            f"| {c['to_next_frame_ms']['median']:.1f} | {c['to_next_frame_ms']['p95']:.1f} "
            f"| {c['to_next_frame_ms']['max']:.1f} | {c['first_click_sync_ms']:.1f} |"
        )
    lines += [
        "",
        f"Clicks per grid: {report['params']['clicks']}, up to "
        f"{max(c['max_selections'] for c in click.values())} simultaneous filters; every click "
        "re-renders the charts on screen, maps included.",
        "",
    ]
    (out / "explorer.md").write_text("\n".join(lines), encoding="utf-8")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="CTDC-shaped sensitive records")
    parser.add_argument("--seed", type=int, default=20250301)
    parser.add_argument("--clicks", type=int, default=36)
    parser.add_argument("--repeats", type=int, default=3, help="page loads per view")
    parser.add_argument("--chromium", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    parser.add_argument(
        "--release",
        type=Path,
        default=None,
        help="measure this release folder (release/<run_id>) instead of running the pipeline",
    )
    parser.add_argument(
        "--keep-release", action="store_true", help="keep the pipeline's output under OUT/tmp/"
    )
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    with tempfile.TemporaryDirectory() as tmp:
        stage_seconds: dict[str, float] = {}
        if args.release is not None:
            release, source = args.release, f"release {args.release}"
        else:
            work = args.out / "tmp" if args.keep_release else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            release, stage_seconds = build_release(args.records, args.seed, work.resolve())
            source = f"{args.records:,} CTDC-shaped sensitive records (generate_ctdc_like, seed {args.seed})"
        index = (release / "explorer" / "index.html").resolve()
        published = json.loads((release / "metadata.json").read_text(encoding="utf-8"))["release"]
        measurements = measure(index, chromium, args.clicks, args.repeats)
        html_mb = index.stat().st_size / 1e6
    try:
        chromium_version = subprocess.run(
            [chromium, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        chromium_version = ""
    report = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "params": {
            "records": None if args.release else args.records,
            "seed": None if args.release else args.seed,
            "clicks": args.clicks,
            "repeats": args.repeats,
        },
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "chromium": chromium_version.strip(),
        },
        "dataset": {
            "source": source,
            "synthetic_records": published["synthetic_records"],
            "synthesis_mode": published["synthesis_mode"],
            "k": published["k"],
            "L": published["reporting_length"],
            "aggregate_keys": published["reportable_combinations"],
            "html_mb": round(html_mb, 2),
            "script_kb": round(SCRIPT_BYTES / 1e3, 1),
            "stage_seconds": {key: round(v, 1) for key, v in stage_seconds.items()},
        },
        "measurements": measurements,
    }
    write_report(args.out, report)
    print((args.out / "explorer.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
