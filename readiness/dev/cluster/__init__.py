"""The cluster profile on one machine (``READINESS_ENV=cluster``): real multi-node engines on loopback.

- :mod:`~readiness.dev.cluster.kafka`: three KRaft nodes (combined broker + controller), topics with
  replication factor 3 and ``min.insync.replicas=2``;
- :mod:`~readiness.dev.cluster.spark`: a Spark standalone master and its workers, through pyspark's
  ``spark-class``;
- :mod:`~readiness.dev.cluster.airflow`: Airflow on PostgreSQL with the CeleryExecutor on Redis, its
  API server, scheduler, DAG processor and Celery workers;
- :mod:`~readiness.dev.cluster.cli`: ``python -m readiness.dev.cluster up|down|status|run``
  (``make cluster-up``, ``make cluster-down``, ``make cluster-run``).

Every service has its own ports (the settings of the ``cluster`` profile) and data directory under
``<var_dir>`` (``var/cluster/``); the lake is a directory every node reads and writes.
"""
