"""The streaming service as a real process for the tests: started with the test's settings, watched
through its health document, stopped with SIGTERM or killed with SIGKILL by the pid the test started
(the Spark JVM it launched is reaped by its pid too)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from readiness.orchestration.stream_health import health_path, read_health
from readiness.settings import PROJECT_ROOT, Settings, settings_env


@dataclass
class StreamProcess:
    settings: Settings
    proc: subprocess.Popen | None = None
    children: dict[int, psutil.Process] = field(default_factory=dict)
    lives: int = 0

    def start(self) -> None:
        logs = self.settings.var_dir / "stream-logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.lives += 1
        out, err = (open(logs / f"{self.lives}.{kind}", "w") for kind in ("out", "err"))
        with out, err:
            self.proc = subprocess.Popen([sys.executable, "-m", "readiness.cli", "stream"], cwd=PROJECT_ROOT,
                                         env={**os.environ, **settings_env(self.settings)}, stdout=out, stderr=err)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        logs = self.settings.var_dir / "stream-logs"
        return "".join((logs / f"{self.lives}.{kind}").read_text(errors="replace")[-4000:] for kind in ("out", "err"))

    def health(self) -> dict[str, Any]:
        return read_health(health_path(self.settings)) or {}

    def _watch(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):  # it ended: the children seen so far are reaped
            self.children.update({c.pid: c for c in psutil.Process(self.pid).children(recursive=True)})

    def wait_for(self, what: str, ready: Callable[[dict[str, Any]], bool], timeout: float = 900.0) -> dict[str, Any]:
        """Poll the health document until ``ready`` says so; the document. Fails if the process ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, \
                f"the service ended ({self.proc.returncode}) waiting for {what}:\n{self.log()}"
            self._watch()
            document = self.health()
            if document.get("pid") == self.pid and ready(document):
                return document
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {timeout:.0f} s; health {self.health()}\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the service by its pid, then its Spark JVM if it outlives it."""
        self._watch()
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._reap()

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds until the process ended)."""
        self._watch()
        started = time.monotonic()
        os.kill(self.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.kill()
        took = time.monotonic() - started
        self._reap()
        return code, took

    def _reap(self) -> None:
        _, alive = psutil.wait_procs(list(self.children.values()), timeout=60)
        for child in alive:  # ours: seen running under the service's pid
            child.send_signal(signal.SIGKILL)
        psutil.wait_procs(alive, timeout=30)
        self.children.clear()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
