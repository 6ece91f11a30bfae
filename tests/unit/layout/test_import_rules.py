"""The package layout is the architecture: who may import whom, and which modules stay engine-free.

Each package of ``readiness`` may import only the packages named for it in ``ALLOWED`` (its
own modules always). Nothing but the command line imports ``readiness.dev``. The light modules
(what the DAG processor, a province's producer and the fast readers load) import no engine, not
even inside a function, and importing them in a fresh interpreter loads none.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from readiness.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "readiness"

# package -> the readiness packages its modules may import ("settings", "terminal": top-level modules)
BASE = {"settings", "terminal"}
ALLOWED: dict[str, set[str]] = {
    "settings": set(),
    "terminal": set(),
    "domain": {"settings"},
    "ops": {"settings", "domain"},
    "contracts": BASE | {"domain", "ops"},
    "lake": BASE | {"domain", "ops"},
    "quality": BASE | {"domain", "lake", "ops"},
    "transforms": BASE | {"domain", "contracts", "lake", "quality"},
    "pipeline": BASE | {"domain", "contracts", "lake", "quality", "transforms", "ops"},
    "orchestration": BASE | {"domain", "contracts", "lake", "quality", "pipeline", "ops"},
    "streaming": BASE | {"domain", "contracts", "lake", "quality", "pipeline", "orchestration", "ops"},
    "analyst": BASE | {"domain", "contracts", "lake", "quality", "ops"},
    "dev": BASE | {"domain", "contracts", "lake", "quality", "transforms", "pipeline", "orchestration", "analyst",
                   "ops"},
    "cli": BASE | {"domain", "contracts", "lake", "quality", "pipeline", "orchestration", "streaming", "analyst", "ops",
                   "dev"},
}
ENGINES = ("pyspark", "py4j", "delta", "great_expectations")
LIGHT_MODULES = [
    "readiness.settings", "readiness.terminal",
    "readiness.domain.periods", "readiness.domain.reference", "readiness.domain.bases", "readiness.domain.scoring",
    "readiness.contracts.encoding", "readiness.contracts.report_files", "readiness.contracts.producer",
    "readiness.contracts.signing",
    "readiness.lake.tables", "readiness.lake.log",
    "readiness.quality.errors", "readiness.quality.policy",
    "readiness.orchestration.calendar", "readiness.orchestration.locks", "readiness.orchestration.alerts",
    "readiness.orchestration.dag_support", "readiness.orchestration.stream_health",
    "readiness.ops.maven", "readiness.ops.topics", "readiness.ops.locks", "readiness.ops.kafka_client",
    "readiness.ops.pki", "readiness.ops.secrets", "readiness.ops.broker_security",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "readiness":
                found += [(node.lineno, f"readiness.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_rule():
    packages = {_package_of(_module_name(p)) for p in SOURCES} - {""}
    assert packages <= set(ALLOWED), f"packages without an import rule: {sorted(packages - set(ALLOWED))}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_imports_follow_the_layout(path):
    own = _package_of(_module_name(path))
    if not own:  # readiness/__init__.py
        return
    wrong = [f"{path.name}:{line} imports {module}" for line, module in _imports(path)
             if module.startswith("readiness.") and _package_of(module) not in ALLOWED[own] | {own}]
    assert not wrong, f"readiness.{own} may import only {sorted(ALLOWED[own])}: " + "; ".join(wrong)


def test_nothing_but_the_command_line_imports_dev():
    importers = {_module_name(p) for p in SOURCES if any(m.startswith("readiness.dev") for _, m in _imports(p))}
    assert {m for m in importers if not m.startswith("readiness.dev")} <= {"readiness.cli"}


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_light_modules_hide_no_engine_import(module):
    path = PROJECT_ROOT / (module.replace(".", "/") + ".py")
    heavy = [f"line {line}: {name}" for line, name in _imports(path) if name.split(".")[0] in ENGINES]
    assert not heavy, f"{module} imports an engine: {heavy}"


def test_light_modules_load_no_engine():
    """In a fresh interpreter, importing every light module loads no Spark, Delta or GX module."""
    code = ("import importlib, json, sys\n"
            f"for name in {LIGHT_MODULES!r}: importlib.import_module(name)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {ENGINES!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
