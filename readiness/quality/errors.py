"""The gate's error, importable without Great Expectations or Spark (the DAG files catch it)."""
from __future__ import annotations

from typing import Any


class QualityGateError(Exception):
    """The gate failed: a batch rule failed, an expectation errored or was not run, or
    GX's counts and the quarantined rows disagree. ``result`` holds the outcomes when known."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result
