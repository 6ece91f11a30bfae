"""Spark job: bronze -> silver + quarantine for one period, gated by Great Expectations.

Submit:  spark-submit --jars ... jobs/validate_reports.py 2026Q3
Locally: python jobs/validate_reports.py 2026Q3
"""
from __future__ import annotations

import json
import sys

from readiness.pipeline.validate import validate_period
from readiness.settings import load_settings


def main(period_id: str) -> None:
    print(json.dumps(validate_period(load_settings(), period_id)))


if __name__ == "__main__":
    main(sys.argv[1])
