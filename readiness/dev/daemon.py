"""A background service the project starts on this machine: its command, log, pid file and the
probe that says it is ready.

Each daemon runs in its own session (``start_new_session=True``), so it outlives the command that
started it (``make cluster-up``) and a terminal's Ctrl-C does not reach it; it is found again through
its pid file, whose process must still run the daemon's own command line (a recycled pid is never
signalled). Stopping is SIGTERM to the daemon's process group, then SIGKILL after a grace period.
Fault tests kill one with :meth:`Daemon.kill` (SIGKILL by pid).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class DaemonError(RuntimeError):
    """A daemon could not be started (it exited, or its probe never answered)."""


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a zombie still accepts signal 0 until its parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Daemon:
    """One service: ``command`` run in ``cwd`` with ``env``, output to ``log``, pid in ``pid_file``.

    ``marker`` is a string the process's command line must contain for a pid from the pid file to
    count as this daemon; ``ready`` is the probe polled after the start (default: the process lives).
    """

    name: str
    command: Sequence[str]
    cwd: Path
    log: Path
    pid_file: Path
    marker: str
    env: dict[str, str] | None = None
    ready: Callable[[], bool] | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    def pid(self) -> int | None:
        """The pid of this daemon if it runs (from the pid file), else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid) or not any(self.marker in arg for arg in cmdline(pid)):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> int:
        """Start the daemon unless it runs already; its pid. Does not wait for :meth:`wait_ready`."""
        pid = self.pid()
        if pid is not None:
            return pid
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                list(self.command), cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{self._proc.pid}\n")
        return self._proc.pid

    def wait_ready(self, timeout: float) -> None:
        """Until the probe answers; :class:`DaemonError` with the log's tail if the process exits first
        or the probe does not answer within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DaemonError(f"{self.name} exited with code {self._proc.returncode} while starting; "
                                  f"the end of {self.log}:\n{tail(self.log)}")
            if self._proc is None and self.pid() is None:
                raise DaemonError(f"{self.name} is not running; the end of {self.log}:\n{tail(self.log)}")
            if self.ready is None or self.ready():
                return
            if time.monotonic() > deadline:
                raise DaemonError(f"{self.name} did not become ready within {timeout:.0f} s; the end of "
                                  f"{self.log}:\n{tail(self.log)}")
            time.sleep(0.5)

    def stop(self, grace: float = 30.0) -> bool:
        """SIGTERM the daemon's process group, SIGKILL it after ``grace`` s; False if it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not self._wait_exit(pid, grace):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> int:
        """SIGKILL the daemon's own process (by its pid, as a crash would); the pid killed."""
        pid = self.pid()
        if pid is None:
            raise DaemonError(f"{self.name} is not running")
        os.kill(pid, signal.SIGKILL)
        self._wait_exit(pid, 30.0)
        return pid

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout)  # reaps our child, so no zombie lingers
            return self._proc.poll() is not None
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True
