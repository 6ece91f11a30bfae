"""A real Apache Kafka 4.0.1 node (KRaft, combined broker+controller) on loopback.

For development and CI: the same broker jars as production, run straight from the Maven
jar cache (see :mod:`readiness.ops.maven`) with ``java -cp <jars> kafka.Kafka``; no Docker, no
Kafka distribution tarball. All state (config, data, logs, pid file) lives in the node's directory
(``settings.kafka_dir`` for a single node; see :mod:`readiness.ops.broker`).

    python -m readiness.dev.kafka_broker up|down|status
"""

from __future__ import annotations

import argparse
import sys
import time
from types import TracebackType

from readiness.dev.daemon import Daemon, DaemonError, tail
from readiness.dev.provision import ensure_province_keys
from readiness.ops.broker import BrokerError, Node
from readiness.ops.topics import TopicError, broker_answers, ensure_topics
from readiness.settings import Settings, load_settings


class KafkaLocalError(RuntimeError):
    """The local broker could not be formatted, started, stopped or configured."""


class LocalKafka:
    """Start/stop one local node described by ``settings`` (node 1 of a single node by default;
    :class:`readiness.dev.cluster.kafka.KafkaCluster` supervises one per node of a cluster).

    The process is a :class:`~readiness.dev.daemon.Daemon` (own session, pid file, SIGTERM then
    SIGKILL); its pid counts only while its command line names this node's ``server.properties``.
    As a context manager it starts the node on entry and stops it on exit, unless the node was
    already running on entry (then it is left alone).
    """

    def __init__(self, settings: Settings, plaintext_baseline: bool = False, node_id: int = 1) -> None:
        """``plaintext_baseline``: a PLAINTEXT broker without authentication, for the benchmark
        that measures what SASL_SSL costs (its settings say ``kafka_security_protocol=PLAINTEXT``);
        nothing else starts one."""
        self.settings = settings
        self.plaintext_baseline = plaintext_baseline
        self.node_id = node_id
        self.node = Node(settings, node_id=node_id, plaintext_baseline=plaintext_baseline)
        self.dir = self.node.dir  # the node's config and data; the supervisor's files beside them
        self.logs_dir = self.dir / "logs"
        self.log4j_file = self.dir / "log4j2.properties"
        self.pid_file = self.dir / "kafka.pid"
        self.server_log = self.logs_dir / "server.log"
        self.console_log = self.logs_dir / "console.out"
        self.daemon = Daemon(name=f"Kafka node {node_id}", command=(), cwd=self.dir, log=self.console_log,
                             pid_file=self.pid_file, marker=str(self.node.properties_file), ready=self.is_running)
        self._started_here = False
        self._passwords: dict[str, str] = {}

    # -- state ---------------------------------------------------------------------------

    def is_running(self) -> bool:
        """This node answers on its address and is registered with the cluster."""
        return broker_answers(self.settings, self.node_id)

    def pid(self) -> int | None:
        """Pid of the node this project started (from the pid file), if still alive."""
        return self.daemon.pid()

    def log_tail(self, lines: int = 40) -> str:
        parts = [
            f"--- {path} ---\n{text}"
            for path in (self.console_log, self.server_log)
            if (text := tail(path, lines))
        ]
        return "\n".join(parts) or "(no broker output yet)"

    # -- configuration -------------------------------------------------------------------

    def write_config(self) -> None:
        """The node's ``server.properties`` and log configuration (and, once, the deployment's keys,
        certificates and passwords)."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        ensure_province_keys(self.settings)
        try:
            self._passwords = self.node.write_config()
        except BrokerError as exc:
            raise KafkaLocalError(str(exc)) from None
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

    def format_storage(self) -> None:
        """Format the node's storage once (after :meth:`write_config`)."""
        try:
            self.node.format_storage(self._passwords, self.log4j_file)
        except BrokerError as exc:
            raise KafkaLocalError(str(exc)) from None

    # -- lifecycle -----------------------------------------------------------------------

    def launch(self) -> int:
        """Start the configured, formatted node in the background without waiting; its pid."""
        self.daemon.command = self.node.command(self.log4j_file)
        pid = self.daemon.start()
        self._started_here = True
        return pid

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the node answers and is registered; stops it if it does not within ``timeout``."""
        try:
            self.daemon.wait_ready(timeout)
        except DaemonError as exc:
            exited = self.pid() is None
            if not exited:
                self.stop()
            what = "died during startup" if exited else f"did not answer on {self.node.address} within {timeout:.0f}s"
            raise KafkaLocalError(f"Kafka node {self.node_id} {what} ({str(exc).splitlines()[0]})\n"
                                  f"{self.log_tail()}") from None

    def start(self, timeout: float = 90.0) -> None:
        """Start the node in the background and wait until it answers.

        A no-op if the node already answers on its address. If a node we started earlier is
        still booting (pid file, process alive), wait for it instead of starting a second one.
        """
        if self.is_running():
            return
        if self.pid() is None:
            self.write_config()
            self.format_storage()
            self.launch()
        self.wait_ready(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the node (a clean KRaft shutdown), SIGKILL if it outlives ``timeout``.

        Only stops a node started by this project (found via the pid file).
        """
        self.daemon.stop(grace=timeout)

    def kill(self) -> int:
        """SIGKILL the node by its pid, as a crash would (no clean shutdown); the pid killed."""
        try:
            return self.daemon.kill()
        except DaemonError as exc:
            raise KafkaLocalError(str(exc)) from None

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
