"""A Kafka node as the project runs it, here and in production: its ``server.properties``, the
one-time storage format with the SCRAM bootstrap, and the production entry point.

The local broker (:mod:`readiness.dev.kafka_broker`) supervises a node in the background for
development and tests; ``python -m readiness.ops.broker serve`` runs one in the foreground, as the
``kafka`` service of ``docker/`` does, with the same properties.

    python -m readiness.ops.broker serve --host 0.0.0.0 --advertised-host kafka
"""
from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from readiness.ops.broker_security import (
    broker_properties,
    deployment_principals,
    provision_passwords,
    scram_format_args,
)
from readiness.ops.maven import kafka_broker_classpath
from readiness.ops.pki import ensure_server
from readiness.ops.secrets import write_private
from readiness.ops.topics import split_bootstrap
from readiness.settings import Settings, load_settings

JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]


class BrokerError(RuntimeError):
    """The node could not be configured or formatted."""


@dataclass(frozen=True)
class Node:
    """One combined broker + controller node of a single-node cluster."""

    settings: Settings
    node_id: int = 1
    listen_host: str | None = None  # default: the bootstrap host
    advertised_host: str | None = None  # default: the bootstrap host
    plaintext_baseline: bool = False  # the benchmark's comparison broker only: no TLS, no SASL

    @property
    def host(self) -> str:
        return split_bootstrap(self.settings.kafka_bootstrap)[0]

    @property
    def port(self) -> int:
        return split_bootstrap(self.settings.kafka_bootstrap)[1]

    @property
    def dir(self) -> Path:
        return self.settings.kafka_dir

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def properties_file(self) -> Path:
        return self.dir / "server.properties"

    def properties(self) -> tuple[dict[str, object], dict[str, str]]:
        """``(server properties, SCRAM passwords to bootstrap)``; generates the CA, the node's
        certificate and the principals' passwords on first use."""
        listen, advertised = self.listen_host or self.host, self.advertised_host or self.host
        ctl = self.settings.kafka_controller_port
        passwords: dict[str, str] = {}
        if self.plaintext_baseline:
            security: dict[str, object] = {
                "listeners": f"PLAINTEXT://{listen}:{self.port},CONTROLLER://{listen}:{ctl}",
                "advertised.listeners": f"PLAINTEXT://{advertised}:{self.port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "PLAINTEXT"}
        else:
            passwords = provision_passwords(self.settings, deployment_principals())
            hosts = list(dict.fromkeys([advertised, self.host, "localhost"]))
            server = ensure_server(self.settings.pki_dir, f"broker-{self.node_id}", hosts)
            security = {
                # Clients only on SASL_SSL; the controller listener is TLS + SASL too.
                "listeners": f"SASL_SSL://{listen}:{self.port},CONTROLLER://{listen}:{ctl}",
                "advertised.listeners": f"SASL_SSL://{advertised}:{self.port}",
                **broker_properties(server, passwords),
            }
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": f"{self.node_id}@{advertised}:{ctl}",
            "controller.listener.names": "CONTROLLER",
            **security,
            "log.dirs": self.data_dir,
            "num.partitions": 1,
            # The project creates its topics explicitly (ensure_topics), with explicit
            # partition counts and retention; a typo in a topic name must fail loudly.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            # Single member groups in tests should not wait 3 s for more members.
            "group.initial.rebalance.delay.ms": 0,
            # On restart the controller still holds the previous incarnation's registration
            # and refuses the new one (DUPLICATE_BROKER_REGISTRATION) until that session
            # expires: 9 s by default. A short session makes restarts ~4 s faster.
            "broker.heartbeat.interval.ms": 500,
            "broker.session.timeout.ms": 3000,
        }
        return props, passwords

    def write_config(self) -> dict[str, str]:
        """Write ``server.properties`` (0600: it holds the key and SASL passwords); the passwords."""
        self.dir.mkdir(parents=True, exist_ok=True)
        props, passwords = self.properties()
        write_private(self.properties_file, (
            "# Written by readiness.ops.broker; rewritten on every start.\n"
            + "".join(f"{key}={value}\n" for key, value in props.items())).encode())
        return passwords

    def java(self, main: str, *args: str, log4j: Path | None = None) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("`java` is not on PATH; the broker needs Java 17+")
        classpath = os.pathsep.join(str(p) for p in kafka_broker_classpath(self.settings))
        logging = [f"-Dlog4j2.configurationFile={log4j}"] if log4j else []
        return [java, *JVM_OPTS, *logging, "-cp", classpath, main, *args]

    def format_storage(self, passwords: dict[str, str], log4j: Path | None = None) -> bool:
        """Format the KRaft log dir once, bootstrapping the SCRAM credentials (KIP-900); False if
        it was formatted already (``meta.properties``)."""
        if (self.data_dir / "meta.properties").exists():
            return False
        # Kafka's Uuid text form: URL-safe base64 of 16 random bytes, without padding.
        # Like Kafka's Uuid.randomUuid: never one starting with "-", which the tool would read as an option.
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = self.java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.properties_file),
                        *scram_format_args(passwords), log4j=log4j)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BrokerError(f"kafka-storage format failed (exit {proc.returncode}):\n"
                              f"{(proc.stdout + proc.stderr).strip()[-2000:]}")
        return True

    def command(self, log4j: Path | None = None) -> list[str]:
        return self.java("kafka.Kafka", str(self.properties_file), log4j=log4j)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readiness.ops.broker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="configure, format once, then run the node in the foreground")
    serve.add_argument("--host", help="address to listen on (default: the bootstrap host)")
    serve.add_argument("--advertised-host", help="host name clients reach the node by (default: the bootstrap host)")
    serve.add_argument("--node-id", type=int, default=1)
    args = parser.parse_args(argv)
    node = Node(load_settings(), args.node_id, args.host, args.advertised_host)
    try:
        passwords = node.write_config()
        node.format_storage(passwords)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    command = node.command()
    os.execvp(command[0], command)  # the JVM replaces this process (signals reach Kafka directly)
    return 0


if __name__ == "__main__":
    sys.exit(main())
