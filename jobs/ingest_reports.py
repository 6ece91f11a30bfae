"""Spark job: Kafka report events -> bronze (exactly once, incremental).

Submit:  spark-submit --jars "$(python -m readiness.ops.maven classpath spark-packages)" jobs/ingest_reports.py
Locally: python jobs/ingest_reports.py   (the session is configured from readiness.settings)
"""
from __future__ import annotations

import json

from readiness.pipeline.ingest import ingest_reports
from readiness.settings import load_settings


def main() -> None:
    print(json.dumps(ingest_reports(load_settings())))


if __name__ == "__main__":
    main()
