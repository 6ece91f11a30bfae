"""A small client of the local api-server's REST API (``/api/v2``), logged in as ``admin`` with a
JWT from the simple auth manager's ``/auth/token``: trigger and pause DAGs, read runs, task
states and return-value XComs, wait for DAGs to load and runs to end.
:class:`~readiness.dev.airflow.services.AirflowServices` and the cluster's
:class:`~readiness.dev.cluster.airflow.AirflowCluster` (its ``api``) are such clients; they tell the
waits when their processes died (:meth:`AirflowApi.exited`) and what their logs say (:meth:`AirflowApi.log_tail`)."""
from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from readiness.dev.airflow.env import ADMIN_USER, DEFAULT_UI_PORT
from readiness.dev.airflow.migrate import ensure_admin_password
from readiness.dev.airflow.results import AirflowLocalError, DagRunFailed, DagRunResult
from readiness.settings import Settings


class AirflowApi:
    """The REST API of the api-server of ``settings`` on ``localhost:<port>``."""

    def __init__(self, settings: Settings, port: int = DEFAULT_UI_PORT) -> None:
        self.settings = settings
        self.port = port
        self._token: str | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def token(self) -> str:
        if self._token is None:
            body = {"username": ADMIN_USER, "password": ensure_admin_password(self.settings)}
            self._token = self._request("POST", "/auth/token", body, auth=False)["access_token"]
        return self._token

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``/api/v2<path>``; raises ``urllib.error.HTTPError`` on 4xx/5xx."""
        try:
            return self._request(method, f"/api/v2{path}", body)
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and self._token is not None:  # token expired: once more with a new one
                self._token = None
                return self._request(method, f"/api/v2{path}", body)
            raise

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run now (``logical_date`` null, as the UI does); returns its run id."""
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def pause(self, dag_id: str, paused: bool = True) -> None:
        """Pause (or unpause) a DAG: no new scheduled runs; queued runs wait."""
        self.api("PATCH", f"/dags/{dag_id}?update_mask=is_paused", {"is_paused": paused})

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns?order_by=-run_after&limit=100")["dag_runs"]

    @staticmethod
    def run_path(dag_id: str, run_id: str) -> str:
        """The REST path of one DAG run (run ids hold ``:`` and ``+``, so they are quoted)."""
        return f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run as the REST API describes it (state, run_after, start_date, end_date, ...)."""
        return self.api("GET", self.run_path(dag_id, run_id))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances as the REST API gives them (state, try_number, hostname, pid, ...)."""
        return self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances?limit=1000")["task_instances"]

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (try_number, state, hostname, pid, start and end), oldest first."""
        path = f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/tries?map_index={map_index}"
        tries = self.api("GET", path)["task_instances"]
        return sorted(tries, key=lambda t: t["try_number"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """``task_id`` (``task_id[map_index]`` for mapped ones) -> state."""
        return {ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": str(ti["state"])
                for ti in self.task_instances(dag_id, run_id)}

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        try:
            entry = self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/xcomEntries/"
                                    f"return_value?map_index={map_index}&deserialize=true&stringify=false")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        value = entry.get("value")
        if isinstance(value, str):  # some Airflow versions return the stored JSON text
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    # -- what the processes behind the API say (the clients that start them override these)

    def exited(self) -> list[str]:
        """Names of the Airflow processes that should run but have exited (a wait stops early then)."""
        return []

    def log_tail(self, lines: int = 30) -> str:
        """The end of the processes' logs, for an error message."""
        return ""

    # -- waiting on the REST API while the services run

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        """Until the dag-processor has serialised every one of ``dag_ids``."""
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while missing:
            for dag_id in list(missing):
                try:
                    self.api("GET", f"/dags/{dag_id}/details")
                    missing.remove(dag_id)
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:
                        raise
            if missing:
                if time.monotonic() > deadline or self.exited():
                    raise AirflowLocalError(f"DAGs not loaded after {timeout:.0f}s: {missing}\n" + self.log_tail())
                time.sleep(2)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 1800, poll: float = 3) -> DagRunResult:
        """Until the run ends; its states and return-value XComs (mapped tasks: ``task[i]``)."""
        start = time.monotonic()
        while True:
            state = self.run(dag_id, run_id)["state"]
            if state in ("success", "failed"):
                break
            if time.monotonic() - start > timeout or self.exited():
                raise DagRunFailed(f"{dag_id} run {run_id} still {state} after {time.monotonic() - start:.0f}s "
                                   f"(services exited: {self.exited()}); tasks: "
                                   f"{self.task_states(dag_id, run_id)}\n" + self.log_tail())
            time.sleep(poll)
        states = self.task_states(dag_id, run_id)
        xcom: dict[str, Any] = {}
        for key in states:
            task_id, _, index = key.partition("[")
            value = self.xcom(dag_id, run_id, task_id, int(index[:-1]) if index else -1)
            if value is not None:
                xcom[key] = value
        return DagRunResult(dag_id, run_id, state, states, xcom, duration_s=time.monotonic() - start)
