"""docker-compose.yml and docker/Dockerfile: wiring checks that need no Docker engine.

Parses the compose file and checks: the four services, one pinned official Spark image matching the
pinned pyspark, the Python deps in the image equal pyproject's, master/worker/pipeline wiring (master URL,
depends_on + healthchecks, shared volumes, same repo mount path), the spark-submit command (Delta package
ctdc_spark.session.DELTA_PACKAGE, Delta confs, UI/event log off, --py-files built by the entrypoint), that
every repo path it runs exists, and that conf/cluster.yaml loads with the compose overrides. Finally runs
``docker-compose -f docker-compose.yml config`` when the ``docker-compose`` binary is installed (Debian/
Ubuntu package ``docker-compose``, v1.29; it validates offline without a Docker engine).

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pytest tests/ops/test_ops_compose.py``
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctdc_spark.config import load_config
from ctdc_spark.session import DELTA_PACKAGE

tomllib = pytest.importorskip("tomllib", reason="needs Python >= 3.11 to read pyproject.toml")

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
SERVICES = {"spark-master", "spark-worker-1", "spark-worker-2", "pipeline"}
WORKERS = ("spark-worker-1", "spark-worker-2")
MASTER_URL = "spark://spark-master:7077"
REPO_MOUNT = "/app"
OUTPUT_VOLUME = "ctdc-output"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _pin(name: str) -> str:
    """Exact version pinned for ``name`` in the ``local`` extra (e.g. pyspark==4.1.1)."""
    for req in _pyproject()["project"]["optional-dependencies"]["local"]:
        m = re.fullmatch(rf"{re.escape(name)}==([\w.]+)", req.replace(" ", ""))
        if m:
            return m.group(1)
    raise AssertionError(f"{name} is not pinned with == in the local extra")


def _expected_image() -> str:
    return f"apache/spark:{_pin('pyspark')}-scala2.13-java17-python3-ubuntu"


def _parse_submit(command: list[str]) -> tuple[dict[str, list[str]], str, list[str]]:
    """Split a spark-submit command into ({option: [values]}, application, application args)."""
    assert command[0].endswith("/spark-submit"), command[0]
    options: dict[str, list[str]] = {}
    i = 1
    while i < len(command) and command[i].startswith("--"):
        options.setdefault(command[i], []).append(command[i + 1])  # every option used here takes a value
        i += 2
    return options, command[i], command[i + 1 :]


def _submit() -> tuple[dict[str, list[str]], str, list[str]]:
    return _parse_submit(_compose()["services"]["pipeline"]["command"])


def _confs(options: dict[str, list[str]]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in options.get("--conf", []))


def _app_option(app_args: list[str], name: str) -> list[str]:
    return [app_args[i + 1] for i, a in enumerate(app_args[:-1]) if a == name]


def _mounts(service: str) -> dict[str, str]:
    """{container path: source} of a service's volumes (short syntax), without the :ro/:rw suffix."""
    mounts = {}
    for spec in _compose()["services"][service].get("volumes", []):
        source, target = spec.split(":")[:2]
        mounts[target] = source
    return mounts


def _referenced_repo_paths() -> list[str]:
    """Repo-relative files the pipeline service runs or reads, taken from the compose file itself."""
    options, app, app_args = _submit()
    paths = [app, *_app_option(app_args, "--config")]
    paths += [s.split("=", 1)[1] for s in _app_option(app_args, "--set") if s.startswith("input.path=")]
    entry = " ".join(_compose()["services"]["pipeline"]["entrypoint"])
    paths += re.findall(r"python3 (\S+\.py)", entry)
    for value in _confs(options).values():
        paths += [m[len(REPO_MOUNT) + 1 :] for m in re.findall(rf"{REPO_MOUNT}/[\w./-]+", value)]
    paths.append(_compose()["services"]["pipeline"]["build"]["dockerfile"])
    return sorted(set(paths))


# ----------------------------------------------------------------------------------------- images


def test_the_four_services_exist() -> None:
    assert set(_compose()["services"]) == SERVICES


def test_every_service_runs_the_pinned_official_spark_image() -> None:
    expected = _expected_image()
    for name, svc in _compose()["services"].items():
        assert svc["build"]["dockerfile"] == "docker/Dockerfile", name
        assert svc["build"]["args"]["SPARK_IMAGE"] == expected, name
        repo, _, tag = svc["image"].partition(":")
        assert repo and tag and tag != "latest", f"{name}: image {svc['image']!r} must carry a fixed tag"
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert f"ARG SPARK_IMAGE={expected}" in text
    assert re.search(r"^FROM \$\{SPARK_IMAGE\}$", text, re.M)


def test_image_installs_exactly_the_project_dependencies() -> None:
    logical_lines = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    pip_lines = [line for line in logical_lines if "pip install" in line]
    assert len(pip_lines) == 1, "expected exactly one pip install in docker/Dockerfile"
    installed = {s.replace(" ", "") for s in re.findall(r'"([^"]+)"', pip_lines[0])}
    wanted = {s.replace(" ", "") for s in _pyproject()["project"]["dependencies"]}
    assert installed == wanted


# ---------------------------------------------------------------------------------------- wiring


def test_master_listens_on_7077_under_its_service_name() -> None:
    svc = _compose()["services"]["spark-master"]
    cmd = svc["command"]
    assert "org.apache.spark.deploy.master.Master" in cmd
    assert cmd[cmd.index("--port") + 1] == "7077"
    assert cmd[cmd.index("--host") + 1] == svc["hostname"] == "spark-master"
    assert "healthcheck" in svc


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_registers_with_the_master(worker: str) -> None:
    svc = _compose()["services"][worker]
    cmd = svc["command"]
    assert "org.apache.spark.deploy.worker.Worker" in cmd
    assert MASTER_URL in cmd
    assert cmd[cmd.index("--host") + 1] == svc["hostname"] == worker  # the healthcheck matches on it
    assert svc["depends_on"]["spark-master"]["condition"] == "service_healthy"
    assert "socket.gethostname()" in svc["healthcheck"]["test"][-1]
    # spark.executor.memory defaults to 1g: a worker offering less would never launch an executor.
    memory = cmd[cmd.index("--memory") + 1]
    assert re.fullmatch(r"\d+g", memory) and int(memory[:-1]) >= 1


def test_pipeline_starts_after_both_workers_registered() -> None:
    depends = _compose()["services"]["pipeline"]["depends_on"]
    assert {w: depends[w]["condition"] for w in WORKERS} == dict.fromkeys(WORKERS, "service_healthy")


@pytest.mark.parametrize("service", ["pipeline", *WORKERS])
def test_repo_and_output_volume_are_mounted_under_the_same_paths(service: str) -> None:
    # The driver resolves relative paths to /app/...; executors must read them under the same name, and
    # write Delta data files where the driver commits the log.
    mounts = _mounts(service)
    assert mounts[REPO_MOUNT] == "."
    assert mounts["/data/output"] == OUTPUT_VOLUME
    assert OUTPUT_VOLUME in _compose()["volumes"]


def test_pipeline_submits_to_the_master_with_delta_and_no_ui() -> None:
    options, app, _ = _submit()
    svc = _compose()["services"]["pipeline"]
    assert options["--master"] == [MASTER_URL]
    assert options["--deploy-mode"] == ["client"]  # spark-submit waits and returns the pipeline's exit code
    assert options["--packages"] == [DELTA_PACKAGE]
    confs = _confs(options)
    assert confs["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert confs["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert confs["spark.ui.enabled"] == "false"
    assert confs["spark.eventLog.enabled"] == "false"
    assert confs["spark.driver.host"] == svc["hostname"]
    # The spark user's home is /nonexistent: Ivy must write to a mounted, writable cache.
    assert _mounts("pipeline")[confs["spark.jars.ivy"]] == "ivy-cache"
    assert svc["working_dir"] == REPO_MOUNT
    # --py-files is the zip the entrypoint builds before exec-ing spark-submit.
    (py_files,) = options["--py-files"]
    entry = svc["entrypoint"]
    assert entry[:2] == ["/bin/sh", "-c"]
    assert f"scripts/build_pyfiles.py --output {py_files} && exec" in entry[2]
    assert app == "jobs/run_pipeline.py"


def test_pipeline_arguments() -> None:
    _, _, app_args = _submit()
    assert _app_option(app_args, "--config") == ["conf/cluster.yaml"]
    sets = dict(s.split("=", 1) for s in _app_option(app_args, "--set"))
    assert sets == {"input.path": "data/sample/ctdc_sample.csv", "output.root": "/data/output"}


@pytest.mark.parametrize("path", _referenced_repo_paths())
def test_every_path_the_pipeline_service_uses_exists_in_the_repo(path: str) -> None:
    assert (REPO / path).is_file(), f"docker-compose.yml uses {path}, which is not in the repository"


def test_cluster_config_loads_with_the_compose_overrides() -> None:
    _, _, app_args = _submit()
    cfg = load_config(REPO / "conf" / "cluster.yaml", overrides=_app_option(app_args, "--set"))
    assert cfg.spark.master is None  # the master comes from spark-submit
    assert cfg.output.root == "/data/output"
    assert cfg.input.path == "data/sample/ctdc_sample.csv"
    assert cfg.spark.conf["spark.ui.enabled"] == "false"
    assert cfg.spark.conf["spark.eventLog.enabled"] == "false"


# ------------------------------------------------------------------------------ docker-compose CLI


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose not installed (apt-get install docker-compose; validates offline, no engine)",
)
def test_docker_compose_config_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert set(rendered["services"]) == SERVICES
    assert rendered["services"]["pipeline"]["depends_on"]["spark-worker-1"]["condition"] == "service_healthy"
