"""The encoding benchmark runs end to end on a few events: positive rates on both sides and a
computed ratio. No timing assertions (speed claims come from `make bench`, not from tests)."""
from __future__ import annotations

import math

from bench import encoding


def test_encoding_benchmark_reports_rates_and_ratios():
    result = encoding.run(n_events=20, repeats=1)
    assert result["events"] == 20
    for key in ("project_encode", "reference_encode", "project_decode", "reference_decode"):
        assert result["median"][key] > 0
    for key in ("ratio_encode", "ratio_decode"):
        assert math.isfinite(result[key]) and result[key] > 0
    # Both codecs do the same work: the same bytes and the same decoded records.
    assert result["identical_bytes"] and result["identical_decoded_records"]


def test_encoding_breakdown_has_a_rate_per_part():
    parts = encoding.breakdown(n_events=10, rounds=1)
    assert parts and all(rate > 0 for rate in parts.values())
