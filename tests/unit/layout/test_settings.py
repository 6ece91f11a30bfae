"""Every knob is a ``Settings`` field, read in one place; secrets never print; production matches docker/."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from readiness.settings import (
    ENV_VAR,
    PROJECT_ROOT,
    Secret,
    Settings,
    env_name,
    load_settings,
    secret_fields,
    settings_env,
)

NAME = re.compile(r"\bREADINESS_[A-Z0-9_]*[A-Z0-9]\b")
CODE_DIRS = ("readiness", "dags", "jobs", "bench")
FIELDS = {f.name for f in dataclasses.fields(Settings)}
KNOWN = {ENV_VAR} | {env_name(f) for f in FIELDS - {"env"}} | {env_name(f) + "_FILE" for f in secret_fields()}


def _code_files() -> list[Path]:
    files = [p for d in CODE_DIRS for p in sorted((PROJECT_ROOT / d).rglob("*.py"))]
    return files + [PROJECT_ROOT / "Makefile", PROJECT_ROOT / ".ci" / "run", *sorted((PROJECT_ROOT / "docker").iterdir())]


def test_every_readiness_variable_named_in_the_code_is_a_settings_field():
    unknown = {f"{path.relative_to(PROJECT_ROOT)}: {name}" for path in _code_files() if path.is_file()
               for name in NAME.findall(path.read_text(encoding="utf-8")) if name not in KNOWN}
    assert not unknown, f"READINESS_* names that are no Settings field: {sorted(unknown)}"


def _environment_reads(path: Path) -> list[int]:
    """Lines that read os.environ / os.getenv with a READINESS_ literal."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Call, ast.Subscript)):
            text = ast.unparse(node)
            if ("os.environ" in text or "os.getenv" in text) and "READINESS_" in text:
                lines.append(node.lineno)
    return lines


def test_only_settings_reads_readiness_variables():
    reads = {f"{p.relative_to(PROJECT_ROOT)}:{line}" for p in _code_files() if p.suffix == ".py"
             and p.name != "settings.py" for line in _environment_reads(p)}
    assert not reads, f"read READINESS_* outside readiness/settings.py: {sorted(reads)}"


def test_fields_come_from_the_environment_with_their_types(tmp_path):
    environ = {"READINESS_ENV": "ci", "READINESS_INGEST_SILENCE_HOURS": "6.5", "READINESS_SQL_PORT": "10001",
               "READINESS_VAR_DIR": str(tmp_path), "READINESS_INGEST_CRON": "* * * * *"}
    settings = load_settings(environ=environ)
    assert (settings.env, settings.ingest_silence_hours, settings.sql_port, settings.var_dir, settings.ingest_cron) == (
        "ci", 6.5, 10001, tmp_path, "* * * * *")
    assert settings.kafka_bootstrap == "127.0.0.1:19092"  # the ci profile
    assert load_settings(environ=environ, sql_port=10002).sql_port == 10002  # overrides win


def test_secrets_never_print_and_come_from_the_environment_or_a_file(tmp_path):
    settings = load_settings(environ={"READINESS_WEBHOOK_TOKEN": "t0ps3cret"})
    assert settings.webhook_token.reveal() == "t0ps3cret"
    assert "t0ps3cret" not in repr(settings) and "t0ps3cret" not in str(settings.webhook_token)
    token_file = tmp_path / "token"
    token_file.write_text("fr0m-a-file\n")
    from_file = load_settings(environ={"READINESS_WEBHOOK_TOKEN_FILE": str(token_file)})
    assert from_file.webhook_token.reveal() == "fr0m-a-file"
    assert not load_settings(environ={}).webhook_token and load_settings(environ={}).webhook_token == Secret()
    assert all(dataclasses.fields(Settings)[[f.name for f in dataclasses.fields(Settings)].index(n)].default == Secret()
               for n in secret_fields())  # no secret has a default in code


def test_settings_survive_the_trip_to_another_process(tmp_path):
    settings = load_settings(environ={}, var_dir=tmp_path, topic_partitions=3, webhook_token="tok")
    assert load_settings(environ=settings_env(settings)) == settings


def _docker_environment() -> dict[str, str]:
    compose = yaml.safe_load((PROJECT_ROOT / "docker" / "docker-compose.yml").read_text(encoding="utf-8"))
    env = dict(compose["x-readiness"]["environment"])
    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    env.update(re.findall(r"\b(READINESS_[A-Z_]+)=(\S+)", dockerfile))
    return {k: str(v) for k, v in env.items() if k.startswith("READINESS_")}


@pytest.mark.parametrize("name", sorted(_docker_environment()))
def test_the_production_profile_matches_docker(name):
    value = _docker_environment()[name]
    if name == ENV_VAR:
        assert value == "production"
        return
    field = name.removeprefix("READINESS_").lower()
    if value.startswith("${"):  # a secret or deployment value passed through from .env
        return
    assert str(getattr(load_settings("production", environ={}), field)) == value, name
