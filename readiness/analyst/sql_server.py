"""``readiness serve``: the Spark Thrift Server (HiveServer2 protocol) over the gold tables.

The server is the ``HiveThriftServer2`` that ships with pyspark, started with ``spark-submit`` from
pyspark's ``bin`` with the Delta jars and Delta's SQL extension and catalog, on loopback. Its Hive
metastore (embedded Derby, under ``<var_dir>/sql-server``) is rebuilt at every start from the Delta
tables present in the lake, so it never drifts from the lake:

- ``readiness_delta.<gold table>``: external Delta tables at their paths (``DESCRIBE HISTORY``,
  ``VERSION AS OF`` / ``TIMESTAMP AS OF``);
- ``readiness.<gold table>``: a view of each, with the table's description and every column's
  comment (units, time zone). Views, because the metastore entry of a Delta table holds no columns
  (Delta keeps its schema in its log), so JDBC clients (``getColumns``: DBeaver, Power BI, Excel)
  would list none, and column comments on a Delta table would be commits to the gold tables;
- ``readiness.ref_provinces`` and ``readiness.ref_indicators``: Vietnamese names, units.

The DDL goes through the server itself with beeline, the HiveServer2 client in pyspark's ``bin``.
SIGTERM stops the server cleanly (Spark's shutdown hooks close the sessions and the context).
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from readiness.analyst.catalog import (
    DATABASE,
    DATABASE_COMMENT,
    DELTA_DATABASE,
    DELTA_DATABASE_COMMENT,
    REFERENCE_COLUMNS,
    column_comment,
    delta_columns,
    gold_tables,
    reference_select,
    sql_string,
    table_description,
)
from readiness.lake.spark import LOG_CONFIG, java_options
from readiness.ops.maven import pyspark_jars_dir, spark_package_jars
from readiness.settings import Settings, load_settings

DEFAULT_PORT = 10000
MAIN_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
# The JVMs read and write UTF-8 whatever the caller's locale (SQL files, beeline's output).
UTF8_JAVA_OPTIONS = "-Dfile.encoding=UTF-8 -Dsun.stdout.encoding=UTF-8 -Dsun.stderr.encoding=UTF-8"


class SqlServerError(RuntimeError):
    """The server did not start, did not take the DDL, or a beeline call failed."""


def default_port(settings: Settings | None = None) -> int:
    return (settings or load_settings()).sql_port


def jdbc_url(port: int = DEFAULT_PORT, host: str = "127.0.0.1", database: str = DATABASE) -> str:
    return f"jdbc:hive2://{host}:{port}/{database}"


def pyspark_home() -> Path:
    return pyspark_jars_dir().parent


def jvm_env(extra: dict[str, str] | None = None, java_options: str = "") -> dict[str, str]:
    """Environment for the JVMs started from pyspark's ``bin``: its own Spark home, UTF-8."""
    env = dict(os.environ)
    env["SPARK_HOME"] = str(pyspark_home())
    env.pop("SPARK_CONF_DIR", None)
    env["LC_ALL"] = "C.UTF-8"
    env["JAVA_TOOL_OPTIONS"] = " ".join(filter(None, [env.get("JAVA_TOOL_OPTIONS", ""), UTF8_JAVA_OPTIONS, java_options]))
    env.update(extra or {})
    return env


def beeline_env() -> dict[str, str]:
    """beeline's environment: UTF-8, and csv2/tsv2 output quoted where a value needs it (RFC 4180)."""
    return jvm_env(java_options="-Ddisable.quoting.for.sv=false")


# --- DDL -------------------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comment(text: str) -> str:
    return sql_string(_one_line(text))


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def gold_table_ddl(table: str, location: str, columns: list[str]) -> list[str]:
    """The external Delta table and its described view."""
    described = ", ".join(f"{_quoted(c)} COMMENT {_comment(column_comment(table, c))}" for c in columns)
    selected = ", ".join(_quoted(c) for c in columns)
    return [
        f"CREATE TABLE IF NOT EXISTS {DELTA_DATABASE}.{table} USING DELTA LOCATION {sql_string(location)}",
        f"CREATE OR REPLACE VIEW {DATABASE}.{table} ({described}) COMMENT {_comment(table_description(table))} "
        f"TBLPROPERTIES ('readiness.delta_table' = '{DELTA_DATABASE}.{table}', "
        f"'readiness.delta_location' = {sql_string(location)}) "
        f"AS SELECT {selected} FROM {DELTA_DATABASE}.{table}",
    ]


def reference_view_ddl(name: str) -> str:
    described = ", ".join(f"{_quoted(c)} COMMENT {_comment(column_comment(name, c))}" for c, _ in REFERENCE_COLUMNS[name])
    return (f"CREATE OR REPLACE VIEW {DATABASE}.{name} ({described}) COMMENT {_comment(table_description(name))} "
            f"AS {_one_line(reference_select(name))}")


def ddl_statements(settings: Settings) -> list[str]:
    """Every statement that registers the lake's gold tables and the reference views (no Spark)."""
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {DELTA_DATABASE} COMMENT {_comment(DELTA_DATABASE_COMMENT)}",
        f"CREATE DATABASE IF NOT EXISTS {DATABASE} COMMENT {_comment(DATABASE_COMMENT)}",
    ]
    for table in gold_tables(settings):
        location = str(Path(settings.table_path(table)).resolve())
        statements += gold_table_ddl(table, location, delta_columns(location))
    statements += [reference_view_ddl(name) for name in REFERENCE_COLUMNS]
    return statements


# --- beeline ---------------------------------------------------------------------------------------

def beeline_command(url: str, *, sql: str | None = None, file: Path | None = None,
                    outputformat: str = "csv2") -> list[str]:
    """argv of beeline (pyspark's HiveServer2 JDBC client) running ``sql`` or a script ``file``."""
    cmd = [str(pyspark_home() / "bin" / "beeline"), "-u", url, "-n", os.environ.get("USER", "analyst"),
           f"--outputformat={outputformat}", "--silent=true", "--showHeader=true"]
    if sql is not None:
        cmd += ["-e", sql]
    if file is not None:
        cmd += ["-f", str(file)]
    return cmd


def beeline(url: str, *, sql: str | None = None, file: Path | None = None, outputformat: str = "csv2",
            timeout: float = 300) -> str:
    """Run beeline and return its standard output; raise ``SqlServerError`` if a statement failed."""
    proc = subprocess.run(beeline_command(url, sql=sql, file=file, outputformat=outputformat), env=beeline_env(),
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    if proc.returncode != 0 or errors:
        raise SqlServerError(f"beeline exited {proc.returncode}: " + ("\n".join(errors) or proc.stderr[-3000:]))
    return proc.stdout


_PROMPT = re.compile(r"^\d+: jdbc:hive2://\S*> ")


def parse_csv2(output: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one result printed by beeline with ``--outputformat=csv2`` (quoting on).

    beeline can echo its prompt in front of the header; that is dropped. Empty lines are not rows.
    """
    text = _PROMPT.sub("", output.lstrip("\n"), count=1)
    records = [r for r in csv.reader(io.StringIO(text)) if r]
    if not records:
        return [], []
    return records[0], records[1:]


def query_csv2(url: str, sql: str, timeout: float = 300) -> tuple[list[str], list[list[str]]]:
    """Run one query through beeline and return its header and rows as text."""
    return parse_csv2(beeline(url, sql=sql, timeout=timeout))


# --- the server ------------------------------------------------------------------------------------

def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class ServerStatus:
    pid: int | None
    answering: bool
    url: str


class SqlServer:
    """The Thrift server of one environment: ``start()``, ``register()``, ``stop()``; a context manager."""

    def __init__(self, settings: Settings, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.port = port if port is not None else default_port()
        self.host = host
        self.dir = Path(settings.var_dir) / "sql-server"
        self.pid_file = self.dir / "server.pid"
        self.log_file = self.dir / "thriftserver.log"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return jdbc_url(self.port, self.host)

    def command(self) -> list[str]:
        jars = [str(p) for p in spark_package_jars(self.settings)]
        metastore = self.dir / "metastore_db"
        confs = {
            "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "spark.sql.warehouse.dir": str(self.dir / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore};create=true",
            "spark.driver.extraJavaOptions": java_options(self.settings, f"-Dderby.system.home={self.dir}",
                                                          f"-Dlog4j2.configurationFile={LOG_CONFIG}"),
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(self.settings.spark_shuffle_partitions),
            "spark.ui.enabled": "false" if self.settings.env != "production" else "true",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.adaptive.enabled": "true",
        }
        cmd = [str(pyspark_home() / "bin" / "spark-submit"), "--class", MAIN_CLASS, "--name", "readiness-sql",
               "--master", self.settings.spark_master, "--driver-memory", self.settings.spark_driver_memory,
               # On the driver's class path too: the server's sessions load the Delta catalog from it.
               "--jars", ",".join(jars), "--driver-class-path", os.pathsep.join(jars)]
        for key, value in confs.items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += ["--hiveconf", f"hive.server2.thrift.port={self.port}",
                "--hiveconf", f"hive.server2.thrift.bind.host={self.host}",
                "--hiveconf", "hive.server2.transport.mode=binary"]
        return cmd + ["spark-internal"]

    # -- process bookkeeping --

    def pid(self) -> int | None:
        """Pid of the server started from this var dir (on whichever port), if it is still that server."""
        try:
            pid, port = (int(v) for v in self.pid_file.read_text().split()[:2])
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        return pid if MAIN_CLASS in cmdline and f"hive.server2.thrift.port={port}" in cmdline else None

    def status(self) -> ServerStatus:
        return ServerStatus(self.pid(), _port_open(self.host, self.port), self.url)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- lifecycle --

    def start(self, timeout: float = 240.0) -> None:
        """Start the server, wait until it answers, and register the tables; raise if it cannot."""
        if self.pid() is not None:
            raise SqlServerError(f"a SQL server from {self.dir} already runs (pid {self.pid()}) on {self.url}")
        if _port_open(self.host, self.port):
            raise SqlServerError(f"port {self.port} on {self.host} is taken by another process")
        self.dir.mkdir(parents=True, exist_ok=True)
        # A fresh metastore each time: the catalog is derived from the lake, never edited by hand.
        shutil.rmtree(self.dir / "metastore_db", ignore_errors=True)
        shutil.rmtree(self.dir / "warehouse", ignore_errors=True)
        env = jvm_env({"SPARK_LOCAL_IP": "127.0.0.1"} if self.settings.spark_master.startswith("local") else None)
        with self.log_file.open("w", encoding="utf-8") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                             cwd=self.dir, start_new_session=True)
        self.pid_file.write_text(f"{self._process.pid} {self.port}\n")
        try:
            self._wait_until_answering(timeout)
            self.register()
        except BaseException:  # Ctrl-C while starting included: never leave a half-started server
            self.stop()
            raise

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not _port_open(self.host, self.port):
            if self._process.poll() is not None:
                raise SqlServerError(f"the SQL server exited with {self._process.returncode} while starting; "
                                     f"log {self.log_file}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise SqlServerError(f"the SQL server did not answer on {self.host}:{self.port} within "
                                     f"{timeout:.0f}s; log {self.log_file}:\n{self.log_tail()}")
            time.sleep(0.5)

    def register(self) -> list[str]:
        """(Re-)register the lake's gold tables and the reference views; return the statements run."""
        statements = ddl_statements(self.settings)
        script = self.dir / "register.sql"
        script.write_text("".join(s + ";\n" for s in statements), encoding="utf-8")
        beeline(jdbc_url(self.port, self.host, "default"), file=script)
        return statements

    def wait(self) -> int:
        """Block until the server exits (started by this object); return its exit code."""
        if self._process is None:
            raise SqlServerError("wait() needs a server started by this process")
        return self._process.wait()

    def stop(self, timeout: float = 60.0) -> bool:
        """SIGTERM the server (then SIGKILL after ``timeout``); return whether one was running."""
        pid = self._process.pid if self._process is not None and self._process.poll() is None else self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                if self._process.poll() is not None:
                    return True
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return True
                if self.pid() is None:  # a zombie or another process now: no longer our server
                    return True
            time.sleep(0.2)
        return False

    def __enter__(self) -> SqlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(server: SqlServer) -> int:
    """Run until Ctrl-C or SIGTERM, then stop the server; return its exit code."""
    def on_signal(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    # Installed even where a shell left SIGINT ignored (a background job): Ctrl-C, kill and a closed
    # terminal all stop the server cleanly.
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in handled}
    try:
        code = server.wait()
        print(f"the SQL server exited with {code}; log {server.log_file}:\n{server.log_tail()}", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        print("stopping the SQL server ...", file=sys.stderr)
        server.stop()
        print("SQL server stopped", file=sys.stderr)
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
