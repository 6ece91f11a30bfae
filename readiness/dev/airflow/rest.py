"""A small client of the local api-server's REST API (``/api/v2``), logged in as ``admin`` with a
JWT from the simple auth manager's ``/auth/token``: trigger and pause DAGs, read runs, task
states and return-value XComs. :class:`~readiness.dev.airflow.services.AirflowServices` is one."""
from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from readiness.dev.airflow.env import ADMIN_USER, DEFAULT_UI_PORT
from readiness.dev.airflow.migrate import ensure_admin_password
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

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """``task_id`` (``task_id[map_index]`` for mapped ones) -> state."""
        tis = self.api("GET", f"{self.run_path(dag_id, run_id)}/taskInstances?limit=1000")
        return {ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": str(ti["state"])
                for ti in tis["task_instances"]}

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
