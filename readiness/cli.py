"""The ``readiness`` command: province-side publishing and simulation, analysts' views of the tables."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from readiness.domain.bases import BASES, DEFAULT_BASIS
from readiness.domain.periods import REPORT_TYPES
from readiness.settings import load_settings
from readiness.terminal import Column, format_rows


def _as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# At most this many warnings are printed one per line (then how many more).
PUBLISH_WARNINGS_SHOWN = 20
SAFE_RESEND = "resending is safe: each report keeps its event id and the platform drops the copies it already has"


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _error(text: str) -> None:
    print(f"error: {_one_line(text)}", file=sys.stderr)


def _quiet_kafka_logs() -> None:
    """kafka-python logs each failed request (with tracebacks) when the broker goes; the command
    reports the outcome itself."""
    import logging

    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(logging.NullHandler())
    kafka_log.propagate = False


def _publish_warnings(args: argparse.Namespace, located: list) -> bool:
    """Print what the quality gate would quarantine; True if ``--strict`` refuses the file for it."""
    from readiness.contracts.report_checks import report_warnings

    warnings = report_warnings(located)
    for line in warnings[:PUBLISH_WARNINGS_SHOWN]:
        print(f"warning: {_one_line(line)}", file=sys.stderr)
    if len(warnings) > PUBLISH_WARNINGS_SHOWN:
        print(f"warning: {args.file}: and {len(warnings) - PUBLISH_WARNINGS_SHOWN} more warnings", file=sys.stderr)
    if warnings and args.strict:
        _error(f"{args.file}: {len(warnings)} warnings and --strict: nothing was sent")
        return True
    return False


def cmd_publish(args: argparse.Namespace) -> int:
    from readiness.contracts.report_files import ReportFileError, read_located, select_events

    _quiet_kafka_logs()
    path = Path(args.file)
    try:
        located = read_located(path)
        if args.only_ids:
            located = select_events(located, Path(args.only_ids), path.name)
        if args.failed_out and path.exists() and Path(args.failed_out).resolve() == path.resolve():
            raise ReportFileError(f"{args.failed_out}: --failed-out would overwrite the report file")
    except ReportFileError as exc:
        _error(str(exc))
        return 2
    if _publish_warnings(args, located):
        return 2
    if not located:
        print(f"nothing to send: {args.only_ids} lists no event ids")
        return 0 if not args.failed_out or _write_ids(args.failed_out, []) else 1
    from readiness.contracts.encoding import InvalidEventError
    from readiness.contracts.report_checks import NonFiniteNumberError
    from readiness.contracts.signing import SigningError
    from readiness.ops.kafka_client import CredentialsError

    try:
        settings = load_settings()
    except (ValueError, OSError) as exc:  # a READINESS_* variable of the wrong type, a secret file missing
        _error(f"the settings (READINESS_* variables): {exc}")
        return 2
    try:
        result = _publish(settings, [item.report for item in located])
    except (SigningError, CredentialsError, NonFiniteNumberError, InvalidEventError) as exc:  # nothing was sent
        _error(f"{args.file}: {exc}")
        return 2
    except OSError as exc:  # the CA certificate (READINESS_KAFKA_CA_FILE) cannot be read: nothing was sent
        _error(f"{args.file}: nothing was sent: {exc.strerror or exc} (is the CA certificate {settings.ca_file} "
               "readable?)")
        return 2
    except KeyboardInterrupt:
        _error(f"interrupted: some of {args.file}'s events may have been sent; {SAFE_RESEND}")
        return 130
    return _report_publish(result, args.file, args.failed_out)


def _publish(settings, reports: list[dict]):
    """Send the reports; a broker that cannot be reached is a result with none acknowledged.

    Raises ``SigningError``, ``CredentialsError`` or ``NonFiniteNumberError`` before anything is sent.
    """
    from kafka.errors import KafkaError

    from readiness.contracts.producer import PublishResult, ReportProducer, failure_reason

    with ReportProducer(settings) as producer:
        try:
            producer.prepare(r["province_code"] for r in reports)
        except KafkaError as exc:  # no broker answered: nothing was sent
            return PublishResult.none_acknowledged(
                [r["event_id"] for r in reports],
                f"cannot connect to {settings.kafka_bootstrap} ({failure_reason(exc).split(':')[0]})")
        return producer.publish_reports(reports)


def _write_ids(path: str, ids: list[str]) -> bool:
    try:
        Path(path).write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        return True
    except OSError as exc:
        _error(f"{path}: cannot write the event ids not acknowledged: {exc.strerror or exc}")
        return False


def _reasons(failures: list[str]) -> str:
    """The three commonest kinds of failure, each with its count and its first message."""
    from collections import Counter

    kind_of = {reason: reason.split(":")[0] for reason in failures}  # "KafkaTimeoutError: ..." -> its error
    counts = Counter(kind_of[reason] for reason in failures)
    first = {kind_of[reason]: reason for reason in reversed(failures)}
    return "; ".join(f"{n} x {first[kind]}" if n > 1 else first[kind] for kind, n in counts.most_common(3))


def _report_publish(result, file: str | None = None, failed_out: str | None = None) -> int:
    """Print the outcome: all acknowledged (exit 0), or how many were and which events to resend (exit 1).

    The ids go to ``failed_out`` when given (written on every run, empty when all were acknowledged,
    so it always describes the last run), else one per line on stderr.
    """
    written = bool(failed_out) and _write_ids(failed_out, result.failed_ids)
    if not result.not_acknowledged:
        print(f"published {result.acknowledged} events, all acknowledged")
        return 0
    _error(f"{result.acknowledged} of {result.sent} events were acknowledged by Kafka, {result.not_acknowledged} "
           f"were not: {_reasons(result.failures)}")
    if written and file:
        print(f"the {len(result.failed_ids)} event ids not acknowledged are in {failed_out}; send them again with: "
              f"readiness publish {file} --only-ids {failed_out}", file=sys.stderr)
    elif result.failed_ids:
        resend = f"readiness publish {file} --failed-out FILE writes them to a file for --only-ids" if file else ""
        print(f"event ids not acknowledged{f' ({resend})' if resend else ''}:", file=sys.stderr)
        for event_id in result.failed_ids:
            print(f"  {event_id}", file=sys.stderr)
    if file:
        print(SAFE_RESEND, file=sys.stderr)
    return 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from readiness.contracts.encoding import TARGET_PLAN
    from readiness.dev.simulate import SimulationProfile, simulate

    if args.if_empty and not args.out:
        from readiness.contracts.producer import topic_message_count

        existing = topic_message_count(load_settings())
        if existing:
            print(f"the reports topic already holds {existing} events; not simulating again (drop --if-empty to add more)")
            return 0
    profile = SimulationProfile(quarters=args.quarters, scale=args.scale)
    batch = simulate(args.seed, _as_of(args.as_of), profile)
    periods = ", ".join(p.id for p in batch.periods)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            for report in batch.reports:
                handle.write(json.dumps({**report, "submitted_at": report["submitted_at"].isoformat()}, ensure_ascii=False) + "\n")
        print(f"wrote {len(batch.reports)} reports for {periods} to {args.out}")
        return 0
    from readiness.contracts.producer import ReportProducer

    settings = load_settings()
    with ReportProducer(settings) as producer:
        result = producer.publish_reports(batch.reports)
        result = result.merge(producer.send_raw(settings.topic_reports, batch.corrupt))
        result = result.merge(producer.publish_reports(batch.targets, TARGET_PLAN, settings.topic_targets))
    print(f"simulated {len(batch.reports)} reports, {len(batch.targets)} target plans and "
          f"{len(batch.corrupt)} corrupt messages for {periods}")
    return _report_publish(result)


def cmd_latest_period(args: argparse.Namespace) -> int:
    from readiness.domain.periods import default_calendar

    periods = default_calendar().closed_periods(args.report_type, _as_of(args.as_of), args.count)
    print(" ".join(p.id for p in periods))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from readiness.orchestration.tasks import refresh_period, run_ingest

    settings = load_settings()  # the DAGs' task bodies: the same locks, hold-back alerts and counts
    print(json.dumps({"ingest": run_ingest(settings)}, default=str))
    for period_id in args.periods:
        print(json.dumps(refresh_period(settings, period_id), default=str))
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from readiness.streaming.service import serve

    return serve(load_settings())


def cmd_ranking(args: argparse.Namespace) -> int:
    from readiness.analyst.views import latest_period, print_ranking
    from readiness.pipeline.aggregate import ranking

    settings = load_settings()
    period_id = args.period or latest_period(settings)
    print_ranking(period_id, ranking(settings, period_id, args.methodology, args.basis), args.methodology)
    return 0


def cmd_compliance(args: argparse.Namespace) -> int:
    from readiness.analyst.views import compliance_rows, format_compliance, latest_period
    from readiness.domain.reference import province_names

    settings = load_settings()
    period_id = args.period or latest_period(settings)
    print(format_compliance(period_id, compliance_rows(settings, period_id, args.basis), province_names()))
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from readiness.analyst.views import format_quarantine, open_quarantine

    rows = open_quarantine(load_settings(), args.province, args.period, args.all)
    print(format_quarantine(rows))
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from readiness.domain.scoring import MethodologyError, composite, load_methodology, read_components_csv

    try:
        methodology = load_methodology(args.methodology)
        with open(args.components, encoding="utf-8-sig", newline="") as handle:
            components = read_components_csv(handle)
    except (MethodologyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("unit,index,rank")
    for row in composite(methodology, components):
        print(f"{row.unit},{row.index:.{methodology.decimals}f},{row.rank}")
    return 0


def _when(text: str | None):
    from datetime import datetime, timezone

    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_keys(args: argparse.Namespace) -> int:
    """The ministry's key registry: issue, rotate, revoke and list the provinces' signing keys."""
    from readiness.contracts.signing import KeyRegistry, SigningError

    settings = load_settings()
    registry = KeyRegistry(settings.key_registry)
    try:
        if args.action in ("issue", "rotate"):
            if args.action == "issue":
                key, path = registry.issue(args.province, settings.private_keys_dir, _when(args.valid_from),
                                           args.valid_days)
            else:
                key, path = registry.rotate(args.province, settings.private_keys_dir, _when(args.at))
            print(f"{args.action}d key {key.key_id} for province {key.province_code}, valid "
                  f"{key.valid_from.isoformat()} to {key.valid_to.isoformat() if key.valid_to else 'open'}")
            print(f"private key (hand it to the province; never commit it): {path}")
        elif args.action == "revoke":
            key = registry.revoke(args.key_id, _when(args.at))
            print(f"revoked key {key.key_id} of province {key.province_code} from {key.revoked_at.isoformat()}")
        else:
            keys = [k for k in registry.load().values() if not args.province or k.province_code == args.province]
            columns = [Column("key id"), Column("province"), Column("valid from"), Column("valid to"),
                       Column("revoked at")]
            rows = [(k.key_id, k.province_code, k.valid_from.isoformat(timespec="seconds"),
                     k.valid_to.isoformat(timespec="seconds") if k.valid_to else "-",
                     k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-")
                    for k in sorted(keys, key=lambda k: (k.province_code, k.valid_from))]
            print("\n".join(format_rows(columns, rows)))
    except (SigningError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="readiness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("publish", help="validate a province's report file (CSV or JSON) and send it to Kafka",
                       description="Exit 0: every event acknowledged. 1: Kafka did not acknowledge some (they are "
                                   "listed; resending is safe). 2: the file was refused, nothing was sent.")
    p.add_argument("file", help=".csv/.tsv (one row per value) or .json/.jsonl (report objects)")
    p.add_argument("--strict", action="store_true",
                   help="refuse the file (exit 2, nothing sent) if it has values the quality gate would quarantine")
    p.add_argument("--failed-out", metavar="PATH",
                   help="write the ids of the events not acknowledged here, one per line (empty if all were)")
    p.add_argument("--only-ids", metavar="PATH",
                   help="send only the reports of FILE whose event ids PATH lists (a --failed-out file)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("simulate", help="publish realistic reports for all provinces over several periods")
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--as-of", help="ISO date or time (UTC) the simulation runs at; default now")
    p.add_argument("--quarters", type=int, default=6)
    p.add_argument("--scale", type=int, default=1, help="repeat the national set N times (benchmarks)")
    p.add_argument("--out", help="write JSON lines here instead of publishing")
    p.add_argument("--if-empty", action="store_true", help="do nothing if the reports topic already holds events")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("latest-period", help="print the latest period whose due date has passed")
    p.add_argument("--report-type", default=REPORT_TYPES[0], choices=REPORT_TYPES)
    p.add_argument("--as-of", help="ISO date or time (UTC); default now")
    p.add_argument("--count", type=int, default=1, help="print the N latest, oldest first")
    p.set_defaults(func=cmd_latest_period)

    p = sub.add_parser("pipeline", help="run ingest, then validate and aggregate for each period, without Airflow")
    p.add_argument("periods", nargs="+")
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("stream", help="run the streaming service: Kafka to gold within seconds, on one Spark "
                                      "session, until SIGTERM (the scheduled ingest waits while it runs)")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("ranking", help="print the published ranking of a period from the gold table")
    p.add_argument("--period", help="period id; default the latest in the gold table")
    p.add_argument("--methodology", default="ict-index")
    p.add_argument("--basis", default=DEFAULT_BASIS, choices=BASES)
    p.set_defaults(func=cmd_ranking)

    p = sub.add_parser("compliance", help="print reporting compliance per province for a period")
    p.add_argument("--period", help="period id; default the latest in the gold tables")
    p.add_argument("--basis", default=DEFAULT_BASIS, choices=BASES)
    p.set_defaults(func=cmd_compliance)

    p = sub.add_parser("quarantine", help="list quarantined reports still to be corrected, per province")
    p.add_argument("--province", help="2-digit province code")
    p.add_argument("--period", help="period id")
    p.add_argument("--all", action="store_true", help="include superseded reports and reports held back")
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("index", help="composite and ranking from component values (CSV unit,component,value)")
    p.add_argument("--methodology", required=True)
    p.add_argument("--components", required=True)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("keys", help="the ministry's registry of the provinces' signing keys")
    keys = p.add_subparsers(dest="action", required=True)
    k = keys.add_parser("issue", help="issue a new key pair to a province")
    k.add_argument("province", help="2-digit province code")
    k.add_argument("--valid-from", help="ISO time (UTC unless it has an offset); default now")
    k.add_argument("--valid-days", type=int, default=730)
    k = keys.add_parser("rotate", help="issue a new key; the province's current keys expire a week later")
    k.add_argument("province")
    k.add_argument("--at", help="ISO time; default now")
    k = keys.add_parser("revoke", help="revoke a key: messages received from then on are refused")
    k.add_argument("key_id")
    k.add_argument("--at", help="ISO time; default now")
    k = keys.add_parser("list", help="list the registered keys")
    k.add_argument("--province")
    p.set_defaults(func=cmd_keys)

    # Analysts (SQL server, query and exports, report) and data engineers (run health).
    from readiness.analyst.commands import register as register_analyst
    from readiness.orchestration.run_health import register as register_status

    register_analyst(sub)
    register_status(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
