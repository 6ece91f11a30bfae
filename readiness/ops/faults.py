"""Fault injection for the fault tests: a process kills itself with SIGKILL at a named point.

``Settings.fault_point`` names the point (``ingest:committed:bronze_report_events``), optionally
with the occurrence to die at (``...@2``: the second time this process reaches it). It is empty in
every deployment profile; the fault suite sets it in the environment of the job it starts, so a
crash lands exactly between two commits instead of wherever a timer happens to fall.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

from readiness.settings import Settings

_reached: Counter[str] = Counter()


def fault_point(settings: Settings, point: str) -> None:
    """SIGKILL this process if ``settings.fault_point`` names ``point`` (and this occurrence)."""
    if not settings.fault_point:
        return
    name, _, occurrence = settings.fault_point.partition("@")
    if name != point:
        return
    _reached[point] += 1
    if _reached[point] == int(occurrence or 1):
        os.kill(os.getpid(), signal.SIGKILL)
