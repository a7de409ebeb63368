"""Scheduler examples: deploy/airflow/ctdc_refresh_dag.py and deploy/databricks/ctdc_refresh_job.json.

Airflow is not installed: the DAG is read with ``ast`` and its module-level constants are resolved by a tiny
evaluator (``CTDC_SPARK_HOME`` stands for the checkout). The Databricks job is checked against the shape of
a Jobs API 2.1 ``jobs/create`` payload (known keys only, one task type per task). Both must run
``jobs/run_pipeline.py`` with ``conf/cluster.yaml`` (files that exist here), pass ``--run-id`` derived from
the schedule, allow one run at a time and retry.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pytest tests/ops/test_ops_scheduler.py``
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from ctdc_spark.session import DELTA_CONF, DELTA_PACKAGE

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "deploy" / "airflow" / "ctdc_refresh_dag.py"
JOB_FILE = REPO / "deploy" / "databricks" / "ctdc_refresh_job.json"
HOME = "<CTDC_SPARK_HOME>"


# ------------------------------------------------------------------------------------------ Airflow


class _Unresolved:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<{self.text}>"


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    """Evaluate the literal subset the DAG uses; anything else becomes an _Unresolved placeholder."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env.get(node.id, _Unresolved(node.id))
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            inner = _eval(value.value, env) if isinstance(value, ast.FormattedValue) else _eval(value, env)
            parts.append(str(inner))
        return "".join(parts)
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, env) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _eval(k, env): _eval(v, env) for k, v in zip(node.keys, node.values, strict=True) if k is not None
        }
    if isinstance(node, ast.Call):
        return _Unresolved(ast.unparse(node))
    return _Unresolved(ast.unparse(node))


def _dag_module() -> tuple[ast.Module, dict[str, Any]]:
    tree = ast.parse(DAG_FILE.read_text(encoding="utf-8"))
    env: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            env[name] = HOME if name == "CTDC_SPARK_HOME" else _eval(stmt.value, env)
    return tree, env


def _calls(name: str) -> list[dict[str, Any]]:
    tree, env = _dag_module()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
            found.append({kw.arg: _eval(kw.value, env) for kw in node.keywords if kw.arg})
    return found


def _repo_path(value: str) -> Path:
    assert value.startswith(HOME + "/"), f"{value!r} should be under CTDC_SPARK_HOME"
    return REPO / value[len(HOME) + 1 :]


def test_dag_imports_only_airflow_and_the_standard_library() -> None:
    tree, _ = _dag_module()
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    # Importing ctdc_spark or pyspark would make the DAG fail to parse on Airflow schedulers.
    assert roots <= {"__future__", "os", "datetime", "pendulum", "airflow"}


def test_dag_allows_one_run_at_a_time_and_retries() -> None:
    (dag,) = _calls("DAG")
    assert dag["max_active_runs"] == 1
    assert dag["catchup"] is False
    assert dag["schedule"]
    assert dag["default_args"]["retries"] >= 1


def test_dag_submits_the_pipeline_with_delta_and_a_run_id_from_the_data_interval() -> None:
    (op,) = _calls("SparkSubmitOperator")
    application = op["application"]
    assert application == f"{HOME}/jobs/run_pipeline.py"  # existence: test_referenced_file_exists
    args = op["application_args"]
    config = args[args.index("--config") + 1]
    assert _repo_path(config) == REPO / "conf" / "cluster.yaml"
    assert _repo_path(config).is_file()
    run_id = args[args.index("--run-id") + 1]
    assert "data_interval_start" in run_id and run_id.startswith("{{") and run_id.endswith("}}")
    assert "%Y%m%dT%H%M%SZ" in run_id  # sortable, path-safe, UTC
    sets = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--set"]
    assert sorted(s.split("=", 1)[0] for s in sets) == ["input.path", "output.root"]
    assert op["packages"] == DELTA_PACKAGE
    assert op["conf"].items() >= DELTA_CONF.items()
    assert op["conf"]["spark.ui.enabled"] == "false"
    assert op["conf"]["spark.eventLog.enabled"] == "false"
    assert op["deploy_mode"] == "client"  # waits for the driver: the task state is the pipeline's exit code
    assert op["py_files"] == f"{HOME}/dist/ctdc_spark.zip"
    log4j = op["conf"]["spark.driver.extraJavaOptions"].split("file:", 1)[1]
    assert _repo_path(log4j).is_file()


def test_dag_docstring_names_the_zip_builder_that_exists() -> None:
    doc = ast.get_docstring(_dag_module()[0]) or ""
    assert "scripts/build_pyfiles.py" in doc
    assert (REPO / "scripts" / "build_pyfiles.py").is_file()


# --------------------------------------------------------------------------------------- Databricks

# Top-level fields of a Jobs API 2.1 jobs/create request and the task fields used by job tasks.
JOB_FIELDS = {
    "name", "description", "tags", "tasks", "job_clusters", "email_notifications", "webhook_notifications",
    "notification_settings", "timeout_seconds", "health", "schedule", "trigger", "continuous",
    "max_concurrent_runs", "git_source", "format", "queue", "parameters", "run_as", "edit_mode",
    "deployment", "environments", "access_control_list", "budget_policy_id", "performance_target",
}  # fmt: skip
TASK_TYPES = {
    "notebook_task", "spark_jar_task", "spark_python_task", "spark_submit_task", "python_wheel_task",
    "sql_task", "dbt_task", "run_job_task", "pipeline_task", "condition_task", "for_each_task",
}  # fmt: skip
TASK_FIELDS = TASK_TYPES | {
    "task_key", "description", "depends_on", "run_if", "existing_cluster_id", "new_cluster",
    "job_cluster_key", "environment_key", "libraries", "max_retries", "min_retry_interval_millis",
    "retry_on_timeout", "timeout_seconds", "email_notifications", "webhook_notifications",
    "notification_settings", "health", "disable_auto_optimization",
}  # fmt: skip


def _job() -> dict[str, Any]:
    data = json.loads(JOB_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _task() -> dict[str, Any]:
    (task,) = _job()["tasks"]
    return task  # type: ignore[no-any-return]


def test_job_uses_only_jobs_api_fields() -> None:
    job = _job()
    assert set(job) <= JOB_FIELDS, set(job) - JOB_FIELDS
    assert job["name"] and job["tasks"]
    for task in job["tasks"]:
        assert set(task) <= TASK_FIELDS, set(task) - TASK_FIELDS
        assert len(TASK_TYPES & set(task)) == 1
        assert task["job_cluster_key"] in {c["job_cluster_key"] for c in job["job_clusters"]}
    assert re.fullmatch(r"\S+ \S+ \S+ \S+ \S+ \S+( \S+)?", job["schedule"]["quartz_cron_expression"])
    assert job["schedule"]["timezone_id"] == "UTC"


def test_job_allows_one_run_at_a_time_and_retries() -> None:
    assert _job()["max_concurrent_runs"] == 1
    assert _task()["max_retries"] >= 1


def test_job_runs_the_pipeline_from_git_with_a_run_id_from_the_trigger() -> None:
    job, task = _job(), _task()
    spt = task["spark_python_task"]
    assert spt["source"] == "GIT" and job["git_source"]["git_url"]
    assert spt["python_file"] == "jobs/run_pipeline.py"  # existence: test_referenced_file_exists
    params = spt["parameters"]
    # Databricks Runtime 14+ runs a Python script with its own directory as the working directory.
    script_dir = PurePosixPath(spt["python_file"]).parent
    config = (REPO / script_dir / params[params.index("--config") + 1]).resolve()
    assert config == REPO / "conf" / "cluster.yaml"
    assert config.is_file()
    assert params[params.index("--run-id") + 1] == "{{job.parameters.run_id}}"
    defaults = {p["name"]: p["default"] for p in job["parameters"]}
    assert defaults["run_id"] == "{{job.trigger.time.iso_date}}"
    for ref in re.findall(r"\{\{job\.parameters\.(\w+)\}\}", " ".join(params)):
        assert ref in defaults, f"task references undefined job parameter {ref}"


def test_job_relies_on_the_runtime_delta_and_ships_the_package_as_a_wheel() -> None:
    task, job = _task(), _job()
    # Delta is preinstalled on Databricks Runtime: no Maven coordinates, no Delta session confs.
    cluster = job["job_clusters"][0]["new_cluster"]
    spark_conf = cluster.get("spark_conf", {})
    assert not any(k.startswith(("spark.jars", "spark.sql.extensions")) for k in spark_conf)
    assert "--packages" not in task["spark_python_task"]["parameters"]
    (lib,) = task["libraries"]
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version
    assert lib["whl"].endswith(f"/ctdc_spark-{version.group(1)}-py3-none-any.whl")
    assert cluster["spark_version"].endswith("-scala2.13")
    assert "spark.master" not in cluster.get("spark_conf", {})


def test_job_documents_the_idempotency_token() -> None:
    description = _job()["description"]
    assert "idempotency_token" in description and "run-now" in description


def _referenced_files() -> list[tuple[str, str]]:
    (op,) = _calls("SparkSubmitOperator")
    airflow = [op["application"], *[a for a in op["application_args"] if str(a).startswith(HOME + "/")]]
    spt = _task()["spark_python_task"]
    return [("airflow", a[len(HOME) + 1 :]) for a in airflow] + [("databricks", spt["python_file"])]


@pytest.mark.parametrize(("scheduler", "path"), _referenced_files())
def test_referenced_file_exists(scheduler: str, path: str) -> None:
    assert (REPO / path).is_file(), f"the {scheduler} example runs {path}, which is not in the repository"


@pytest.mark.parametrize("path", [DAG_FILE, JOB_FILE], ids=["airflow", "databricks"])
def test_examples_carry_no_credentials(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"dapi[0-9a-f]{32}", text)  # Databricks personal access token
    assert not re.search(r"(?i)(password|secret)\s*[=:]", text)
