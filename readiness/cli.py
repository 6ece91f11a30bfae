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


def cmd_publish(args: argparse.Namespace) -> int:
    from readiness.contracts.producer import ReportProducer
    from readiness.contracts.report_files import ReportFileError, read_reports

    try:
        reports = read_reports(Path(args.file))
    except ReportFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from kafka.errors import KafkaError

    from readiness.contracts.signing import SigningError
    from readiness.ops.kafka_client import CredentialsError

    settings = load_settings()
    with ReportProducer(settings) as producer:
        try:
            producer.prepare(r["province_code"] for r in reports)
        except (SigningError, CredentialsError) as exc:  # nothing was sent
            print(f"error: {args.file}: {exc}", file=sys.stderr)
            return 2
        except KafkaError as exc:  # no broker answered: nothing was sent
            print(f"error: 0 of {len(reports)} events were acknowledged by Kafka: cannot connect to "
                  f"{settings.kafka_bootstrap} ({type(exc).__name__})", file=sys.stderr)
            return 1
        result = producer.publish_reports(reports)
    return _report_publish(result)


def _report_publish(result) -> int:
    if result.not_acknowledged:
        print(f"error: {result.not_acknowledged} of {result.sent} events were not acknowledged by Kafka", file=sys.stderr)
        for failure in result.failures[:10]:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print(f"published {result.acknowledged} events, all acknowledged")
    return 0


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
    from readiness.pipeline.aggregate import aggregate_period
    from readiness.pipeline.ingest import ingest_reports
    from readiness.pipeline.validate import validate_period

    settings = load_settings()
    print(json.dumps({"ingest": ingest_reports(settings)}))
    for period_id in args.periods:
        print(json.dumps({"period": period_id, "validate": validate_period(settings, period_id),
                          "aggregate": aggregate_period(settings, period_id)}))
    return 0


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

    p = sub.add_parser("publish", help="validate a province's report file (CSV or JSON) and send it to Kafka")
    p.add_argument("file")
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
    p.add_argument("--all", action="store_true", help="include superseded and resolved items")
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
