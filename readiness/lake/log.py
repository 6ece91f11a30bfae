"""The Delta transaction log read without Spark: table versions and the partitions each commit added.

The DAG processor, ``readiness status`` and the task wrappers need "which version is each table
at" and "which periods did these commits touch" without starting a JVM: both are in the table's
``_delta_log`` (``<version>.json`` commit files; the ``add`` actions carry the partition values).
"""
from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from readiness.lake.tables import OPS_PREFIX
from readiness.settings import Settings

_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def table_dir(settings: Settings, name: str) -> Path:
    return Path(settings.table_path(name))


def table_version(path: Path) -> int | None:
    """Latest committed version of the Delta table at ``path`` (highest ``_delta_log/N.json``), or None."""
    log = Path(path) / "_delta_log"
    if not log.is_dir():
        return None
    versions = [int(m.group(1)) for f in log.iterdir() if (m := _COMMIT_FILE.match(f.name))]
    return max(versions) if versions else None


def lake_versions(settings: Settings) -> dict[str, int]:
    """``table -> latest Delta version`` for every Delta table under the lake directory."""
    lake = Path(settings.lake_dir)
    if not lake.is_dir():
        return {}
    versions = {}
    for child in sorted(lake.iterdir()):
        version = table_version(child)
        if version is not None:
            versions[child.name] = version
    return versions


def versions_written(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Tables whose version changed from ``before`` to ``after``, with the new version.

    The run register (``ops_*``) is left out: other runs write it at any time. Another writer of
    the same data tables in between would show up too; the period locks make that rare.
    """
    return {t: v for t, v in sorted(after.items()) if before.get(t) != v and not t.startswith(OPS_PREFIX)}


def commit_actions(path: Path, after: int | None, upto: int | None) -> Iterator[dict]:
    """The actions (one JSON object per line) of the commits ``after < version <= upto``.

    ``after=None`` starts at version 0; ``upto=None`` reads to the latest commit. A commit file
    that is gone (log cleanup after ``delta.logRetentionDuration``, 30 days by default) raises
    ``FileNotFoundError``: the caller cannot tell what changed and must treat everything as changed.
    """
    path = Path(path)
    upto = table_version(path) if upto is None else upto
    if upto is None:
        return
    for version in range(0 if after is None else after + 1, upto + 1):
        commit = path / "_delta_log" / f"{version:020d}.json"
        with open(commit, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def partitions_added(actions: Iterable[Mapping[str, Any]], column: str = "period_id") -> set[str]:
    """Partition values of ``column`` in the ``add`` actions (files written) of commit actions."""
    values = set()
    for action in actions:
        add = action.get("add")
        if add:
            value = (add.get("partitionValues") or {}).get(column)
            if value:
                values.add(value)
    return values


@dataclass
class VersionChange:
    """The lake's table versions before and after a block of work, and the tables it wrote."""

    before: dict[str, int]
    after: dict[str, int] = field(default_factory=dict)

    @property
    def written(self) -> dict[str, int]:
        return versions_written(self.before, self.after)


@contextlib.contextmanager
def tracking_versions(settings: Settings) -> Iterator[VersionChange]:
    """Record ``lake_versions`` around the block: ``with tracking_versions(s) as change: ...; change.written``."""
    change = VersionChange(before=lake_versions(settings))
    try:
        yield change
    finally:
        change.after = lake_versions(settings)
