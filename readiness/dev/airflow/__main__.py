"""``python -m readiness.dev.airflow ...``: runs :func:`readiness.dev.airflow.cli.main`."""
import sys

from readiness.dev.airflow.cli import main

if __name__ == "__main__":
    sys.exit(main())
