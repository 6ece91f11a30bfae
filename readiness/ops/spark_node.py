"""A Spark standalone master or worker as the project runs one, here and in production: pyspark's own
``bin/spark-class`` with the daemon's environment (``SPARK_HOME`` the pyspark package, an empty conf
dir, quiet log4j2, the project's interpreter for executors' Python workers).

The cluster profile's daemons (:mod:`readiness.dev.cluster.spark`) and the ``spark-*`` services of
``docker/`` run the same command::

    python -m readiness.ops.spark_node master [--host 0.0.0.0]
    python -m readiness.ops.spark_node worker --index 1 [--host 0.0.0.0]

``spark-class`` ``exec``s the JVM and this module ``exec``s ``spark-class``, so the process keeps one pid
from start to end (what a pid file and a SIGKILL by pid need).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from readiness.settings import PACKAGE_DATA, Settings, load_settings

# The pyspark package is a Spark distribution (bin/, jars/); found without importing it (ops loads no engine).
SPARK_HOME = Path(importlib.util.find_spec("pyspark").origin).resolve().parent  # type: ignore[union-attr, arg-type]
SPARK_CLASS = SPARK_HOME / "bin" / "spark-class"
LOG_CONFIG = PACKAGE_DATA / "log4j2-spark-daemon.properties"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: Heap of the master and of each worker daemon (not of the executors: those get spark.executor.memory).
DAEMON_MEMORY = "512m"
#: The JVM property every daemon carries with its own directory, so a pid from a pid file counts only
#: if that process is this daemon.
MARKER_PROPERTY = "-Dreadiness.spark.daemon="


def port_of(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise ValueError(f"no port in {url!r}")
    return port


def spark_root(settings: Settings) -> Path:
    """Where the daemons of ``settings`` keep their directories: ``<var_dir>/spark``."""
    return settings.var_dir / "spark"


def node_home(settings: Settings, role: str, index: int = 0) -> Path:
    return spark_root(settings) / ("master" if role == "master" else f"worker-{index}")


def daemon_env(settings: Settings, home: Path, host: str) -> dict[str, str]:
    """The environment of one daemon whose directory is ``home``, bound to ``host``."""
    conf_dir = spark_root(settings) / "conf"  # empty: no spark-defaults.conf or spark-env.sh of anyone else's
    conf_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_DIRS": str(home / "local"),
        # A taken port makes the daemon exit at once instead of silently moving to the next one.
        "SPARK_DAEMON_JAVA_OPTS": f"-Dlog4j2.configurationFile={LOG_CONFIG} -Dspark.port.maxRetries=0 "
                                  f"{MARKER_PROPERTY}{home}",
    }
    if host not in ("0.0.0.0", ""):
        env["SPARK_LOCAL_IP"] = host
    for variable in ("SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS", "PYSPARK_DRIVER_PYTHON"):
        env.pop(variable, None)
    return env


def master_args(settings: Settings, host: str) -> list[str]:
    args = [MASTER_CLASS, "--host", host, "--port", str(port_of(settings.spark_master))]
    if settings.spark_master_ui:
        args += ["--webui-port", str(port_of(settings.spark_master_ui))]
    return args


def worker_args(settings: Settings, index: int, host: str, port: int = 0, webui_port: int = 0) -> list[str]:
    """Worker ``index`` (from 1) of ``settings``: its cores and memory, its work dir, the master's URL;
    ports 0: any free one (each worker on its own host)."""
    work = node_home(settings, "worker", index) / "work"
    return [WORKER_CLASS, "--host", host, "--port", str(port), "--webui-port", str(webui_port),
            "--cores", str(settings.spark_worker_cores), "--memory", settings.spark_worker_memory,
            "--work-dir", str(work), settings.spark_master]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readiness.ops.spark_node", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["master", "worker"])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind and advertise (default: loopback)")
    parser.add_argument("--index", type=int, default=1, help="worker number, from 1 (its directory)")
    parser.add_argument("--port", type=int, default=0, help="worker RPC port (default: any free one)")
    parser.add_argument("--webui-port", type=int, default=0, help="worker UI port (default: any free one)")
    args = parser.parse_args(argv)
    settings = load_settings()
    home = node_home(settings, args.role, args.index)
    home.mkdir(parents=True, exist_ok=True)
    spark_args = (master_args(settings, args.host) if args.role == "master"
                  else worker_args(settings, args.index, args.host, args.port, args.webui_port))
    os.chdir(home)
    os.execve(str(SPARK_CLASS), [str(SPARK_CLASS), *spark_args], daemon_env(settings, home, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
