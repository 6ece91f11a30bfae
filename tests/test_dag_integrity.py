"""DAG policy: every DAG in dags/ parses, and follows the platform's conventions.

The DAGs are parsed with Airflow's own ``DagBag`` (as the dag-processor does), in a
throw-away ``AIRFLOW_HOME``. The DAG ids for parametrisation are read statically from the
files (no Airflow import at collection time); ``test_parametrisation_covers_every_dag``
guarantees that list matches what the DagBag found.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from readiness.airflow_local import DAGS_FOLDER, airflow_env
from readiness.settings import load_settings

DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))

# Engines and jobs must be imported inside tasks, never when the dag-processor parses a file.
HEAVY_MODULES = ("pyspark", "delta", "great_expectations", "kafka", "pandas", "readiness.pipeline")


def _dag_calls(path: Path) -> dict[str, ast.Call]:
    """``dag_id -> DAG(...) / @dag(...) call`` for the DAGs a file defines, found without importing it."""
    calls: dict[str, ast.Call] = {}
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):  # @dag(...) def my_dag(): ...
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "id", getattr(deco.func, "attr", "")) == "dag":
                    kw = {k.arg: k.value for k in deco.keywords}
                    dag_id = kw["dag_id"].value if isinstance(kw.get("dag_id"), ast.Constant) else node.name
                    calls[dag_id] = deco
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "DAG":
            kw = {k.arg: k.value for k in node.keywords}
            first = kw.get("dag_id") or (node.args[0] if node.args else None)
            if isinstance(first, ast.Constant):
                calls[first.value] = node
    return calls


DAG_SOURCES = {dag_id: (path, call) for path in DAG_FILES for dag_id, call in _dag_calls(path).items()}
DAG_IDS = sorted(DAG_SOURCES)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    """Airflow's DagBag over dags/, parsed in a temporary AIRFLOW_HOME."""
    var_dir = tmp_path_factory.mktemp("dagbag-var")
    env = airflow_env(load_settings(var_dir=var_dir))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            if key.startswith(("AIRFLOW", "READINESS_")):
                mp.setenv(key, value)
        from airflow.models.dagbag import DagBag

        yield DagBag(dag_folder=str(DAGS_FOLDER), include_examples=False)


def test_dags_folder_has_dags():
    assert DAG_FILES, f"no DAG files in {DAGS_FOLDER}"
    assert "readiness_period_pipeline" in DAG_IDS


def test_no_import_errors(dagbag):
    errors = "\n".join(f"{path}:\n{err}" for path, err in dagbag.import_errors.items())
    assert not dagbag.import_errors, f"DAG import errors:\n{errors}"


def test_parametrisation_covers_every_dag(dagbag):
    assert sorted(dagbag.dag_ids) == DAG_IDS


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_imports_at_parse_time(path):
    """Module-level imports of a DAG file stay light; jobs are imported inside the tasks."""
    tree = ast.parse(path.read_text())
    heavy = []
    for node in tree.body:  # top level only; imports inside functions are what we want
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        heavy += [n for n in names if n.split(".")[0] in HEAVY_MODULES or n.startswith(HEAVY_MODULES)]
    assert not heavy, f"{path.name} imports {heavy} at module level"


@pytest.mark.parametrize("dag_id", DAG_IDS)
class TestDagPolicy:
    def test_imports(self, dagbag, dag_id):
        assert dag_id in dagbag.dags, f"{dag_id} did not load: {dict(dagbag.import_errors)}"

    def test_retries_at_least_two(self, dagbag, dag_id):
        dag = dagbag.dags[dag_id]
        low = {t.task_id: t.retries for t in dag.tasks if (t.retries or 0) < 2}
        assert not low, f"{dag_id}: tasks with retries < 2: {low}"

    def test_catchup_explicitly_false(self, dagbag, dag_id):
        path, call = DAG_SOURCES[dag_id]
        kw = {k.arg: k.value for k in call.keywords}
        assert "catchup" in kw, f"{dag_id} ({path.name}) must pass catchup=False explicitly"
        assert isinstance(kw["catchup"], ast.Constant) and kw["catchup"].value is False
        assert dagbag.dags[dag_id].catchup is False

    def test_tags(self, dagbag, dag_id):
        assert dagbag.dags[dag_id].tags, f"{dag_id} has no tags"

    def test_owner(self, dagbag, dag_id):
        dag = dagbag.dags[dag_id]
        assert dag.default_args.get("owner"), f"{dag_id}: default_args has no owner"
        unowned = [t.task_id for t in dag.tasks if not t.owner or t.owner == "airflow"]
        assert not unowned, f"{dag_id}: tasks without an owner (or the default 'airflow'): {unowned}"

    def test_one_active_run(self, dagbag, dag_id):
        assert dagbag.dags[dag_id].max_active_runs == 1

    def test_documented(self, dagbag, dag_id):
        doc = dagbag.dags[dag_id].doc_md
        assert doc and doc.strip(), f"{dag_id} has no doc_md"


class TestReadinessPeriodPipeline:
    DAG_ID = "readiness_period_pipeline"

    @pytest.fixture()
    def dag(self, dagbag):
        return dagbag.dags[self.DAG_ID]

    def test_tasks_and_dependencies(self, dag):
        assert set(dag.task_ids) == {"ingest_reports", "validate_batch", "publish_tables"}
        edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
        assert edges == {("ingest_reports", "validate_batch"), ("validate_batch", "publish_tables")}

    def test_each_task_returns_its_counts_as_one_xcom(self, dag):
        assert all(t.multiple_outputs is False for t in dag.tasks)

    def test_manual_trigger_only_for_now(self, dag):
        assert dag.timetable.summary == "None"

    def test_period_id_param(self, dag):
        from airflow.exceptions import ParamValidationError

        param = dag.params.get_param("period_id")
        for ok in ("2025", "2025Q1", "2025Q4", "2025S1", "2025S2"):
            assert param.resolve(ok) == ok
        for bad in ("2025Q5", "2025S3", "25Q1", "2025q1", "2025-Q1", "2025Q1 ", ""):
            with pytest.raises(ParamValidationError):
                param.resolve(bad)

    def test_period_reaches_the_tasks(self, dag):
        """validate_batch and publish_tables get the run's period_id through a template."""
        for task_id in ("validate_batch", "publish_tables"):
            op_args = dag.get_task(task_id).op_args
            assert op_args == ["{{ params.period_id }}"] or list(op_args) == ["{{ params.period_id }}"]
        assert not dag.get_task("ingest_reports").op_args
