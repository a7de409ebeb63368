"""The benchmarks' CPU meter counts processes that exit unreaped into any parent's time. No Spark.

PySpark's worker daemon ignores SIGCHLD, so a Python worker that exits mid-phase is reaped by the
kernel and its time reaches no parent's ``cutime``; a live-tree snapshot then misses it. Here a
child ignores SIGCHLD the same way and forks a grandchild that burns CPU and exits.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks._bench_util import tree_cpu_seconds

BURN_SECONDS = 3.0
SIGCHLD_IGNORING_PARENT = f"""
import os, signal, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    start = time.process_time()
    while time.process_time() - start < {BURN_SECONDS}:
        pass
    os._exit(0)
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(0.05)
"""


def test_a_worker_reaped_by_the_kernel_still_counts_once() -> None:
    child = subprocess.Popen([sys.executable, "-c", SIGCHLD_IGNORING_PARENT], stdin=subprocess.PIPE)
    start = tree_cpu_seconds(child.pid)
    child.communicate(b"go\n", timeout=120)
    used = tree_cpu_seconds(child.pid) - start

    assert child.returncode == 0
    # The meter rereads the tree every 0.5 s: an exiting process loses at most that much. The
    # parent's own time (polling) is small, and nothing is counted twice.
    assert BURN_SECONDS - 0.6 <= used <= BURN_SECONDS + 0.6
