"""``python -m readiness.dev.cluster``: see :mod:`readiness.dev.cluster.cli`."""
import sys

from readiness.dev.cluster.cli import main

sys.exit(main())
