"""DAG policy: every DAG in dags/ parses, and follows the platform's conventions.

The policy, enforced on every DAG file: no import errors and no heavy import at parse time
(checked statically and in a fresh interpreter), ``catchup`` passed explicitly (False), tags,
an owner on every task, ``max_active_runs=1``, retries >= 2 with a delay of at least a minute,
the failure alert (``readiness.orchestration.alerts.task_failure_callback``) on every task, a Markdown
``doc_md``, one XCom per task, and a final ``record_run`` teardown task that writes the run's
row to ``ops_pipeline_runs``.

The DAGs are parsed with Airflow's own ``DagBag`` (as the dag-processor does), in a
throw-away ``AIRFLOW_HOME``. The DAG ids for parametrisation are read statically from the
files (no Airflow import at collection time); ``test_parametrisation_covers_every_dag``
guarantees that list matches what the DagBag found.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from readiness.dev.airflow import DAGS_FOLDER, airflow_env
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
    assert {"readiness_period_pipeline", "readiness_ingest", "readiness_refresh_changed", "readiness_period_close",
            "readiness_reprocess"} <= set(DAG_IDS)


def test_one_dag_per_file():
    per_file = {path.name: sorted(_dag_calls(path)) for path in DAG_FILES}
    assert all(len(ids) == 1 for ids in per_file.values()), per_file


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


PARSE_PROBE = """
import json, sys
from airflow.models.dagbag import DagBag

heavy = {heavy}
result = {{}}
for path in sys.argv[1:]:
    bag = DagBag(dag_folder=path, include_examples=False)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy or m.startswith("readiness.pipeline"))
    result[path] = {{"dags": sorted(bag.dag_ids), "errors": list(bag.import_errors), "heavy": loaded}}
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def parsed_one_by_one(tmp_path_factory):
    """Each DAG file parsed in turn by a fresh interpreter, as the dag-processor does, with the
    engine modules loaded after each (the first file that pulls one in is the culprit)."""
    tmp = tmp_path_factory.mktemp("parse-probe")
    env = airflow_env(load_settings(var_dir=tmp))
    probe = PARSE_PROBE.format(heavy=repr({m for m in HEAVY_MODULES if "." not in m}))
    out = subprocess.run([sys.executable, "-c", probe, *map(str, DAG_FILES)], env=env, cwd=tmp,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_loads_no_engine(path, parsed_one_by_one):
    """What the dag-processor imports when it parses a file: no Spark, Delta, GX, Kafka client, pandas."""
    result = parsed_one_by_one[str(path)]
    assert result["dags"] and not result["errors"]
    assert result["heavy"] == [], f"parsing {path.name} imported {result['heavy'][:10]}"


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
        assert doc.lstrip().startswith("# "), f"{dag_id}: doc_md should be Markdown with a title"
        assert dagbag.dags[dag_id].description, f"{dag_id} has no description"

    def test_retries_wait_between_attempts(self, dagbag, dag_id):
        dag = dagbag.dags[dag_id]
        short = {t.task_id: t.retry_delay for t in dag.tasks if t.retry_delay < timedelta(minutes=1)}
        assert not short, f"{dag_id}: retry_delay under a minute: {short}"

    def test_failure_alert_on_every_task(self, dagbag, dag_id):
        from readiness.orchestration.alerts import task_failure_callback

        dag = dagbag.dags[dag_id]
        def callbacks(task) -> list:  # a mapped task keeps the callback as given, not as a list
            value = task.on_failure_callback or []
            return [value] if callable(value) else list(value)

        missing = [t.task_id for t in dag.tasks if task_failure_callback not in callbacks(t)]
        assert not missing, f"{dag_id}: tasks without the webhook failure callback: {missing}"

    def test_execution_timeout(self, dagbag, dag_id):
        dag = dagbag.dags[dag_id]
        missing = [t.task_id for t in dag.tasks if t.execution_timeout is None]
        assert not missing, f"{dag_id}: tasks without an execution_timeout: {missing}"

    def test_each_task_returns_its_result_as_one_xcom(self, dagbag, dag_id):
        dag = dagbag.dags[dag_id]
        assert all(getattr(t, "multiple_outputs", False) is False for t in dag.tasks)

    def test_final_record_run_teardown(self, dagbag, dag_id):
        """Every pipeline DAG ends with record_run, a teardown task downstream of every other task:
        it runs when a task failed, and does not decide the run's state."""
        dag = dagbag.dags[dag_id]
        if "watchdog" in dag.tags:  # it moves no data: a run row every few minutes would only bury the others
            assert "record_run" not in dag.task_ids
            return
        assert "record_run" in dag.task_ids, f"{dag_id} has no record_run task"
        record = dag.get_task("record_run")
        assert record.is_teardown and not record.on_failure_fail_dagrun
        assert not record.downstream_task_ids
        assert record.get_flat_relative_ids(upstream=True) == set(dag.task_ids) - {"record_run"}


class TestReadinessPeriodPipeline:
    DAG_ID = "readiness_period_pipeline"

    @pytest.fixture()
    def dag(self, dagbag):
        return dagbag.dags[self.DAG_ID]

    def test_tasks_and_dependencies(self, dag):
        assert set(dag.task_ids) == {"ingest_reports", "validate_batch", "publish_tables", "record_run"}
        edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
        assert edges == {("ingest_reports", "validate_batch"), ("validate_batch", "publish_tables"),
                         ("publish_tables", "record_run")}

    def test_manual_trigger(self, dag):
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
            assert list(op_args) == ["{{ params.period_id }}"]
        assert not dag.get_task("ingest_reports").op_args


def _edges(dag) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


class TestReadinessIngest:
    def test_every_five_minutes_in_hanoi_time(self, dagbag):
        from airflow.timetables.trigger import CronTriggerTimetable

        dag = dagbag.dags["readiness_ingest"]
        assert isinstance(dag.timetable, CronTriggerTimetable)
        assert dag.timetable.summary == "*/5 * * * *"
        assert str(dag.timetable._timezone.name) == "Asia/Ho_Chi_Minh"

    def test_tasks(self, dagbag):
        dag = dagbag.dags["readiness_ingest"]
        assert _edges(dag) == {("ingest_reports", "announce_bronze"), ("ingest_reports", "check_silence"),
                               ("announce_bronze", "record_run"), ("check_silence", "record_run")}

    def test_only_announce_bronze_emits_the_bronze_asset(self, dagbag):
        dag = dagbag.dags["readiness_ingest"]
        outlets = {t.task_id: [o.name for o in t.outlets] for t in dag.tasks if t.outlets}
        assert outlets == {"announce_bronze": ["bronze_report_events"]}


class TestReadinessRefreshChanged:
    def test_scheduled_on_the_asset_the_ingest_emits(self, dagbag):
        from airflow.sdk import Asset

        dag = dagbag.dags["readiness_refresh_changed"]
        announce = dagbag.dags["readiness_ingest"].get_task("announce_bronze")
        assert dag.timetable.summary == "Asset"
        [asset] = [a for _, a in dag.timetable.asset_condition.iter_assets()]
        assert isinstance(asset, Asset)
        assert (asset.name, asset.uri) == (announce.outlets[0].name, announce.outlets[0].uri)

    def test_one_mapped_refresh_per_period(self, dagbag):
        dag = dagbag.dags["readiness_refresh_changed"]
        assert _edges(dag) == {("find_changed_periods", "refresh_period"), ("refresh_period", "record_run")}
        refresh = dag.get_task("refresh_period")
        assert type(refresh).__name__.endswith("MappedOperator")
        assert refresh.partial_kwargs.get("max_active_tis_per_dagrun") == 1

    def test_periods_param_for_manual_runs(self, dagbag):
        from airflow.exceptions import ParamValidationError

        param = dagbag.dags["readiness_refresh_changed"].params.get_param("periods")
        assert param.resolve(["2026Q3", "2026"]) == ["2026Q3", "2026"]
        with pytest.raises(ParamValidationError):
            param.resolve(["2026Q9"])


class TestReadinessPeriodClose:
    @pytest.fixture()
    def dag(self, dagbag):
        return dagbag.dags["readiness_period_close"]

    def test_daily_at_one_in_hanoi(self, dag):
        from airflow.timetables.trigger import CronTriggerTimetable

        assert isinstance(dag.timetable, CronTriggerTimetable)
        assert dag.timetable.summary == "0 1 * * *"
        assert str(dag.timetable._timezone.name) == "Asia/Ho_Chi_Minh"

    def test_short_circuit_then_close(self, dag):
        assert type(dag.get_task("periods_due")).__name__ == "_ShortCircuitDecoratedOperator"
        assert dag.get_task("periods_due").ignore_downstream_trigger_rules is True
        assert _edges(dag) == {("periods_due", "ingest_reports"), ("periods_due", "close_period"),
                               ("ingest_reports", "close_period"), ("close_period", "alert_missing_units"),
                               ("alert_missing_units", "record_run")}
        assert type(dag.get_task("close_period")).__name__.endswith("MappedOperator")

    def test_params(self, dag):
        from airflow.exceptions import ParamValidationError

        assert dag.params.get_param("period_id").resolve(None) is None
        assert dag.params.get_param("period_id").resolve("2026Q3") == "2026Q3"
        with pytest.raises(ParamValidationError):
            dag.params.get_param("period_id").resolve("Q3-2026")
        assert dag.params.get_param("refreeze").resolve(False) is False


class TestReadinessReprocess:
    def test_params(self, dagbag):
        from airflow.exceptions import ParamValidationError

        dag = dagbag.dags["readiness_reprocess"]
        assert dag.timetable.summary == "None"
        assert _edges(dag) == {("rebuild_period", "record_run")}
        with pytest.raises(ParamValidationError):
            dag.params.get_param("period_id").resolve(None)  # required
        assert dag.params.get_param("methodology_version").resolve(None) is None
        assert dag.params.get_param("methodology_version").resolve("ict-index.v1") == "ict-index.v1"
        assert dag.params.get_param("refreeze").resolve(True) is True
