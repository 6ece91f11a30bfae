"""What running Airflow from here reports: :class:`DagRunResult` for a finished DAG run, and the
errors :class:`AirflowLocalError` (an Airflow command failed) and :class:`DagRunFailed`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class AirflowLocalError(RuntimeError):
    """An Airflow command run from here failed; the message ends with the tail of its log."""


class DagRunFailed(AirflowLocalError):
    """A DAG run did not succeed. ``result`` holds the states, when the run got that far."""

    def __init__(self, message: str, result: DagRunResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    run_id: str
    state: str  # final DagRun state: "success" or "failed"
    task_states: dict[str, str]  # task_id -> final TaskInstance state
    xcom: dict[str, Any] = field(default_factory=dict)  # task_id -> return value
    log_file: Path | None = None
    duration_s: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.state == "success"
