"""A real single-node Apache Kafka 4.0.1 broker (KRaft, combined broker+controller) on loopback.

For development and CI: the same broker jars as production, run straight from the Maven
jar cache (see :mod:`readiness.ops.maven`) with ``java -cp <jars> kafka.Kafka``; no Docker, no
Kafka distribution tarball. All state (config, data, logs, pid file) lives under
``settings.kafka_dir``.

    python -m readiness.dev.kafka_broker up|down|status
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from readiness.dev.provision import ensure_province_keys
from readiness.ops.broker import BrokerError, Node
from readiness.ops.topics import TopicError, broker_answers, ensure_topics
from readiness.settings import Settings, load_settings

log = logging.getLogger(__name__)



class KafkaLocalError(RuntimeError):
    """The local broker could not be formatted, started, stopped or configured."""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a zombie still accepts signal 0 until its parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_our_broker(pid: int) -> bool:
    """Guard against a recycled pid: the process must be a JVM running ``kafka.Kafka``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in argv


class LocalKafka:
    """Start/stop the local broker described by ``settings``.

    As a context manager it starts the broker on entry and stops it on exit, unless the
    broker was already running on entry (then it is left alone).
    """

    def __init__(self, settings: Settings, plaintext_baseline: bool = False) -> None:
        """``plaintext_baseline``: a PLAINTEXT broker without authentication, for the benchmark
        that measures what SASL_SSL costs (its settings say ``kafka_security_protocol=PLAINTEXT``);
        nothing else starts one."""
        self.settings = settings
        self.plaintext_baseline = plaintext_baseline
        self.node = Node(settings, plaintext_baseline=plaintext_baseline)
        self.dir = self.node.dir  # the node's config and data; the supervisor's files beside them
        self.logs_dir = self.dir / "logs"
        self.log4j_file = self.dir / "log4j2.properties"
        self.pid_file = self.dir / "kafka.pid"
        self.server_log = self.logs_dir / "server.log"
        self.console_log = self.logs_dir / "console.out"
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_here = False
        self._passwords: dict[str, str] = {}

    # -- state ---------------------------------------------------------------------------

    def is_running(self) -> bool:
        """A broker answers on the configured bootstrap address."""
        return broker_answers(self.settings)

    def pid(self) -> int | None:
        """Pid of the broker this project started (from the pid file), if still alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) and _is_our_broker(pid) else None

    def log_tail(self, lines: int = 40) -> str:
        parts = [
            f"--- {path} ---\n{text}"
            for path in (self.console_log, self.server_log)
            if (text := _tail(path, lines))
        ]
        return "\n".join(parts) or "(no broker output yet)"

    # -- configuration -------------------------------------------------------------------

    def _write_config(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        ensure_province_keys(self.settings)
        self._passwords = self.node.write_config()
        self.log4j_file.write_text(
            "# Written by readiness.dev.kafka_broker: WARN and above to a file, nothing on stdout.\n"
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.server_log}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = WARN\n"
            "rootLogger.appenderRef.file.ref = file\n"
            # One INFO line per start/stop ("Kafka Server started") to make the log readable.
            "logger.raft.name = kafka.server.KafkaRaftServer\n"
            "logger.raft.level = INFO\n"
        )

    def _format_storage(self) -> None:
        try:
            self.node.format_storage(self._passwords, self.log4j_file)
        except BrokerError as exc:
            raise KafkaLocalError(str(exc)) from None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker in the background and wait until it answers.

        A no-op if a broker already answers on the bootstrap address. If a broker we
        started earlier is still booting (pid file, process alive), wait for it instead
        of starting a second one.
        """
        if self.is_running():
            return
        pid = self.pid()
        if pid is None:
            self._write_config()
            self._format_storage()
            with self.console_log.open("ab") as console:
                self._proc = subprocess.Popen(
                    self.node.command(self.log4j_file),
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    # Own session: survives the `up` command and ignores the caller's Ctrl-C.
                    start_new_session=True,
                )
            pid = self._proc.pid
            self.pid_file.write_text(f"{pid}\n")
            self._started_here = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return
            if self._proc is not None and self._proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise KafkaLocalError(
                    f"Kafka broker exited with code {self._proc.returncode} during startup\n"
                    + self.log_tail()
                )
            if self._proc is None and not _pid_alive(pid):
                raise KafkaLocalError(
                    f"Kafka broker (pid {pid}) died during startup\n{self.log_tail()}"
                )
            time.sleep(0.5)
        self.stop()
        raise KafkaLocalError(
            f"Kafka broker did not answer on {self.settings.kafka_bootstrap} within "
            f"{timeout:.0f}s\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the broker (a clean KRaft shutdown), SIGKILL if it outlives ``timeout``.

        Only stops a broker started by this project (found via the pid file).
        """
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("Kafka broker pid %s ignored SIGTERM for %.0fs; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        self._proc = None

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout)  # also reaps our child, so no zombie lingers
            return self._proc.poll() is not None
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started_here:
            self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readiness.dev.kafka_broker", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    settings = load_settings()
    kafka = LocalKafka(settings)
    try:
        if args.command == "up":
            started = time.monotonic()
            kafka.start()
            topics = ensure_topics(settings)
            print(
                f"Kafka up on {settings.kafka_bootstrap} ({time.monotonic() - started:.1f}s); "
                f"data in {kafka.dir}"
            )
            for topic, partitions in topics.items():
                print(f"  topic {topic}: {partitions} partitions")
        elif args.command == "down":
            pid = kafka.pid()
            kafka.stop()
            if pid is not None:
                print(f"Kafka stopped (pid {pid})")
            elif kafka.is_running():
                print(
                    f"a broker answers on {settings.kafka_bootstrap} but was not started "
                    f"from {kafka.dir}; left running"
                )
            else:
                print("Kafka was not running")
        else:
            running = kafka.is_running()
            pid = kafka.pid()
            print(
                f"Kafka on {settings.kafka_bootstrap}: "
                f"{'answering' if running else 'not answering'}"
                f"{f' (pid {pid})' if pid else ''}"
            )
            return 0 if running else 1
    except (KafkaLocalError, TopicError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
