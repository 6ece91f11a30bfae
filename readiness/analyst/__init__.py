"""The ministry analysts' side: SQL over JDBC, query and export commands, the HTML report.

- ``catalog``: which gold tables exist, their descriptions and column comments, "as of" snapshots.
- ``sql_server``: the Spark Thrift Server (HiveServer2 protocol) with the gold tables in ``readiness``.
- ``query`` / ``export``: ``readiness query`` in-process, printed or written as CSV or XLSX.
- ``report``: ``readiness report``, a self-contained HTML report with inline SVG charts.
- ``commands``: the ``serve``, ``query`` and ``report`` subcommands (``register(subparsers)``).
"""
