"""The brokers' side of authentication and authorization, shared by every broker the project runs.

- Clients connect on ``SASL_SSL``: TLS with a server certificate from the deployment's CA
  (:mod:`readiness.ops.pki`) and SCRAM-SHA-512. No listener accepts PLAINTEXT clients.
- The controller listener is TLS too, with SASL PLAIN for the one ``controller`` principal (SCRAM
  credentials live in the metadata log, which the controllers serve, so they cannot
  authenticate themselves with it).
- SCRAM credentials are bootstrapped when KRaft storage is formatted (KIP-900, ``--add-scram``)
  and added later with Kafka's own ``ConfigCommand`` (:func:`add_scram_user`).
- The standard KRaft authorizer with ``allow.everyone.if.no.acl.found=false``: a principal may do
  only what an ACL allows (:mod:`readiness.ops.topics` grants them); ``admin`` and
  ``controller`` are super users.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from readiness.domain.reference import provinces
from readiness.ops.kafka_client import (
    ADMIN,
    PIPELINE,
    bootstrap_servers,
    password_file,
    province_principal,
    write_client_properties,
)
from readiness.ops.maven import kafka_broker_classpath
from readiness.ops.pki import ServerFiles
from readiness.ops.secrets import ensure_secret_file
from readiness.settings import Settings

SCRAM = "SCRAM-SHA-512"
CONTROLLER = "controller"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


class BrokerSecurityError(RuntimeError):
    """A credential could not be added on the broker."""


def deployment_principals() -> list[str]:
    """The SCRAM principals of a deployment besides ``admin``: the pipeline and one per province code
    (the 34 provinces in force and the former ones, which report for periods before July 2025)."""
    return [PIPELINE, *dict.fromkeys(province_principal(p.code) for p in provinces())]


def provision_passwords(settings: Settings, principals: list[str]) -> dict[str, str]:
    """``principal -> password``, each generated once into ``<credentials_dir>/<principal>.password``."""
    return {p: ensure_secret_file(password_file(settings, p)) for p in dict.fromkeys([ADMIN, CONTROLLER, *principals])}


def scram_format_args(passwords: dict[str, str]) -> list[str]:
    """``--add-scram`` arguments of ``kafka-storage format`` for every SCRAM principal."""
    args: list[str] = []
    for principal, password in passwords.items():
        if principal != CONTROLLER:
            args += ["--add-scram", f"{SCRAM}=[name={principal},password={password}]"]
    return args


def _jaas(module: str, user: str, password: str, **extra: str) -> str:
    options = " ".join(f'{k}="{v}"' for k, v in {"username": user, "password": password, **extra}.items())
    return f"org.apache.kafka.common.security.{module} required {options};"


def broker_properties(server: ServerFiles, passwords: dict[str, str], client_listener: str = "SASL_SSL",
                      controller_listener: str = "CONTROLLER") -> dict[str, str]:
    """The security part of a broker's ``server.properties`` (listener names as the caller uses them)."""
    key_password = Path(server.password_file).read_text(encoding="utf-8").strip()
    client, controller = client_listener.lower(), controller_listener.lower()
    return {
        "listener.security.protocol.map": f"{client_listener}:SASL_SSL,{controller_listener}:SASL_SSL",
        "inter.broker.listener.name": client_listener,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(server.keystore),
        "ssl.keystore.password": key_password,
        "ssl.key.password": key_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(server.ca),
        "ssl.client.auth": "none",
        "sasl.enabled.mechanisms": SCRAM,
        f"listener.name.{client}.sasl.enabled.mechanisms": SCRAM,
        f"listener.name.{client}.{SCRAM.lower()}.sasl.jaas.config":
            _jaas("scram.ScramLoginModule", ADMIN, passwords[ADMIN]),
        "sasl.mechanism.inter.broker.protocol": SCRAM,
        f"listener.name.{controller}.sasl.enabled.mechanisms": "PLAIN",
        f"listener.name.{controller}.plain.sasl.jaas.config":
            _jaas("plain.PlainLoginModule", CONTROLLER, passwords[CONTROLLER],
                  **{f"user_{CONTROLLER}": passwords[CONTROLLER]}),
        "sasl.mechanism.controller.protocol": "PLAIN",
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN};User:{CONTROLLER}",
    }


def add_scram_user(settings: Settings, principal: str, work_dir: Path) -> None:
    """Add (or reset) a principal's SCRAM credential on a running cluster with Kafka's ConfigCommand.

    The password is generated into the credentials folder if it is not there yet; the admin
    client's properties (with the admin password) are written to a 0600 file for the tool.
    """
    password = ensure_secret_file(password_file(settings, principal))
    config = write_client_properties(settings, ADMIN, Path(work_dir) / "admin-client.properties")
    classpath = os.pathsep.join(str(p) for p in kafka_broker_classpath(settings))
    cmd = ["java", "-cp", classpath, "kafka.admin.ConfigCommand", "--bootstrap-server", bootstrap_servers(settings),
           "--command-config", str(config), "--alter", "--entity-type", "users", "--entity-name", principal,
           "--add-config", f"{SCRAM}=[password={password}]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise BrokerSecurityError(f"adding the SCRAM credential of {principal} failed (exit {proc.returncode}): "
                                  f"{proc.stderr.strip()[-500:]}")
