"""Shared helpers: the machine description, a local broker on free ports, process-tree memory
sampling and small statistics. Nothing here measures anything by itself."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psutil

from readiness.dev.airflow.processes import kill_group
from readiness.dev.provision import shared_deployment_files
from readiness.settings import PROJECT_ROOT, Settings, load_settings

#: The simulation every benchmark draws from: fixed seed and "now", so runs see the same events.
SEED = 2025
AS_OF = datetime(2026, 11, 1, tzinfo=timezone.utc)
PYTHON = sys.executable
BENCH_CMD = ".venv/bin/python -m bench.run"


def free_port() -> int:
    """A TCP port free on loopback right now (the OS picks it for a port-0 bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_settings(var_dir: Path) -> Settings:
    """CI settings on free loopback ports with ``var_dir``; jars stay in the project cache. The
    deployment's CA, passwords and key registry are named, so a benchmark's own var dir still
    connects and signs."""
    return load_settings(env="ci", var_dir=var_dir, kafka_bootstrap=f"127.0.0.1:{free_port()}",
                         kafka_controller_port=free_port(), **shared_deployment_files(var_dir))


def with_topic(settings: Settings, name: str, var_dir: Path | None = None) -> Settings:
    """The same broker, a topic (and optionally a var dir) of the benchmark's own."""
    changes: dict[str, object] = {"topic_reports": f"bench.{name}.reports", "topic_targets": f"bench.{name}.targets"}
    if var_dir is not None:
        changes["var_dir"] = var_dir
    return dataclasses.replace(settings, **changes)


@contextlib.contextmanager
def local_broker(settings: Settings, plaintext_baseline: bool = False) -> Iterator[Settings]:
    """Start the project's local Kafka broker for ``settings``; always stopped on exit."""
    from readiness.dev.kafka_broker import LocalKafka

    kafka = LocalKafka(settings, plaintext_baseline=plaintext_baseline)
    kafka.start()
    try:
        yield settings
    finally:
        kafka.stop()


def ensure_topic(settings: Settings) -> None:
    from readiness.ops.topics import ensure_topics

    ensure_topics(settings)


Keyed = list[tuple[str, bytes]]


def encode_batch(batch) -> tuple[Keyed, Keyed]:
    """A simulated batch as (province key, message) pairs: the reports with the undecodable
    messages, and the yearly target plans where the simulator makes them (the ingest job reads
    their topic too)."""
    from readiness.contracts.encoding import TARGET_PLAN, encode

    reports = [(r["province_code"], encode(r)) for r in batch.reports] + list(batch.corrupt)
    targets = [(t["province_code"], encode(t, TARGET_PLAN)) for t in getattr(batch, "targets", [])]
    return reports, targets


def send_batch(settings: Settings, reports: Keyed, targets: Keyed, timeout: float = 600) -> None:
    """Send already-encoded reports and target plans to the settings' topics; raise unless every
    one was acknowledged."""
    from readiness.contracts.producer import ReportProducer

    with ReportProducer(settings) as producer:
        result = producer.send_raw(settings.topic_reports, reports, timeout=timeout)
        if targets:
            result = result.merge(producer.send_raw(settings.topic_targets, targets, timeout=timeout))
    if result.not_acknowledged:
        raise RuntimeError(f"{result.not_acknowledged} events were not acknowledged")


# -- memory ------------------------------------------------------------------------------------

class TreeRssSampler:
    """Samples a process and all its descendants (Spark JVM, Python workers) every ``interval``
    seconds in a background thread.

    - ``peak``: the largest summed RSS seen, in bytes. A sum of RSS counts pages shared between
      processes more than once, so it is an upper bound of what the tree needs (what a container's
      memory limit would have to allow).
    - ``cpu_seconds``: user + system CPU time of every process seen, as last sampled (a process's
      last ``interval`` before it exits is missed). CPU time stretches much less than wall time when
      other work competes for the cores.
    - ``mean_load``: the mean 1-minute load average while the tree ran.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._cpu: dict[tuple[int, float], float] = {}
        self._loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    @property
    def mean_load(self) -> float:
        return sum(self._loads) / len(self._loads) if self._loads else float(os.getloadavg()[0])

    def _sample(self) -> int:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                with proc.oneshot():
                    total += proc.memory_info().rss
                    times = proc.cpu_times()
                    self._cpu[(proc.pid, proc.create_time())] = times.user + times.system
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            if self.samples % 10 == 0:
                self._loads.append(os.getloadavg()[0])
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeRssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], timeout: float, env: dict[str, str] | None = None,
                 log_path: Path | None = None) -> tuple[int | None, float, TreeRssSampler]:
    """Run ``cmd`` in a fresh process group; return (exit code or None on timeout, wall seconds,
    the sampler: peak tree RSS, CPU seconds, mean load). On timeout the whole group is killed (it
    is ours: we started it)."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        with TreeRssSampler(proc.pid) as sampler:
            try:
                code: int | None = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                code = None
                kill_group(proc, grace=20)
        return code, time.perf_counter() - started, sampler
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]


# -- statistics --------------------------------------------------------------------------------

def median(values: list[float]) -> float:
    return float(statistics.median(values))


def spread(values: list[float]) -> str:
    """'min-max' of the repeats, for the tables."""
    return f"{min(values):,.0f}-{max(values):,.0f}" if len(values) > 1 else f"{values[0]:,.0f}"


# -- the machine -------------------------------------------------------------------------------

def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _java_version() -> str:
    java = shutil.which("java")
    if not java:
        return "not found"
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    first = out.strip().splitlines()[0] if out.strip() else "unknown"
    runtime = re.search(r"Runtime Environment \(build ([^)]+)\)", out)
    return f"{first}" + (f" (build {runtime.group(1)})" if runtime else "")


def machine() -> dict[str, object]:
    """Cores, memory, CPU model, OS, Python and Java versions of the machine the run is on."""
    import duckdb
    import fastavro
    import pyspark

    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": _java_version(),
        "pyspark": pyspark.__version__,
        "fastavro": fastavro.__version__,
        "duckdb": duckdb.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
