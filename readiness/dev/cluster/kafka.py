"""The cluster profile's Kafka: N combined broker + controller nodes on this machine's loopback.

Each node is a :class:`~readiness.dev.kafka_broker.LocalKafka` (its own directory
``<kafka_dir>/node-<i>``, pid file, certificate ``broker-<i>``), all formatted with one cluster id and
the same SCRAM bootstrap (:mod:`readiness.ops.broker`). The nodes start together: a KRaft quorum of
three elects a leader only once a majority of its voters runs, so a node started alone would wait for
the others. The project's topics get the settings' replication factor and ``min.insync.replicas``
(:func:`readiness.ops.topics.ensure_topics`).

Fault tests use :meth:`KafkaCluster.kill` (SIGKILL by pid) and :meth:`KafkaCluster.start_node`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict, TypeVar

from kafka.errors import KafkaError

from readiness.dev.kafka_broker import KafkaLocalError, LocalKafka
from readiness.ops.broker import ensure_cluster_id
from readiness.ops.topics import TopicError, describe_replicas, ensure_topics, registered_brokers
from readiness.settings import Settings

T = TypeVar("T")


class KafkaClusterError(RuntimeError):
    """The cluster could not be started, or did not become whole (brokers, in-sync replicas) in time."""


class NodeStatus(TypedDict):
    address: str
    pid: int | None
    answering: bool


class KafkaCluster:
    """Start, stop, kill and restart the Kafka nodes of ``settings`` (one per bootstrap address)."""

    def __init__(self, settings: Settings) -> None:
        voters = sorted(settings.controller_voters)
        if voters != list(range(1, len(settings.kafka_brokers) + 1)):
            raise KafkaClusterError(f"the controller quorum's node ids {voters} do not match the "
                                    f"{len(settings.kafka_brokers)} broker address(es) of kafka_bootstrap")
        self.settings = settings
        self.nodes: dict[int, LocalKafka] = {i: LocalKafka(settings, node_id=i) for i in voters}

    # -- state ---------------------------------------------------------------------------

    def registered(self) -> set[int]:
        """Node ids of the brokers the cluster lists as alive (empty when none answers)."""
        return registered_brokers(self.settings) or set()

    def status(self) -> dict[int, NodeStatus]:
        """Per node: its address, its pid (if this project runs it) and whether it answers on its own
        address and is registered with the cluster."""
        return {i: NodeStatus(address=node.node.address, pid=node.pid(), answering=node.is_running())
                for i, node in self.nodes.items()}

    def under_replicated(self) -> list[str]:
        """``topic/partition`` of every partition of the project's topics whose ISR is not all its replicas."""
        lagging = []
        for topic in (self.settings.topic_reports, self.settings.topic_targets):
            for p in describe_replicas(self.settings, topic, wait=5.0):
                if set(p["isr"]) != set(p["replicas"]) or len(p["replicas"]) < self.settings.kafka_replication_factor:
                    lagging.append(f"{topic}/{p['partition']} (replicas {p['replicas']}, in sync {p['isr']})")
        return lagging

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        """Start every node not running yet, at once; wait until all brokers are registered and the
        topics and ACLs exist. A no-op for nodes that already run."""
        deadline = time.monotonic() + timeout
        idle = [node for node in self.nodes.values() if node.pid() is None]
        if idle:
            ensure_cluster_id(self.settings)  # before any node formats: all share it
            for node in idle:  # the deployment's keys, certificates and passwords: one writer at a time
                node.write_config()
            self._each(idle, LocalKafka.format_storage)
            for node in idle:
                node.launch()
        try:
            self._each(list(self.nodes.values()), lambda n: n.wait_ready(max(1.0, deadline - time.monotonic())))
            self._wait(lambda: self.registered() >= set(self.nodes), deadline, "every broker registered")
            ensure_topics(self.settings)
        except (KafkaLocalError, TopicError, KafkaError) as exc:
            self.stop()
            raise KafkaClusterError(f"the Kafka cluster did not start: {exc}") from None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node at once (one by one, the last ones would lose their quorum mid-shutdown
        and wait for it), SIGKILL those that outlive ``timeout``."""
        self._each(list(self.nodes.values()), lambda n: n.stop(timeout))

    def kill(self, node_id: int) -> int:
        """SIGKILL one node by its pid, as a crash would; the pid killed (the process has exited)."""
        try:
            return self._node(node_id).kill()
        except KafkaLocalError as exc:
            raise KafkaClusterError(str(exc)) from None

    def start_node(self, node_id: int, timeout: float = 120.0, in_sync: bool = True) -> None:
        """(Re)start one node and wait until its broker is registered again and, with ``in_sync``,
        until every partition of the project's topics has its full ISR (the node caught up)."""
        deadline = time.monotonic() + timeout
        try:
            self._node(node_id).start(timeout)
        except KafkaLocalError as exc:
            raise KafkaClusterError(str(exc)) from None
        if in_sync:
            self.wait_in_sync(max(1.0, deadline - time.monotonic()))

    def wait_in_sync(self, timeout: float = 120.0) -> None:
        """Until every partition of the project's topics has all its replicas in sync."""
        lagging: list[str] = []

        def whole() -> bool:
            nonlocal lagging
            try:
                lagging = self.under_replicated()
            except (TopicError, KafkaError) as exc:
                lagging = [f"cannot describe the topics: {exc}"]
            return not lagging

        self._wait(whole, time.monotonic() + timeout, "every partition in sync", lambda: "; ".join(lagging[:5]))

    # -- helpers -------------------------------------------------------------------------

    def _node(self, node_id: int) -> LocalKafka:
        if node_id not in self.nodes:
            raise KafkaClusterError(f"no Kafka node {node_id}; the cluster has {sorted(self.nodes)}")
        return self.nodes[node_id]

    @staticmethod
    def _each(nodes: list[LocalKafka], action: Callable[[LocalKafka], T]) -> list[T]:
        """``action`` on every node in parallel threads (each mostly waits on a JVM); its first error raised."""
        if not nodes:
            return []
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            return list(pool.map(action, nodes))

    @staticmethod
    def _wait(condition: Callable[[], bool], deadline: float, what: str,
              detail: Callable[[], str] = lambda: "") -> None:
        while not condition():
            if time.monotonic() > deadline:
                why = detail()
                raise KafkaClusterError(f"Kafka cluster: not {what} in time" + (f": {why}" if why else ""))
            time.sleep(0.5)
