"""Running the pipeline's jobs as real processes and killing them, for the fault tests.

A job runs as ``python`` in a child process with the test's settings in its environment. It either
dies at a named fault point (``Settings.fault_point``, the process SIGKILLs itself) or is killed
by the test with SIGKILL after a delay, by the pid the test started. Either way the Spark JVM the
job launched is waited for (and killed by its pid if it outlives its parent), so the next run
never shares the lake with a half-dead writer.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from kafka import KafkaConsumer, TopicPartition

from readiness.lake.tables import BRONZE_REPORTS, BRONZE_TARGETS, DEAD_LETTERS, INGEST_CHECKPOINT
from readiness.ops.kafka_client import ADMIN, kafka_python_config
from readiness.settings import PROJECT_ROOT, Settings, env_name, settings_env

BRONZE = (BRONZE_REPORTS, BRONZE_TARGETS, DEAD_LETTERS)
INGEST = [sys.executable, str(PROJECT_ROOT / "jobs" / "ingest_reports.py")]


def refresh_command(period_id: str) -> list[str]:
    """Validate and publish one period in one Spark session (the DAG's refresh task)."""
    code = ("import json, sys; from readiness.orchestration.tasks import refresh_period; "
            "from readiness.settings import load_settings; "
            "print(json.dumps(refresh_period(load_settings(), sys.argv[1]), default=str))")
    return [sys.executable, "-c", code, period_id]


@dataclass
class JobRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def result(self) -> dict:
        """The job's JSON result (its last stdout line); only for a run that finished."""
        assert self.returncode == 0, f"job failed ({self.returncode}):\n{self.stderr[-3000:]}"
        return json.loads(self.stdout.strip().splitlines()[-1])


def _reap(children: dict[int, psutil.Process], timeout: float = 60.0) -> None:
    _, alive = psutil.wait_procs(list(children.values()), timeout=timeout)
    for proc in alive:  # a JVM that outlived its Python parent: ours, by the pid we saw it run under
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(alive, timeout=30)


def run_job(settings: Settings, command: list[str], fault_point: str = "", kill_after: float | None = None,
            timeout: float = 600.0) -> JobRun:
    """Run a job to its end, to its fault point, or until ``kill_after`` seconds, then SIGKILL it."""
    env = {**os.environ, **settings_env(settings), env_name("fault_point"): fault_point}
    logs = settings.var_dir / "job-logs"
    logs.mkdir(parents=True, exist_ok=True)
    n = len(list(logs.glob("*.out")))
    out_path, err_path = logs / f"{n:03d}.out", logs / f"{n:03d}.err"
    started = time.monotonic()
    with open(out_path, "w") as out_file, open(err_path, "w") as err_file:  # files: a full pipe would block
        proc = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=out_file, stderr=err_file)
    children: dict[int, psutil.Process] = {}
    watched = psutil.Process(proc.pid)
    deadline = started + (kill_after if kill_after is not None else timeout)
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            children.update({c.pid: c for c in watched.children(recursive=True)})
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    overran = proc.poll() is None and kill_after is None
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    _reap(children)
    if overran:
        raise AssertionError(f"job did not end within {timeout:.0f} s: {command}; log {err_path}")
    return JobRun(proc.returncode, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                  time.monotonic() - started)


def table_rows(settings: Settings, name: str, columns: list[str] | None = None) -> list[dict]:
    """A Delta table's rows, read with ``deltalake`` (no Spark in the test process); [] if absent."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(str(settings.table_path(name)))
    except TableNotFoundError:
        return []
    return table.to_pyarrow_table(columns=columns).to_pylist()


def table_version(settings: Settings, name: str) -> int | None:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(str(settings.table_path(name))).version()
    except TableNotFoundError:
        return None


def checkpoint_path(settings: Settings) -> Path:
    return settings.checkpoint_dir / INGEST_CHECKPOINT


def topic_offsets(settings: Settings) -> set[tuple[str, int, int]]:
    """Every offset on the test's two topics (the producer is idempotent, not transactional:
    each offset is one record)."""
    consumer = KafkaConsumer(**kafka_python_config(settings, ADMIN), enable_auto_commit=False)
    try:
        found = set()
        for topic in (settings.topic_reports, settings.topic_targets):
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            begin, end = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
            found |= {(topic, tp.partition, o) for tp in parts for o in range(begin[tp], end[tp])}
        return found
    finally:
        consumer.close()


def bronze_positions(settings: Settings) -> list[tuple[str, int, int]]:
    return [(r["topic"], r["partition"], r["offset"]) for name in BRONZE
            for r in table_rows(settings, name, ["topic", "partition", "offset"])]


def assert_nothing_doubled(settings: Settings) -> None:
    held = bronze_positions(settings)
    assert len(held) == len(set(held)), "an offset is in bronze twice"


def assert_exactly_once(settings: Settings) -> tuple[int, int]:
    """Every offset on the topics is in bronze once; returns (lost, doubled), both asserted 0."""
    held, expected = bronze_positions(settings), topic_offsets(settings)
    lost, doubled = len(expected - set(held)), len(held) - len(set(held))
    assert (lost, doubled, set(held) - expected) == (0, 0, set())
    return lost, doubled


MATRIX = PROJECT_ROOT / "var" / "reports" / "fault_matrix.jsonl"


def record_fault(**row: object) -> None:
    """Append one measured row of the fault matrix (docs/reliability.md is written from these)."""
    MATRIX.parent.mkdir(parents=True, exist_ok=True)
    with open(MATRIX, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, default=str) + "\n")


def _canonical(value: object) -> object:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        items = [_canonical(v) for v in value]
        return sorted(items, key=repr) if all(isinstance(v, (list, tuple)) for v in value) else items
    return value


def canonical_rows(rows: list[dict]) -> list[str]:
    """Rows in a form two lakes can be compared by: each canonical (lists of pairs in a fixed order), sorted."""
    return sorted(repr(_canonical(row)) for row in rows)


def snapshot(settings: Settings, name: str, period_id: str | None = None) -> list[str]:
    """A table's rows (one period's, with ``period_id``) as :func:`canonical_rows`."""
    rows = table_rows(settings, name)
    return canonical_rows([r for r in rows if period_id is None or r.get("period_id") == period_id])
