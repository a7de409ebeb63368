"""A Spark standalone dev cluster on 127.0.0.1, started from the pip-installed pyspark.

The pip package ships ``bin/spark-class`` but no ``sbin/start-master.sh``/``start-worker.sh`` and no
``conf/``, so this script launches the daemons itself::

    bin/spark-class org.apache.spark.deploy.master.Master --host 127.0.0.1 --port P --webui-port U
    bin/spark-class org.apache.spark.deploy.worker.Worker spark://127.0.0.1:P --host 127.0.0.1 ...

with ``SPARK_LOCAL_IP=127.0.0.1`` (otherwise Spark may bind another interface) and ``PYSPARK_PYTHON`` set
to the venv interpreter (a driver/executor Python mismatch fails the job). Each daemon runs in its own
session/process group; its pid, group and start time go to ``<state-dir>/cluster.json`` and ``stop`` kills
exactly those groups (which also holds the executor JVMs and Python workers a worker launched), never
anything found by name. Logs: ``<state-dir>/logs/{master,worker-N}.log``; executor stdout/stderr:
``<state-dir>/work/worker-N/<app-id>/<executor-id>/``.

Readiness is read from the master's JSON endpoint ``http://127.0.0.1:<webui-port>/json/`` (the master web
UI is on, bound to 127.0.0.1: this is a dev cluster; submitted applications run with their UI and event
log off). ``start`` returns once every worker is registered ALIVE and prints the measured start-up time
(on a 2-core VM: master answering after ~3.5 s, both workers registered ~7.5-9 s after ``start``).

Usage (from the repo root, with the venv's Python)::

    .venv/bin/python scripts/local_cluster.py start                 # master :7077, 2 workers x 1 core x 1g
    .venv/bin/python scripts/local_cluster.py start --workers 2 --worker-cores 1 --worker-memory 1g \
        --master-port auto --state-dir /tmp/ctdc-cluster
    .venv/bin/python scripts/local_cluster.py status
    .venv/bin/python scripts/local_cluster.py submit -- jobs/run_pipeline.py --config conf/cluster.yaml \
        --set input.path=$PWD/data/sample/ctdc_sample.csv --set output.root=$PWD/output/cluster
    .venv/bin/python scripts/local_cluster.py stop

``submit`` runs the venv's ``bin/spark-submit --master spark://127.0.0.1:<port> --deploy-mode client
--packages io.delta:delta-spark_4.1_2.13:4.3.1`` with the two Delta confs, ``spark.ui.enabled=false``,
``spark.eventLog.enabled=false``, ``spark.pyspark.python``/``driver.python`` = the venv interpreter,
``conf/log4j2-cluster.properties`` (WARN) for driver and executors (``--spark-info-logs`` keeps INFO: at
INFO, Delta logs snapshot column statistics, i.e. data values) and
``--py-files <state-dir>/dist/ctdc_spark.zip``: a zip of the ``ctdc_spark`` package rebuilt on every
submit by ``scripts/build_pyfiles.py`` (a plain, reproducible zip rather than a wheel, so no build backend
or network is needed; the native deps come from the venv). Arguments after ``--`` are appended, so they
may start with more spark-submit options (``--conf k=v``) before the application file. Paths given to the
job must be absolute or relative to the cwd of ``submit``; output must be somewhere the executors can
write (on one host any local path works).

As a library (tests)::

    from local_cluster import LocalCluster          # with scripts/ on sys.path
    with LocalCluster(state_dir, workers=2, master_port=0) as cluster:
        cluster.submit(["tests/ops/ops_fault_job.py", "--out", "/tmp/out.json"])

Exit codes: 0 ok; 1 start-up failed or timed out (log tails are printed; every process started is stopped);
``submit`` returns spark-submit's own exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from ctdc_spark.session import DELTA_CONF, DELTA_PACKAGE

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".cluster"
HOST = "127.0.0.1"
DEFAULT_MASTER_PORT = 7077
# Submitted applications never expose a UI or write an event log: both can show data values
# (docs/reliability.md section 3.6).
APP_CONFS = {
    "spark.ui.enabled": "false",
    "spark.eventLog.enabled": "false",
}
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STATE_FILE = "cluster.json"
# WARN-level log4j2 config for submitted apps: spark-submit's default INFO level lets Delta print snapshot
# column statistics (data values) into the driver log.
LOG4J2_CONF = REPO_ROOT / "conf" / "log4j2-cluster.properties"


class ClusterError(RuntimeError):
    """The cluster could not be started, found or stopped."""


@dataclass
class ProcessRecord:
    """One daemon this script started: enough to find it again, and nothing else."""

    role: str
    pid: int
    pgid: int
    starttime: int
    log: str
    webui_port: int
    port: int


@dataclass
class ClusterState:
    """What ``cluster.json`` holds."""

    master_url: str
    master_port: int
    master_webui_port: int
    python: str
    spark_home: str
    state_dir: str
    workers: int
    worker_cores: int
    worker_memory: str
    processes: list[ProcessRecord] = field(default_factory=list)
    master_ready_seconds: float | None = None
    startup_seconds: float | None = None

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        data = json.loads(path.read_text(encoding="utf-8"))
        procs = [ProcessRecord(**p) for p in data.pop("processes", [])]
        return cls(**data, processes=procs)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


# --------------------------------------------------------------------------------------- processes


def _read_stat(pid: int) -> tuple[int, int, int, int] | None:
    """``(ppid, pgrp, session, starttime)`` of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is already dead
        return None
    return int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])


def _group_members(pgid: int) -> list[int]:
    """Live pids whose process group *and* session are ``pgid`` (sessions we created with setsid)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        st = _read_stat(int(entry.name))
        if st is not None and st[1] == pgid and st[2] == pgid:
            members.append(int(entry.name))
    return members


def _is_ours(rec: ProcessRecord) -> bool:
    """True while the recorded leader is alive *and* is the same process (pid reuse guard)."""
    st = _read_stat(rec.pid)
    return st is not None and st[3] == rec.starttime


def _stop_record(rec: ProcessRecord, timeout: float = 15.0) -> None:
    """SIGTERM the group of one recorded daemon, then SIGKILL whatever is left of it."""
    if _is_ours(rec):
        targets = "group"
    elif _group_members(rec.pgid):
        # Leader gone but its children (e.g. executors) linger in the session we created.
        targets = "members"
    else:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if targets == "group" and _is_ours(rec):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(rec.pgid, sig)
        else:
            for pid in _group_members(rec.pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _group_members(rec.pgid):
                return
            time.sleep(0.2)
        targets = "members"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
        return False


def _port_arg(value: str | int | None, default: int | None) -> int:
    """``auto``/``0``/None -> a free port; otherwise the number (default when None)."""
    if value is None:
        value = default if default is not None else 0
    if isinstance(value, str):
        value = 0 if value == "auto" else int(value)
    return _free_port() if value == 0 else value


def _spark_home(python: str) -> Path:
    env_home = os.environ.get("SPARK_HOME")
    if env_home and (Path(env_home) / "bin" / "spark-class").is_file():
        return Path(env_home)
    out = subprocess.run(
        [python, "-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
        check=True,
        capture_output=True,
        text=True,
    )
    home = Path(out.stdout.strip())
    if not (home / "bin" / "spark-class").is_file():
        raise ClusterError(f"no bin/spark-class under {home}; is pyspark installed for {python}?")
    return home


def _tail(path: str | Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _load_build_pyfiles() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_pyfiles", Path(__file__).with_name("build_pyfiles.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------- cluster


class LocalCluster:
    """Start/stop a standalone master and N workers; a context manager that always stops what it started.

    Args:
        state_dir: where ``cluster.json``, ``logs/``, ``work/`` and ``dist/`` live (created if missing).
        workers: number of worker daemons (each its own JVM on 127.0.0.1).
        worker_cores: cores each worker offers (executors get all of them by default).
        worker_memory: memory each worker offers, e.g. ``1g``; must be >= ``spark.executor.memory``
            (default 1g) or no executor is ever launched.
        master_port: ``7077`` by default; ``0``/``"auto"`` picks a free port.
        master_webui_port: ``0``/``"auto"`` (default) picks a free port.
        python: interpreter for drivers and executors (default: this one).
        timeout: seconds to wait for the master and all workers.
    """

    def __init__(
        self,
        state_dir: str | Path = DEFAULT_STATE_DIR,
        *,
        workers: int = 2,
        worker_cores: int = 1,
        worker_memory: str = "1g",
        master_port: int | str | None = DEFAULT_MASTER_PORT,
        master_webui_port: int | str | None = 0,
        python: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.state_dir = Path(state_dir).resolve()
        self.workers = workers
        self.worker_cores = worker_cores
        self.worker_memory = worker_memory
        self._master_port_arg = master_port
        self._webui_port_arg = master_webui_port
        self.python = python or sys.executable
        self.timeout = timeout
        self.state: ClusterState | None = None

    # -- properties
    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def master_url(self) -> str:
        if self.state is None:
            raise ClusterError("cluster not started")
        return self.state.master_url

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def worker_logs(self) -> list[Path]:
        """Daemon logs of the workers (executor losses are reported there)."""
        return sorted(self.log_dir.glob("worker-*.log"))

    # -- environment
    def daemon_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for daemons and spark-submit: loopback only, the venv's Python, no stray conf."""
        env = dict(os.environ if base is None else base)
        env.update(
            {
                "SPARK_LOCAL_IP": HOST,
                "PYSPARK_PYTHON": self.python,
                "PYSPARK_DRIVER_PYTHON": self.python,
            }
        )
        env.pop("SPARK_CONF_DIR", None)  # an unrelated conf dir would change the daemons' settings
        spark_home = self.state.spark_home if self.state else str(_spark_home(self.python))
        env["SPARK_HOME"] = spark_home
        return env

    # -- lifecycle
    def start(self) -> ClusterState:
        """Start the master, then the workers; wait until every worker is registered ALIVE."""
        if self.state_file.exists():
            existing = ClusterState.load(self.state_file)
            if any(_is_ours(p) for p in existing.processes):
                raise ClusterError(
                    f"a cluster from {self.state_file} is still running ({existing.master_url}); "
                    "run `stop` first or use another --state-dir."
                )
            self.state_file.unlink()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        spark_home = _spark_home(self.python)
        master_port = _port_arg(self._master_port_arg, DEFAULT_MASTER_PORT)
        webui_port = _port_arg(self._webui_port_arg, 0)
        for what, port in (("master", master_port), ("master web UI", webui_port)):
            # Spark would silently move to the next port, and our workers would join whatever listens here.
            if _port_in_use(port):
                raise ClusterError(f"{what} port {port} is in use; pass another port or `auto`.")
        self.state = ClusterState(
            master_url=f"spark://{HOST}:{master_port}",
            master_port=master_port,
            master_webui_port=webui_port,
            python=self.python,
            spark_home=str(spark_home),
            state_dir=str(self.state_dir),
            workers=self.workers,
            worker_cores=self.worker_cores,
            worker_memory=self.worker_memory,
        )
        t0 = time.monotonic()
        try:
            self._launch(
                "master",
                [MASTER_CLASS, "--host", HOST, "--port", str(master_port), "--webui-port", str(webui_port)],
                port=master_port,
                webui_port=webui_port,
            )
            self._wait(lambda info: info.get("status") == "ALIVE", "the master to come up")
            self.state.master_ready_seconds = round(time.monotonic() - t0, 2)
            for i in range(1, self.workers + 1):
                work_dir = self.state_dir / "work" / f"worker-{i}"
                work_dir.mkdir(parents=True, exist_ok=True)
                port, ui = _free_port(), _free_port()
                self._launch(
                    f"worker-{i}",
                    [
                        WORKER_CLASS,
                        self.state.master_url,
                        "--host",
                        HOST,
                        "--port",
                        str(port),
                        "--webui-port",
                        str(ui),
                        "--cores",
                        str(self.worker_cores),
                        "--memory",
                        self.worker_memory,
                        "--work-dir",
                        str(work_dir),
                    ],
                    port=port,
                    webui_port=ui,
                )
            self._wait(
                lambda info: _alive_workers(info) >= self.workers,
                f"{self.workers} worker(s) to register",
            )
            self.state.startup_seconds = round(time.monotonic() - t0, 2)
            self.state.save(self.state_file)
        except BaseException:
            self.stop()
            raise
        return self.state

    def _launch(self, role: str, args: list[str], *, port: int, webui_port: int) -> None:
        assert self.state is not None
        log = self.log_dir / f"{role}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(Path(self.state.spark_home) / "bin" / "spark-class"), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.daemon_env(),
                cwd=self.state_dir,
                start_new_session=True,  # own session + process group: stop() kills exactly this tree
            )
        st = _read_stat(proc.pid)
        if st is None:
            raise ClusterError(f"{role} exited immediately; log {log}:\n{_tail(log)}")
        self.state.processes.append(
            ProcessRecord(
                role=role,
                pid=proc.pid,
                pgid=proc.pid,
                starttime=st[3],
                log=str(log),
                webui_port=webui_port,
                port=port,
            )
        )
        # Record before waiting, so a crash of this script still leaves a state file `stop` can use.
        self.state.save(self.state_file)

    def master_info(self, timeout: float = 2.0) -> dict[str, Any]:
        """The master's ``/json/`` document (status, workers, applications)."""
        assert self.state is not None
        url = f"http://{HOST}:{self.state.master_webui_port}/json/"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data: dict[str, Any] = json.load(resp)
            return data

    def _wait(self, ready: Any, what: str) -> None:
        assert self.state is not None
        deadline = time.monotonic() + self.timeout
        while True:
            for rec in self.state.processes:
                if not _is_ours(rec):
                    raise ClusterError(
                        f"{rec.role} exited while waiting for {what}; log {rec.log}:\n{_tail(rec.log)}"
                    )
            info: dict[str, Any] | None = None
            with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
                info = self.master_info()
            if info is not None:
                if info.get("url") not in (None, self.state.master_url):
                    raise ClusterError(
                        f"port {self.state.master_webui_port} serves another master ({info.get('url')}), "
                        f"not {self.state.master_url}"
                    )
                if ready(info):
                    return
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {r.log}\n{_tail(r.log, 10)}" for r in self.state.processes)
                raise ClusterError(f"timed out after {self.timeout:.0f}s waiting for {what}\n{tails}")
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop exactly the processes recorded for this cluster (workers first), then forget them."""
        state = self.state
        if state is None and self.state_file.exists():
            state = ClusterState.load(self.state_file)
        if state is None:
            return
        for rec in reversed(state.processes):
            _stop_record(rec)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        self.state = None

    @classmethod
    def attach(cls, state_dir: str | Path = DEFAULT_STATE_DIR) -> LocalCluster:
        """A handle on a cluster started earlier (by another process) from its state file."""
        state_file = Path(state_dir).resolve() / STATE_FILE
        if not state_file.exists():
            raise ClusterError(f"no cluster state at {state_file}; run `start` first.")
        state = ClusterState.load(state_file)
        cluster = cls(
            state.state_dir,
            workers=state.workers,
            worker_cores=state.worker_cores,
            worker_memory=state.worker_memory,
            python=state.python,
        )
        cluster.state = state
        return cluster

    def status(self) -> dict[str, Any]:
        """Processes (alive or not) and the master's view of workers and applications."""
        assert self.state is not None
        report: dict[str, Any] = {
            "master_url": self.state.master_url,
            "master_webui": f"http://{HOST}:{self.state.master_webui_port}/",
            "startup_seconds": self.state.startup_seconds,
            "processes": [{"role": p.role, "pid": p.pid, "alive": _is_ours(p)} for p in self.state.processes],
        }
        try:
            info = self.master_info()
            report["master_status"] = info.get("status")
            report["alive_workers"] = _alive_workers(info)
            report["active_apps"] = len(info.get("activeapps", []))
        except (OSError, ValueError) as exc:
            report["master_status"] = f"unreachable ({type(exc).__name__})"
        return report

    # -- submit
    def build_pyfiles(self) -> Path:
        """Rebuild ``<state-dir>/dist/ctdc_spark.zip`` from the working tree."""
        return Path(
            _load_build_pyfiles().build_pyfiles_zip(self.state_dir / "dist" / "ctdc_spark.zip", REPO_ROOT)
        )

    def submit_command(
        self,
        app_args: Sequence[str],
        *,
        delta: bool = True,
        py_files: Path | None = None,
        quiet_logs: bool = True,
    ) -> list[str]:
        """The full spark-submit command line for ``app_args`` (see the module docstring)."""
        assert self.state is not None
        cmd = [
            str(Path(self.state.spark_home) / "bin" / "spark-submit"),
            "--master",
            self.state.master_url,
            "--deploy-mode",
            "client",
        ]
        confs = dict(APP_CONFS)
        confs["spark.pyspark.python"] = self.python
        confs["spark.pyspark.driver.python"] = self.python
        if delta:
            cmd += ["--packages", DELTA_PACKAGE]
            confs.update(DELTA_CONF)
        if quiet_logs and LOG4J2_CONF.is_file():
            java_opt = f"-Dlog4j2.configurationFile=file:{LOG4J2_CONF}"
            confs["spark.driver.extraJavaOptions"] = java_opt
            confs["spark.executor.extraJavaOptions"] = java_opt
        for key, value in confs.items():
            cmd += ["--conf", f"{key}={value}"]
        if py_files is not None:
            cmd += ["--py-files", str(py_files)]
        return [*cmd, *app_args]

    def submit(
        self,
        app_args: Sequence[str],
        *,
        delta: bool = True,
        quiet_logs: bool = True,
        stdout: Any = None,
        stderr: Any = None,
        timeout: float | None = None,
        cwd: str | Path | None = None,
    ) -> int:
        """Run spark-submit against this cluster and return its exit code."""
        cmd = self.submit_command(app_args, delta=delta, py_files=self.build_pyfiles(), quiet_logs=quiet_logs)
        return subprocess.run(
            cmd, env=self.daemon_env(), stdout=stdout, stderr=stderr, timeout=timeout, cwd=cwd, check=False
        ).returncode

    # -- context manager
    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _alive_workers(info: Mapping[str, Any]) -> int:
    return sum(1 for w in info.get("workers", []) if w.get("state") == "ALIVE")


@contextlib.contextmanager
def local_cluster(state_dir: str | Path = DEFAULT_STATE_DIR, **kwargs: Any) -> Iterator[LocalCluster]:
    """Functional spelling of ``with LocalCluster(...) as cluster``."""
    with LocalCluster(state_dir, **kwargs) as cluster:
        yield cluster


# --------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="local_cluster.py",
        description="Spark standalone dev cluster on 127.0.0.1 (see module docstring).",
    )
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="default: <repo>/.cluster")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a master and N workers; wait until all are registered")
    start.add_argument("--workers", type=int, default=2)
    start.add_argument("--worker-cores", type=int, default=1)
    start.add_argument("--worker-memory", default="1g")
    start.add_argument(
        "--master-port", default=str(DEFAULT_MASTER_PORT), help="a port, or auto (default 7077)"
    )
    start.add_argument("--webui-port", default="auto", help="master web UI port, or auto (default)")
    start.add_argument("--python", default=sys.executable, help="driver/executor Python (default: this one)")
    start.add_argument("--timeout", type=float, default=120.0)
    sub.add_parser("stop", help="stop exactly the processes recorded in the state file")
    sub.add_parser("status", help="print the cluster's processes and the master's view as JSON")
    submit = sub.add_parser(
        "submit", help="spark-submit to the cluster: submit -- [spark options] app.py [args]"
    )
    submit.add_argument(
        "--no-delta", action="store_true", help="leave out --packages Delta and the Delta confs"
    )
    submit.add_argument(
        "--print-command", action="store_true", help="print the command line before running it"
    )
    submit.add_argument(
        "--spark-info-logs",
        action="store_true",
        help="keep spark-submit's INFO logging (default: conf/log4j2-cluster.properties, WARN)",
    )
    submit.add_argument("app_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "start":
            cluster = LocalCluster(
                args.state_dir,
                workers=args.workers,
                worker_cores=args.worker_cores,
                worker_memory=args.worker_memory,
                master_port=args.master_port,
                master_webui_port=args.webui_port,
                python=args.python,
                timeout=args.timeout,
            )
            state = cluster.start()
            print(
                f"{state.master_url} up: master ready in {state.master_ready_seconds}s, "
                f"{state.workers} worker(s) registered after {state.startup_seconds}s; "
                f"web UI http://{HOST}:{state.master_webui_port}/ ; logs {cluster.log_dir}"
            )
            return 0
        if args.command == "stop":
            state_file = Path(args.state_dir).resolve() / STATE_FILE
            if not state_file.exists():
                print(f"no cluster state at {state_file}; nothing to stop")
                return 0
            LocalCluster.attach(args.state_dir).stop()
            print("stopped")
            return 0
        if args.command == "status":
            print(json.dumps(LocalCluster.attach(args.state_dir).status(), indent=2))
            return 0
        # submit
        app_args = list(args.app_args)
        if app_args and app_args[0] == "--":
            app_args = app_args[1:]
        if not app_args:
            print("submit needs the application: submit -- jobs/run_pipeline.py [args]", file=sys.stderr)
            return 2
        cluster = LocalCluster.attach(args.state_dir)
        quiet = not args.spark_info_logs
        if args.print_command:
            cmd = cluster.submit_command(
                app_args, delta=not args.no_delta, py_files=Path("<zip>"), quiet_logs=quiet
            )
            print(" ".join(cmd))
        return cluster.submit(app_args, delta=not args.no_delta, quiet_logs=quiet)
    except ClusterError as exc:
        print(f"local_cluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
