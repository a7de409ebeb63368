"""Helpers shared by the aggregation and synthesis benchmarks: data, memory sampling, machine facts.

Peak memory is sampled from ``/proc`` (no extra dependency): every ``interval`` seconds the
proportional set size (PSS, from ``smaps_rollup``) of this process and all its descendants is
summed, so a Spark driver counts its JVM and the Python workers the JVM forks, and pages shared
after a fork are counted once. Single-process runs also report the kernel's exact peak RSS
(``VmHWM``, reset per phase through ``/proc/self/clear_refs``).

CPU time is the fairer measure on a shared machine: a phase's CPU seconds are the growth of the
process tree's user + system time, as :func:`tree_cpu_seconds` meters it (counting processes that
exit during the phase). Wall time under a load average above the core count mostly measures the
other jobs.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ctdc_spark.config import load_config
from tools.ctdc_model import generate_ctdc_like

CONFIG = Path("conf/local.yaml")


def ctdc_columns() -> tuple[list[str], list[str]]:
    """The used columns and unknown values of ``conf/local.yaml`` (the CTDC global layout)."""
    conf = load_config(CONFIG).input
    return list(conf.use_columns), list(conf.unknown_values)


def ctdc_frame(n_rows: int, seed: int) -> pd.DataFrame:
    """``n_rows`` CTDC-shaped records restricted to the configured columns (strings)."""
    columns, _ = ctdc_columns()
    return generate_ctdc_like(n_rows, seed)[columns]


def load() -> list[float]:
    """1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> str:
    """One line describing the machine."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), ``None`` once gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields after the last ')' are fixed.
    return stat.rsplit(")", 1)[1].split()


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _own_ticks(pid: int) -> tuple[int, int] | None:
    """``(start time, utime + stime)`` of a live process in clock ticks, or ``None`` once it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[19]), int(fields[11]) + int(fields[12]))


class TreeCpuMeter:
    """User + system time of a process tree, including processes that exit between two reads.

    Summing ``utime + stime + cutime + cstime`` over the live tree at two instants misses a process
    that exits in between unless its parent reaps it with accounting; PySpark's worker daemon
    ignores SIGCHLD, so the kernel reaps the Python workers and their time reaches no parent (and
    Spark stops idle workers after a minute, e.g. while a stage writes). The meter instead keeps
    every process's own time as last read, keyed by pid and start time, and rereads the tree every
    ``interval`` seconds on a daemon thread (until the root exits): an exiting process loses at
    most that much. Reaped children's ``cutime`` is ignored, so nothing is counted twice.
    """

    def __init__(self, root: int, interval: float = 0.5) -> None:
        """Start metering ``root``'s tree; only time used from now on counts."""
        self._root = root
        self._lock = threading.Lock()
        self._last: dict[tuple[int, int], int] = {}
        self._read_tree()
        self._start = dict(self._last)
        thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        thread.start()

    def _read_tree(self) -> bool:
        """Record the tree's times now; whether the root is still alive."""
        with self._lock:
            for pid in process_tree(self._root):
                found = _own_ticks(pid)
                if found is not None:
                    self._last[(pid, found[0])] = found[1]
        # An exited root's children are reparented away from it: nothing is left to meter.
        return _stat_fields(self._root) is not None

    def _run(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            if not self._read_tree():
                return

    def seconds(self) -> float:
        """CPU seconds the tree has used since the meter started (read now)."""
        self._read_tree()
        with self._lock:
            ticks = sum(t - self._start.get(key, 0) for key, t in self._last.items())
        return ticks / os.sysconf("SC_CLK_TCK")


_meters: dict[int, TreeCpuMeter] = {}


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used by ``root``'s tree since the first call for ``root`` in this process.

    Only differences between two calls are meaningful; the first call starts a
    :class:`TreeCpuMeter`, which also counts the processes that exit between calls.
    """
    meter = _meters.get(root)
    if meter is None:
        meter = _meters[root] = TreeCpuMeter(root)
    return meter.seconds()


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


@dataclass
class Phase:
    """Wall time, peak memory and load of one measured phase."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_tree_mb: float = 0.0
    peak_rss_self_mb: float | None = None
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "peak_tree_mb": round(self.peak_tree_mb, 1),
            "peak_rss_self_mb": None if self.peak_rss_self_mb is None else round(self.peak_rss_self_mb, 1),
            "load_before": self.load_before,
            "load_after": self.load_after,
        }


@contextmanager
def measured(interval: float = 0.2) -> Iterator[Phase]:
    """Time a block (wall and tree CPU) and sample the peak PSS of this process tree while it runs."""
    phase = Phase(load_before=load())
    root = os.getpid()
    stop = threading.Event()
    peak = [0]
    tree: list[list[int]] = [process_tree(root)]

    def sample() -> None:
        ticks = 0
        while True:
            if ticks % 10 == 0:  # new Python workers appear rarely; rescan /proc every ~2 s
                tree[0] = process_tree(root)
            peak[0] = max(peak[0], sum(_pss_kb(pid) for pid in tree[0]))
            ticks += 1
            if stop.wait(interval):
                return

    reset = _reset_peak_rss()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    cpu = tree_cpu_seconds(root)
    start = time.perf_counter()
    try:
        yield phase
    finally:
        phase.seconds = time.perf_counter() - start
        phase.cpu_seconds = tree_cpu_seconds(root) - cpu
        stop.set()
        thread.join()
        tree[0] = process_tree(root)
        peak[0] = max(peak[0], sum(_pss_kb(pid) for pid in tree[0]))
        phase.peak_tree_mb = peak[0] / 1024
        if reset:
            phase.peak_rss_self_mb = _status_kb("VmHWM") / 1024
        phase.load_after = load()


@dataclass
class CommandResult:
    """How a command measured by :func:`measure_command` ran."""

    phase: Phase
    returncode: int | None
    """``None`` when it was stopped at its time-out."""
    stderr: str


def measure_command(
    cmd: Sequence[str], *, cwd: Path | None = None, timeout: float | None = None, interval: float = 0.2
) -> CommandResult:
    """Run ``cmd`` and measure it alone: wall time, the CPU time and peak PSS of its process tree.

    Unlike :func:`measured`, the caller's own process is not counted, so a command's memory is its
    own (the benchmark's driver holds pandas and the generated data). Stdout is discarded, stderr
    kept (a run's JSON log). At ``timeout`` seconds the command's process group is killed.
    """
    phase = Phase(load_before=load())
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        cpu_start = tree_cpu_seconds(proc.pid)
        start = time.perf_counter()
        peak, ticks, tree = 0, 0, [proc.pid]
        returncode: int | None = None
        while True:
            if ticks % 10 == 0:  # as in measured(): new processes appear rarely
                tree = process_tree(proc.pid)
            peak = max(peak, sum(_pss_kb(pid) for pid in tree))
            ticks += 1
            # Read before the wait: once reaped, the tree's last CPU times are gone.
            cpu = tree_cpu_seconds(proc.pid) - cpu_start
            try:
                returncode = proc.wait(interval)
                break
            except subprocess.TimeoutExpired:
                if timeout is not None and time.perf_counter() - start > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    break
        phase.seconds = time.perf_counter() - start
        phase.cpu_seconds = cpu
        phase.peak_tree_mb = peak / 1024
        phase.load_after = load()
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="replace")
    return CommandResult(phase, returncode, stderr)


def run_worker_process(
    module: str, impl: str, rows: int, worker_args: Sequence[str], *, work: Path, label: str = ""
) -> Any:
    """Run ``python -m <module> --worker <impl> --sizes <rows> ...`` in a fresh process.

    Each implementation gets its own process so its peak memory is its own. The worker writes
    ``<work>/<impl>_<rows>.json``.

    Returns:
        That JSON plus ``process_seconds``; when the worker failed, ``error`` too, next to
        whatever results it had written before failing.
    """
    cmd = [sys.executable, "-m", module, "--worker", impl, "--sizes", str(rows), "--work", str(work)]
    cmd += worker_args
    start = time.perf_counter()
    print(f"[{datetime.now():%H:%M:%S}] {impl} N={rows:,}{label} load={load()}", flush=True)
    proc = subprocess.run(cmd, check=False)
    wall = round(time.perf_counter() - start, 1)
    result_path = work / f"{impl}_{rows}.json"
    out = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else {}
    if proc.returncode != 0 or not out:
        out["error"] = f"exit code {proc.returncode}"
    out["process_seconds"] = wall
    return out
