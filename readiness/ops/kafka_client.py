"""How every Kafka client of the project connects: TLS with the deployment's CA, SCRAM-SHA-512.

One place builds the connection settings for the three kinds of client: kafka-python (producer,
consumer, admin), Spark's Kafka source (``kafka.*`` options) and Kafka's own Java tools
(a client properties file). The principal is the role's own (``pipeline``, ``admin``,
``province-<code>``) unless the settings name one (``READINESS_KAFKA_USERNAME``, with
``READINESS_KAFKA_PASSWORD`` or ``READINESS_KAFKA_PASSWORD_FILE``). Passwords never appear in
logs: Spark redacts option values that contain ``password``, and the Java tools read theirs from
a 0600 file.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from readiness.ops.secrets import write_private
from readiness.settings import Secret, Settings

ADMIN = "admin"
PIPELINE = "pipeline"
# The consumer group prefix the ingest uses (Spark adds a unique suffix per query).
PIPELINE_GROUP_PREFIX = "readiness-pipeline"


class CredentialsError(RuntimeError):
    """No password is known for the principal this client must connect as."""


def province_principal(province_code: str) -> str:
    """The Kafka principal of a province: ``province-38`` for Thanh Hóa."""
    return f"province-{province_code}"


@dataclass(frozen=True)
class Identity:
    username: str
    password: Secret  # masks itself in the dataclass's repr


def password_file(settings: Settings, principal: str) -> Path:
    return settings.credentials_dir / f"{principal}.password"


def identity(settings: Settings, role: str) -> Identity:
    """Who this process is on the broker when it acts as ``role``.

    The settings' own principal wins when set (a province's machine knows only its own); else
    the role's principal with its password from the credentials folder (the local deployment
    provisions one file per principal).
    """
    if settings.kafka_username:
        if not settings.kafka_password:
            raise CredentialsError(f"READINESS_KAFKA_USERNAME is {settings.kafka_username!r} but no password is set "
                                   "(READINESS_KAFKA_PASSWORD or READINESS_KAFKA_PASSWORD_FILE)")
        return Identity(settings.kafka_username, settings.kafka_password)
    path = password_file(settings, role)
    if not path.is_file():
        raise CredentialsError(f"no Kafka password for principal {role!r}: {path} does not exist; set "
                               "READINESS_KAFKA_USERNAME and READINESS_KAFKA_PASSWORD(_FILE)")
    return Identity(role, Secret(path.read_text(encoding="utf-8").strip()))


def kafka_python_config(settings: Settings, role: str) -> dict[str, object]:
    """``bootstrap_servers`` and the security settings for a kafka-python client acting as ``role``."""
    config: dict[str, object] = {"bootstrap_servers": settings.kafka_brokers,  # one address per node
                                 "security_protocol": settings.kafka_security_protocol}
    if "SSL" in settings.kafka_security_protocol:
        context = ssl.create_default_context(cafile=str(settings.ca_file))  # TLS 1.2+, the CA, host names
        config.update(ssl_context=context, ssl_check_hostname=True)
    if settings.kafka_security_protocol.startswith("SASL"):
        who = identity(settings, role)
        config.update(sasl_mechanism=settings.kafka_sasl_mechanism, sasl_plain_username=who.username,
                      sasl_plain_password=who.password.reveal())
    return config


def bootstrap_servers(settings: Settings) -> str:
    """The brokers as Java clients and Kafka's tools take them: ``host:port,host:port`` (no spaces)."""
    return ",".join(settings.kafka_brokers)


def _jaas(who: Identity, mechanism: str) -> str:
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    return f'{module} required username="{who.username}" password="{who.password.reveal()}";'


def java_client_properties(settings: Settings, role: str) -> dict[str, str]:
    """The security properties of a Java client (Spark's Kafka source, Kafka's tools) acting as ``role``."""
    props = {"security.protocol": settings.kafka_security_protocol}
    if "SSL" in settings.kafka_security_protocol:
        props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(settings.ca_file)})
    if settings.kafka_security_protocol.startswith("SASL"):
        props.update({"sasl.mechanism": settings.kafka_sasl_mechanism,
                      "sasl.jaas.config": _jaas(identity(settings, role), settings.kafka_sasl_mechanism)})
    return props


def spark_kafka_options(settings: Settings, role: str = PIPELINE) -> dict[str, str]:
    """Options for Spark's Kafka source: the bootstrap servers and ``kafka.``-prefixed security."""
    options = {"kafka.bootstrap.servers": bootstrap_servers(settings)}
    options.update({f"kafka.{k}": v for k, v in java_client_properties(settings, role).items()})
    return options


def write_client_properties(settings: Settings, role: str, path: Path) -> Path:
    """A 0600 client properties file for Kafka's Java tools (``--command-config``)."""
    props = java_client_properties(settings, role)
    return write_private(path, "".join(f"{k}={v}\n" for k, v in props.items()).encode())
