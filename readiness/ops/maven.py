"""Fetch the JVM artifacts the platform runs on (Kafka broker, Spark packages) with Maven.

Each *bundle* is a resolve-only POM under ``build/maven/``. ``mvn dependency:copy-dependencies``
copies its runtime dependency closure into ``<cache_dir>/jars/<bundle>``; a ``.complete`` marker
holding a fingerprint of the POM makes later calls a no-op, so after the first fetch everything
works offline and without ``mvn``.

    python -m readiness.ops.maven fetch [bundle ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from readiness.ops.locks import file_lock
from readiness.settings import PROJECT_ROOT, Settings, load_settings

POM_DIR = PROJECT_ROOT / "build" / "maven"
MARKER = ".complete"
# Pinned so that resolution does not depend on the Maven version's default plugin.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_LIST_FILE = ".dependencies.txt"


class MavenError(RuntimeError):
    """Maven is missing, or it failed to resolve a bundle."""


@dataclass(frozen=True)
class Bundle:
    name: str
    pom: Path
    # Drop artifacts pyspark already ships in pyspark/jars: two versions of one library on
    # the driver classpath (Scala, Spark itself, Hadoop client) break Spark in subtle ways.
    exclude_pyspark_jars: bool = False


BUNDLES: dict[str, Bundle] = {
    "kafka-broker": Bundle("kafka-broker", POM_DIR / "kafka-broker.xml"),
    "spark-packages": Bundle(
        "spark-packages", POM_DIR / "spark-packages.xml", exclude_pyspark_jars=True
    ),
}


def _bundle(name: str) -> Bundle:
    try:
        return BUNDLES[name]
    except KeyError:
        raise ValueError(f"unknown bundle {name!r}; expected one of {sorted(BUNDLES)}") from None


def pyspark_jars_dir() -> Path:
    """The ``jars`` directory of the installed pyspark, found without importing it."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise MavenError("pyspark is not installed; cannot tell which jars it already ships")
    return Path(next(iter(spec.submodule_search_locations))) / "jars"


def _fingerprint(bundle: Bundle) -> str:
    digest = hashlib.sha256(bundle.pom.read_bytes())
    if bundle.exclude_pyspark_jars:
        # The exclusion depends on the pyspark install, so a pyspark upgrade refetches.
        digest.update("\n".join(sorted(p.name for p in pyspark_jars_dir().glob("*.jar"))).encode())
    return digest.hexdigest()


def bundle_dir(name: str, settings: Settings) -> Path:
    return settings.cache_dir / "jars" / name


def _is_complete(target: Path, fingerprint: str) -> bool:
    marker = target / MARKER
    return marker.is_file() and marker.read_text().strip() == fingerprint


def _run_maven(bundle: Bundle, output_dir: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenError(
            f"`mvn` is not on PATH; install Maven 3.8+ to fetch bundle {bundle.name!r} "
            f"(needed once, then cached under {output_dir.parent})"
        )
    cmd = [
        mvn, "-q", "-B", "-f", str(bundle.pom),
        f"{DEPENDENCY_PLUGIN}:list", f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        f"-DoutputFile={output_dir / _LIST_FILE}",
        "-DincludeScope=runtime",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # Maven's ANSI resets
        tail = "\n".join(output.strip().splitlines()[-30:])
        raise MavenError(
            f"mvn failed (exit {proc.returncode}) fetching bundle {bundle.name!r}:\n"
            f"  {' '.join(cmd)}\n{tail}"
        )


def _resolved_artifacts(list_file: Path) -> list[tuple[str, str]]:
    """``(artifactId, jar file name)`` pairs from a ``dependency:list`` output file.

    Lines look like ``g:a:jar:v:scope`` or ``g:a:jar:classifier:v:scope``, optionally
    followed by `` -- module ...``.
    """
    pairs = []
    for line in list_file.read_text().splitlines():
        coords = line.strip().split(" ", 1)[0].split(":")
        if len(coords) not in (5, 6) or coords[2] != "jar":
            continue
        artifact, version = coords[1], coords[-2]
        classifier = f"-{coords[3]}" if len(coords) == 6 else ""
        pairs.append((artifact, f"{artifact}-{version}{classifier}.jar"))
    return pairs


def _drop_pyspark_duplicates(staging: Path) -> None:
    """Delete staged jars whose artifact (name without version) pyspark already ships."""
    shipped = [p.name for p in pyspark_jars_dir().glob("*.jar")]
    for artifact, jar in _resolved_artifacts(staging / _LIST_FILE):
        pattern = re.compile(re.escape(artifact) + r"-\d[^/]*\.jar")
        if any(pattern.fullmatch(name) for name in shipped):
            (staging / jar).unlink(missing_ok=True)


def fetch_bundle(name: str, settings: Settings) -> Path:
    """Make sure bundle ``name`` is in the jar cache and return its directory.

    A no-op (no Maven, no network) once the bundle's ``.complete`` marker matches its POM.
    The copy goes to a staging directory that replaces the bundle in one rename, so an
    interrupted fetch never leaves a half-filled bundle that looks complete.
    """
    bundle = _bundle(name)
    target = bundle_dir(name, settings)
    fingerprint = _fingerprint(bundle)
    if _is_complete(target, fingerprint):
        return target
    with file_lock(target.parent / f".{name}.lock"):  # one fetch of a bundle at a time across processes
        if _is_complete(target, fingerprint):  # another process fetched it meanwhile
            return target
        staging = target.parent / f".{name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            _run_maven(bundle, staging)
            if bundle.exclude_pyspark_jars:
                _drop_pyspark_duplicates(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        (staging / MARKER).write_text(fingerprint + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def bundle_jars(name: str, settings: Settings) -> list[Path]:
    """Sorted jar paths of bundle ``name``, fetching it first if needed."""
    return sorted(fetch_bundle(name, settings).glob("*.jar"))


def spark_package_jars(settings: Settings) -> list[Path]:
    """Jars to add to ``spark.jars``: the Kafka source/sink and Delta Lake, minus pyspark's own."""
    return bundle_jars("spark-packages", settings)


def kafka_broker_classpath(settings: Settings) -> list[Path]:
    """Classpath of the Kafka 4.0.1 broker, its tools and the log4j2 SLF4J binding."""
    return bundle_jars("kafka-broker", settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readiness.ops.maven", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch bundles (default: all) into the jar cache")
    fetch.add_argument("bundles", nargs="*", metavar="bundle", help=", ".join(sorted(BUNDLES)))
    classpath = sub.add_parser("classpath", help="print a bundle's jars, comma separated (for spark-submit --jars)")
    classpath.add_argument("bundles", nargs=1, metavar="bundle", help=", ".join(sorted(BUNDLES)))
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.bundles) - set(BUNDLES)):
        parser.error(f"unknown bundle(s) {unknown}; expected some of {sorted(BUNDLES)}")
    settings = load_settings()
    if args.command == "classpath":
        print(",".join(str(j) for j in bundle_jars(args.bundles[0], settings)))
        return 0
    try:
        for name in args.bundles or sorted(BUNDLES):
            jars = bundle_jars(name, settings)
            size_mb = sum(j.stat().st_size for j in jars) / 1e6
            print(f"{name}: {bundle_dir(name, settings)} ({len(jars)} jars, {size_mb:.1f} MB)")
    except MavenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
