"""Spark job: silver -> gold (indicator values, readiness index and ranking, completeness) for one period.

Submit:  spark-submit --jars ... jobs/aggregate_readiness.py 2026Q3
Locally: python jobs/aggregate_readiness.py 2026Q3
"""
from __future__ import annotations

import json
import sys

from readiness.pipeline.aggregate import aggregate_period
from readiness.settings import load_settings


def main(period_id: str) -> None:
    print(json.dumps(aggregate_period(load_settings(), period_id)))


if __name__ == "__main__":
    main(sys.argv[1])
