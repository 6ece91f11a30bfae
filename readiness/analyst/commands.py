"""The analysts' subcommands: ``serve``, ``query`` and ``report``.

``register(subparsers)`` adds them to the ``readiness`` command's argparse subparsers. For a quick
run without the main CLI: ``python -m readiness.analyst.commands query "SELECT ..."``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from readiness.domain.bases import BASES, DEFAULT_BASIS
from readiness.settings import load_settings


def _write_stdout(data: bytes | str) -> None:
    """Bytes to standard output, UTF-8 whatever the locale (a captured stdout takes text)."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode("utf-8") if isinstance(data, bytes) else data)
        return
    sys.stdout.flush()
    buffer.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    buffer.flush()


def _as_of(text: str | None):
    from readiness.analyst.catalog import parse_as_of

    return parse_as_of(text) if text else None


# --- serve -----------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from readiness.analyst.sql_server import SqlServer, SqlServerError, pyspark_home, serve_forever

    server = SqlServer(load_settings(), args.port, args.host)
    try:
        if args.stop:
            print(f"SQL server on {server.url} stopped" if server.stop() else "no SQL server was running")
            return 0
        if args.status:
            status = server.status()
            print(f"SQL server {status.url}: {'answering' if status.answering else 'not answering'}"
                  + (f" (pid {status.pid})" if status.pid else ""))
            return 0 if status.answering else 1
        if args.refresh:
            statements = server.register()
            print(f"registered the lake's tables again on {server.url} ({len(statements)} statements)")
            return 0
        from readiness.analyst.catalog import gold_tables

        if not gold_tables(server.settings):
            print(f"note: no gold tables under {server.settings.lake_dir} yet (run the pipeline first); "
                  "`readiness serve --refresh` registers them once they exist", file=sys.stderr)
        server.start()
    except SqlServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"SQL server (HiveServer2 protocol) on {server.url}\n"
          f"  beeline: {pyspark_home() / 'bin' / 'beeline'} -u {server.url}\n"
          f"  log: {server.log_file}", flush=True)
    if args.detach:
        print(f"running in the background (pid {server.pid()}); `readiness serve --stop` stops it")
        return 0
    print("Ctrl-C stops it.", flush=True)
    return serve_forever(server)


# --- query -----------------------------------------------------------------------------------------

def _read_sql(args: argparse.Namespace) -> str:
    if args.file:
        return Path(args.file).read_text(encoding="utf-8-sig")
    if args.sql in (None, "-"):
        return sys.stdin.read()
    return args.sql


def cmd_query(args: argparse.Namespace) -> int:
    from readiness.analyst.catalog import AsOfError
    from readiness.analyst.export import csv_bytes, format_table, save_csv, write_xlsx

    try:
        as_of = _as_of(args.as_of)
        sql = _read_sql(args).strip().rstrip(";").strip()
    except (AsOfError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not sql:
        print("error: no SQL given (an argument, --file FILE, or standard input)", file=sys.stderr)
        return 2
    from readiness.analyst.query import QueryError, quiet_spark_error_logs, run_query

    quiet_spark_error_logs()
    try:
        result, snapshot = run_query(load_settings(), sql, as_of, args.limit)
    except AsOfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for table, why in snapshot.left_out.items():
        print(f"note: {table} left out: {why}", file=sys.stderr)
    print(f"read {snapshot.describe()}", file=sys.stderr)
    wrote_file = False
    if args.xlsx:
        print(f"wrote {len(result.rows)} rows to {write_xlsx(result, args.xlsx)}", file=sys.stderr)
        wrote_file = True
    if args.csv == "-":
        _write_stdout(csv_bytes(result, bom=args.bom))
    elif args.csv:
        print(f"wrote {len(result.rows)} rows to {save_csv(result, args.csv, bom=args.bom)}", file=sys.stderr)
        wrote_file = True
    if not args.csv and not wrote_file:
        _write_stdout(format_table(result) + "\n")
    return 0


# --- report ----------------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from readiness.analyst.catalog import AsOfError
    from readiness.analyst.report import ReportError, write_report

    try:
        path = write_report(load_settings(), args.period, args.out, args.methodology, args.basis, _as_of(args.as_of))
    except (AsOfError, ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


# --- wiring ----------------------------------------------------------------------------------------

AS_OF_HELP = ("read the tables as published then: YYYY-MM-DD (end of that day, Asia/Ho_Chi_Minh), an ISO "
              "date-time, a Delta version N (every table), TABLE@N[,TABLE@N], or tag:NAME")


def register(subparsers) -> None:
    """Add ``serve``, ``query`` and ``report`` to an argparse subparsers object."""
    p = subparsers.add_parser("serve", help="SQL over JDBC: the Spark Thrift Server with the gold tables in "
                                            "database `readiness` (jdbc:hive2://127.0.0.1:10000/readiness)")
    p.add_argument("--port", type=int, default=None, help="default READINESS_SQL_PORT or 10000")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--detach", action="store_true", help="start, then leave it running in the background")
    mode.add_argument("--stop", action="store_true", help="stop the server started from this environment")
    mode.add_argument("--status", action="store_true", help="say whether it answers (exit 1 if not)")
    mode.add_argument("--refresh", action="store_true", help="register the lake's tables again (new gold tables)")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("query", help="run SQL on the gold tables; print a table, or write CSV / XLSX")
    p.add_argument("sql", nargs="?", help="one SQL statement ('-' or none: read standard input)")
    p.add_argument("-f", "--file", help="read the SQL from this file")
    p.add_argument("--csv", nargs="?", const="-", metavar="FILE", help="CSV (UTF-8) to FILE, or standard output")
    p.add_argument("--bom", action="store_true", help="start the CSV with a UTF-8 byte-order mark (Excel)")
    p.add_argument("--xlsx", metavar="FILE", help="write an Excel workbook")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--limit", type=int, help="at most this many rows")
    p.set_defaults(func=cmd_query)

    p = subparsers.add_parser("report", help="write a period's HTML report with charts; print its path")
    p.add_argument("--period", help="period id, e.g. 2026Q3; default the latest published")
    p.add_argument("--out", help="directory; default <var_dir>/reports")
    p.add_argument("--methodology", default="ict-index")
    p.add_argument("--basis", default=DEFAULT_BASIS, choices=BASES)
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.set_defaults(func=cmd_report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readiness.analyst.commands", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
