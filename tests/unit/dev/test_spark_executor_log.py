"""Which tasks a standalone worker's executors are inside, read from their own log (no Spark started)."""
from __future__ import annotations

from pathlib import Path

from readiness.dev.cluster.spark import SparkCluster
from readiness.settings import load_settings

APP = "app-20261202061500-0001"


def _executor_log(cluster: SparkCluster, executor: str, lines: list[str]) -> None:
    directory = cluster.worker_work_dir(0) / APP / executor
    directory.mkdir(parents=True)
    (directory / "stderr").write_text("".join(f"26/12/02 06:15:0{n} {line}\n" for n, line in enumerate(lines)))


def test_started_tasks_without_an_end_are_running(tmp_path: Path) -> None:
    cluster = SparkCluster(load_settings("cluster", environ={}, var_dir=tmp_path))
    _executor_log(cluster, "0", [
        "INFO Executor: Running task 0.0 in stage 3.0 (TID 7)",
        "INFO Executor: Running task 1.0 in stage 3.0 (TID 8)",
        "INFO Executor: Finished task 0.0 in stage 3.0 (TID 7). 2043 bytes result sent to driver",
        "INFO Executor: Running task 0.0 in stage 4.0 (TID 9)",
        "ERROR Executor: Exception in task 0.0 in stage 4.0 (TID 9)",
        "INFO Executor: Running task 2.0 in stage 4.0 (TID 11)",
        "INFO Executor: Executor killed task 2.0 in stage 4.0 (TID 11), reason: another attempt succeeded",
    ])
    _executor_log(cluster, "2", ["INFO Executor: Running task 5.1 in stage 6.0 (TID 20)"])
    assert cluster.running_tasks(0, APP) == {8, 20}
    assert cluster.running_tasks(0, "app-of-someone-else") == set()
    assert cluster.running_tasks(1, APP) == set()


def test_an_idle_executor_runs_no_task(tmp_path: Path) -> None:
    cluster = SparkCluster(load_settings("cluster", environ={}, var_dir=tmp_path))
    _executor_log(cluster, "0", [
        "WARN NativeCodeLoader: Unable to load native-hadoop library",
        "INFO Executor: Running task 0.0 in stage 0.0 (TID 0)",
        "INFO Executor: Finished task 0.0 in stage 0.0 (TID 0). 1803 bytes result sent to driver",
    ])
    assert cluster.running_tasks(0, APP) == set()
