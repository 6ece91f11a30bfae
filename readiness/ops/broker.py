"""A Kafka node as the project runs it, here and in production: its ``server.properties``, the
one-time storage format with the SCRAM bootstrap, and the production entry point.

One code path for a single node and for a cluster of N combined broker + controller nodes: node ``i``
listens on ``settings.kafka_brokers[i-1]`` and, as a controller, on ``settings.controller_voters[i]``;
``controller.quorum.voters`` lists every voter. A single node keeps its state in ``<kafka_dir>``, the
nodes of a cluster in ``<kafka_dir>/node-<i>``. Every node is formatted with one cluster id (generated
once into ``<kafka_dir>/cluster.id``, or given) and the same SCRAM bootstrap; each has its own
certificate (``broker-<i>``). Internal and default topics get the settings' replication factor and
``min.insync.replicas``; unclean leader election is off.

The local broker (:mod:`readiness.dev.kafka_broker`) supervises a node in the background for
development and tests, the local cluster (:mod:`readiness.dev.cluster.kafka`) three of them;
``python -m readiness.ops.broker serve`` runs one in the foreground, as the ``kafka`` service of
``docker/`` does, with the same properties. On a three-host deployment each host runs its own node id
with the cluster's settings (``READINESS_KAFKA_BOOTSTRAP=kafka-1:9092,kafka-2:9092,kafka-3:9092``,
``READINESS_KAFKA_CONTROLLER_QUORUM=1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093``, replication 3,
min ISR 2), the same CA and passwords, and the same cluster id (a shared ``kafka_dir`` or
``--cluster-id``):

    python -m readiness.ops.broker serve --host 0.0.0.0 --advertised-host kafka
    python -m readiness.ops.broker serve --host 0.0.0.0 --advertised-host kafka-1 --node-id 1
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
from readiness.ops.locks import file_lock
from readiness.ops.maven import kafka_broker_classpath
from readiness.ops.pki import ServerFiles, ensure_server
from readiness.ops.secrets import write_private
from readiness.ops.topics import split_bootstrap
from readiness.settings import Settings, load_settings

JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]


class BrokerError(RuntimeError):
    """The node could not be configured or formatted."""


def new_cluster_id() -> str:
    """Kafka's Uuid text form: URL-safe base64 of 16 random bytes, without padding; like Kafka's
    Uuid.randomUuid never one starting with "-", which the storage tool would read as an option."""
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cluster_id


def cluster_id_file(settings: Settings) -> Path:
    return settings.kafka_dir / "cluster.id"


def provisioned_cluster_id_file(settings: Settings) -> Path:
    """Where ``provision`` leaves the cluster id for nodes that share only the secrets folder (one
    ``kafka_dir`` volume per host)."""
    return settings.secrets_dir / "kafka-cluster.id"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def ensure_cluster_id(settings: Settings, given: str | None = None) -> str:
    """The cluster id every node of the deployment is formatted with: ``given``, else the one kept
    under ``kafka_dir``, else the provisioned one, else a new one; kept under ``kafka_dir``."""
    path = cluster_id_file(settings)
    with file_lock(settings.kafka_dir / ".cluster-id.lock"):
        kept = _read(path)
        if given and kept and given != kept:
            raise BrokerError(f"cluster id {given!r} differs from the one kept in {path} ({kept!r})")
        cluster_id = given or kept or _read(provisioned_cluster_id_file(settings)) or new_cluster_id()
        if cluster_id != kept:
            path.write_text(cluster_id + "\n", encoding="utf-8")
    return cluster_id


@dataclass(frozen=True)
class Node:
    """One combined broker + controller node, of a single node or of a cluster (``node_id`` 1..N)."""

    settings: Settings
    node_id: int = 1
    listen_host: str | None = None  # default: the node's bootstrap host
    advertised_host: str | None = None  # default: the node's bootstrap host
    plaintext_baseline: bool = False  # the benchmark's comparison broker only: no TLS, no SASL

    @property
    def nodes(self) -> int:
        """How many nodes the deployment has (one bootstrap address each)."""
        return len(self.settings.kafka_brokers)

    @property
    def address(self) -> str:
        """This node's client address, ``host:port``, from the bootstrap list."""
        brokers = self.settings.kafka_brokers
        if not 1 <= self.node_id <= len(brokers):
            raise BrokerError(f"node id {self.node_id} has no address: kafka_bootstrap lists {len(brokers)} "
                              f"broker(s) ({self.settings.kafka_bootstrap!r})")
        return brokers[self.node_id - 1]

    @property
    def host(self) -> str:
        return split_bootstrap(self.address)[0]

    @property
    def port(self) -> int:
        return split_bootstrap(self.address)[1]

    @property
    def controller_host(self) -> str:
        """The host the other voters reach this node's controller at."""
        if not self.settings.kafka_controller_quorum:
            return self.advertised_host or self.host
        return self._voter()[0]

    @property
    def controller_port(self) -> int:
        if not self.settings.kafka_controller_quorum:
            return self.settings.kafka_controller_port
        return self._voter()[1]

    def _voter(self) -> tuple[str, int]:
        voters = self.settings.controller_voters
        if self.node_id not in voters:
            raise BrokerError(f"node id {self.node_id} is not a voter of the controller quorum "
                              f"{self.settings.kafka_controller_quorum!r}")
        return voters[self.node_id]

    def quorum_voters(self) -> str:
        """``controller.quorum.voters``: every voter of the settings' quorum; a single node without
        a quorum setting is its own voter at its advertised host."""
        if not self.settings.kafka_controller_quorum:
            return f"{self.node_id}@{self.controller_host}:{self.controller_port}"
        return ",".join(f"{i}@{h}:{p}" for i, (h, p) in sorted(self.settings.controller_voters.items()))

    @property
    def dir(self) -> Path:
        kafka_dir = self.settings.kafka_dir
        return kafka_dir if self.nodes == 1 else kafka_dir / f"node-{self.node_id}"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def properties_file(self) -> Path:
        return self.dir / "server.properties"

    def provision(self) -> tuple[ServerFiles, dict[str, str]]:
        """The node's certificate (``broker-<i>``, for every host name it is reached by) and the
        principals' passwords, generated once; ``(server files, passwords)``."""
        advertised = self.advertised_host or self.host
        passwords = provision_passwords(self.settings, deployment_principals())
        # Other brokers and controllers verify this certificate's host names too (inter-broker TLS).
        hosts = list(dict.fromkeys([advertised, self.host, self.controller_host, "localhost"]))
        return ensure_server(self.settings.pki_dir, f"broker-{self.node_id}", hosts), passwords

    def _security(self, listen: str, advertised: str) -> tuple[dict[str, object], dict[str, str]]:
        ctl = self.controller_port
        if self.plaintext_baseline:
            return {
                "listeners": f"PLAINTEXT://{listen}:{self.port},CONTROLLER://{listen}:{ctl}",
                "advertised.listeners": f"PLAINTEXT://{advertised}:{self.port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "PLAINTEXT"}, {}
        server, passwords = self.provision()
        return {
            # Clients only on SASL_SSL; the controller listener is TLS + SASL too.
            "listeners": f"SASL_SSL://{listen}:{self.port},CONTROLLER://{listen}:{ctl}",
            "advertised.listeners": f"SASL_SSL://{advertised}:{self.port}",
            **broker_properties(server, passwords),
        }, passwords

    def _replication(self) -> dict[str, object]:
        """Copies of the internal topics and the defaults of any other, from the settings."""
        rf, min_isr = self.settings.kafka_replication_factor, self.settings.kafka_min_insync_replicas
        if not 1 <= min_isr <= rf <= self.nodes:
            raise BrokerError(f"replication factor {rf} and min.insync.replicas {min_isr} do not fit "
                              f"{self.nodes} node(s): need 1 <= min ISR <= replication factor <= nodes")
        return {
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            # Never elect a replica that is not in sync: an acknowledged write must not be lost.
            "unclean.leader.election.enable": "false",
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
        }

    def properties(self) -> tuple[dict[str, object], dict[str, str]]:
        """``(server properties, SCRAM passwords to bootstrap)``; generates the CA, the node's
        certificate and the principals' passwords on first use."""
        listen, advertised = self.listen_host or self.host, self.advertised_host or self.host
        security, passwords = self._security(listen, advertised)
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": self.quorum_voters(),
            "controller.listener.names": "CONTROLLER",
            **security,
            "log.dirs": self.data_dir,
            "num.partitions": 1,
            # The project creates its topics explicitly (ensure_topics), with explicit
            # partition counts and retention; a typo in a topic name must fail loudly.
            "auto.create.topics.enable": "false",
            **self._replication(),
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

    def format_storage(self, passwords: dict[str, str], log4j: Path | None = None,
                       cluster_id: str | None = None) -> bool:
        """Format the KRaft log dir once, with the deployment's cluster id (:func:`ensure_cluster_id`)
        and the SCRAM credentials (KIP-900); False if it was formatted already (``meta.properties``)."""
        if (self.data_dir / "meta.properties").exists():
            return False
        cluster_id = ensure_cluster_id(self.settings, cluster_id)
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
    serve.add_argument("--node-id", type=int, default=1,
                       help="this node's id, 1..N: its address is the N-th of kafka_bootstrap (default: 1)")
    serve.add_argument("--cluster-id", help="the deployment's cluster id, when the nodes do not share kafka_dir "
                                            "(default: the one kept there, generated once)")
    provision = sub.add_parser("provision", help="once, before any node starts: the CA, every node's certificate, "
                                                 "the principals' passwords and the cluster id")
    provision.add_argument("--advertised-hosts", help="host names of nodes 1..N, comma-separated "
                                                      "(default: the bootstrap hosts)")
    args = parser.parse_args(argv)
    if args.command == "provision":
        return _provision(load_settings(), args.advertised_hosts)
    node = Node(load_settings(), args.node_id, args.host, args.advertised_host)
    try:
        passwords = node.write_config()
        node.format_storage(passwords, cluster_id=args.cluster_id)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    command = node.command()
    os.execvp(command[0], command)  # the JVM replaces this process (signals reach Kafka directly)
    return 0


def _provision(settings: Settings, advertised_hosts: str | None) -> int:
    """``provision``: what the nodes of a deployment share, written where they mount it read-only."""
    hosts = [h.strip() for h in advertised_hosts.split(",")] if advertised_hosts else []
    nodes = len(settings.kafka_brokers)
    if hosts and len(hosts) != nodes:
        print(f"error: {len(hosts)} advertised host(s) for {nodes} node(s) in kafka_bootstrap", file=sys.stderr)
        return 1
    try:
        for node_id in range(1, nodes + 1):
            node = Node(settings, node_id, advertised_host=hosts[node_id - 1] if hosts else None)
            node.provision()
            print(f"node {node_id}: certificate broker-{node_id} for {node.advertised_host or node.host}")
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cluster_id = provisioned_cluster_id_file(settings)
    if not cluster_id.is_file():
        write_private(cluster_id, new_cluster_id().encode())
    print(f"cluster id in {cluster_id}; CA {settings.ca_file}; passwords in {settings.credentials_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
