"""The baseline a user might pick instead of the pipeline: the same aggregation written directly in
DuckDB, in a fresh process (so its memory is its own). Called by :mod:`bench.pipeline`.

    python -m bench.duckdb_worker CONFIG.json

Modes (CONFIG ``mode``):

- ``parquet``: the simulated reports flattened to Parquet (one row per indicator value) -> one SQL
  query. Only the query is timed.
- ``e2e``: the raw messages exactly as published to Kafka -> decode with ``readiness.contracts.encoding.decode``
  -> flatten into an Arrow table -> the same query on it. Decode+flatten and the query are timed.

The query does what validate + aggregate do for ``gold_indicator_values``: drop every report with a
value that breaks a quarantining row rule of the quality gate (nulls, formats, unknown indicator,
province not in force or unit not registered for the period, negative numbers, numerator above its
limit, value outside the catalogue range, submitted before the period opens, a repeated indicator,
and the cross-indicator validation rules the gate policy quarantines), keep each unit's latest
revision (then latest submission, then event id), and sum numerators, denominators and values per
province, period and indicator, as reported and restated to the 2025 provinces.
"""
from __future__ import annotations

import time

PROCESS_START = time.time()

import json  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from readiness.domain.reference import indicators, province_mapping  # noqa: E402

VALUES_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("province_code", pa.string()), ("unit_code", pa.string()),
    ("unit_kind", pa.string()), ("report_type", pa.string()), ("period_id", pa.string()),
    ("revision", pa.int32()), ("submitted_at", pa.timestamp("ms", tz="UTC")), ("source_system", pa.string()),
    ("indicator_code", pa.string()), ("numerator", pa.float64()), ("denominator", pa.float64()),
    ("value", pa.float64()), ("value_unit", pa.string()),
])

QUERY = """
WITH v AS (SELECT * FROM input_values),
bad AS (
    SELECT DISTINCT v.event_id FROM v LEFT JOIN catalogue c ON v.indicator_code = c.code
    LEFT JOIN periods p ON v.period_id = p.period_id
    LEFT JOIN in_force f ON v.period_id = f.period_id AND v.province_code = f.province_code
    LEFT JOIN registered r ON v.period_id = r.period_id AND v.province_code = r.province_code
                           AND v.unit_code = r.unit_code
    WHERE v.event_id IS NULL OR v.province_code IS NULL OR v.unit_code IS NULL OR v.unit_kind IS NULL
       OR v.report_type IS NULL OR v.period_id IS NULL OR v.indicator_code IS NULL OR v.revision IS NULL
       OR v.submitted_at IS NULL OR v.source_system IS NULL
       OR NOT regexp_full_match(v.province_code, '[0-9]{2}')
       OR NOT regexp_full_match(v.period_id, '[0-9]{4}(Q[1-4]|S[12])?')
       OR v.report_type NOT IN ('quarterly', 'six_monthly', 'yearly')
       OR v.unit_kind NOT IN ('agency', 'commune', 'district', 'province')
       OR c.code IS NULL OR v.numerator < 0 OR v.denominator < 0 OR v.revision < 0
       OR (c.numerator_at_most_denominator AND v.numerator > v.denominator)
       OR f.province_code IS NULL OR r.unit_code IS NULL OR v.submitted_at < p.opens_at
       OR (CASE WHEN c.rollup = 'ratio_of_sums' THEN
                CASE WHEN v.denominator > 0 THEN v.numerator / v.denominator * c.scale END
                ELSE v.value END) NOT BETWEEN c.min_value AND c.max_value
    UNION
    SELECT event_id FROM cross_rule_failures
    UNION
    SELECT event_id FROM v GROUP BY event_id, indicator_code HAVING count(*) > 1
),
accepted AS (SELECT * FROM v WHERE event_id NOT IN (SELECT event_id FROM bad WHERE event_id IS NOT NULL)),
winners AS (
    SELECT event_id FROM (SELECT DISTINCT province_code, unit_code, report_type, period_id, event_id, revision,
                                          submitted_at FROM accepted)
    QUALIFY row_number() OVER (PARTITION BY province_code, unit_code, report_type, period_id
                               ORDER BY revision DESC, submitted_at DESC, event_id DESC) = 1
),
latest AS (SELECT * FROM accepted SEMI JOIN winners USING (event_id)),
both_bases AS (
    SELECT 'as_reported' AS basis, * FROM latest
    UNION ALL
    SELECT 'restated_2025' AS basis, latest.* REPLACE (coalesce(m.code_2025, latest.province_code) AS province_code)
    FROM latest LEFT JOIN province_map m ON latest.province_code = m.former_code
)
SELECT basis, period_id, province_code, b.indicator_code,
       sum(numerator) AS numerator_sum, sum(denominator) AS denominator_sum,
       CASE WHEN any_value(c.rollup) = 'ratio_of_sums'
            THEN CASE WHEN sum(denominator) > 0 THEN sum(numerator) / sum(denominator) * any_value(c.scale) END
            ELSE sum(value) END AS value,
       count(DISTINCT unit_code) AS units_reported
FROM both_bases b JOIN catalogue c ON b.indicator_code = c.code
GROUP BY basis, period_id, province_code, b.indicator_code
"""


def flatten(records) -> pa.Table:
    """Reports (as simulated, or as decoded) -> one row per indicator value; a report with no
    values keeps one row with null indicator fields, as the pipeline's explode_outer does."""
    cols: dict[str, list] = {name: [] for name in VALUES_SCHEMA.names}
    for r in records:
        unit = r["reporting_unit"]
        head = (str(r["event_id"]) if isinstance(r["event_id"], uuid.UUID) else r["event_id"], r["province_code"],
                unit["code"], unit["kind"].lower(), r["report_type"].lower(), r["period"], r["revision"],
                r["submitted_at"], r["source_system"])
        for value in r["values"] or [None]:
            for name, item in zip(VALUES_SCHEMA.names[:9], head):
                cols[name].append(item)
            v = value or {}
            cols["indicator_code"].append(v.get("indicator_code"))
            cols["numerator"].append(v.get("numerator"))
            cols["denominator"].append(v.get("denominator"))
            cols["value"].append(v.get("value"))
            cols["value_unit"].append(v.get("unit"))
    return pa.table(cols, schema=VALUES_SCHEMA)


def read_messages(path: Path) -> list[bytes]:
    """Length-prefixed (4-byte big-endian) raw messages, as :func:`write_messages` wrote them."""
    data = path.read_bytes()
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


def write_messages(path: Path, messages: list[bytes]) -> None:
    with path.open("wb") as handle:
        for m in messages:
            handle.write(len(m).to_bytes(4, "big"))
            handle.write(m)


def _reference_tables(con: duckdb.DuckDBPyConnection, periods: list[str], scale: int) -> None:
    """The reference data the gate binds into its rules, per period, as DuckDB tables."""
    from zoneinfo import ZoneInfo

    from readiness.domain.periods import default_calendar, parse_period
    from readiness.domain.reference import provinces_in_force, units_open_on

    cat = indicators()
    con.register("catalogue", pa.table({
        "code": [i.code for i in cat], "rollup": [i.rollup for i in cat], "scale": [float(i.scale) for i in cat],
        "numerator_at_most_denominator": [bool(i.numerator_at_most_denominator) for i in cat],
        "min_value": [float(i.min_value) for i in cat], "max_value": [float(i.max_value) for i in cat]}))
    mapping = sorted(province_mapping().items())
    con.register("province_map", pa.table({"former_code": [a for a, _ in mapping], "code_2025": [b for _, b in mapping]}))
    zone = ZoneInfo(default_calendar().timezone)
    opens, force, registered = [], [], []
    for period_id in periods:
        period = parse_period(period_id)
        start, end = period.window()
        opens.append((period_id, datetime.combine(start, datetime.min.time(), zone).astimezone(timezone.utc)))
        force += [(period_id, p.code) for p in provinces_in_force(end)]
        units = units_open_on(end)
        # SimulationProfile(scale=N) reports under <code>#k; the pipeline's registry is extended alike.
        registered += [(period_id, u.province_code, u.code if k == 0 else f"{u.code}#{k}")
                       for k in range(scale) for u in units]
    con.register("periods", pa.table({"period_id": [p for p, _ in opens],
                                      "opens_at": pa.array([t for _, t in opens], pa.timestamp("ms", tz="UTC"))}))
    con.register("in_force", pa.table({"period_id": [p for p, _ in force], "province_code": [c for _, c in force]}))
    con.register("registered", pa.table({"period_id": [r[0] for r in registered],
                                         "province_code": [r[1] for r in registered],
                                         "unit_code": [r[2] for r in registered]}))


def cross_rule_sql() -> str:
    """Events breaking a cross-indicator validation rule that the gate policy quarantines, as SQL
    generated from ``readiness/data/validation_rules.json`` and ``gate_policy.json``."""
    from readiness.quality.policy import load_policy, load_validation_rules

    policy = load_policy()
    rules = [r for r in load_validation_rules(known_indicators={i.code for i in indicators()})
             if policy.validation_rule_actions.get(r.importance) == "quarantine"]
    if not rules:
        return "SELECT NULL::VARCHAR AS event_id WHERE false"
    terms = sorted({(t.indicator_code, t.field) for r in rules for t in r.left + r.right if t.indicator_code})
    columns = ", ".join(f"max(CASE WHEN indicator_code = '{code}' THEN {field} END) AS \"{code}.{field}\""
                        for code, field in terms)
    conditions = []
    for rule in rules:
        named = [f'"{t.indicator_code}.{t.field}"' for t in rule.left + rule.right if t.indicator_code]

        def side(side_terms, zero_missing: bool) -> str:
            parts = [(f'coalesce("{t.indicator_code}.{t.field}", 0)' if zero_missing else f'"{t.indicator_code}.{t.field}"')
                     if t.indicator_code else repr(t.number) for t in side_terms]
            return "(" + " + ".join(parts) + ")"

        if rule.missing_value_strategy == "skip_if_any_value_missing":
            guard, zero = " AND ".join(f"{n} IS NOT NULL" for n in named) or "true", False
        elif rule.missing_value_strategy == "skip_if_all_values_missing":
            guard, zero = "(" + (" OR ".join(f"{n} IS NOT NULL" for n in named) or "true") + ")", True
        else:
            guard, zero = "true", True
        conditions.append(f"({guard} AND NOT ({side(rule.left, zero)} {rule.operator} {side(rule.right, zero)}))")
    return (f"SELECT event_id FROM (SELECT event_id, {columns} FROM input_values GROUP BY event_id) "
            f"WHERE {' OR '.join(conditions)}")


def main(config_path: str) -> int:
    from readiness.contracts.encoding import REPORT_SUBMISSION, EventDecodeError, decode

    config = json.loads(Path(config_path).read_text())
    result: dict[str, object] = {"mode": config["mode"], "process_start": PROCESS_START}
    con = duckdb.connect()
    _reference_tables(con, config["periods"], config.get("scale", 1))
    if config["mode"] == "parquet":
        con.execute(f"CREATE VIEW input_values AS SELECT * FROM read_parquet('{config['parquet']}')")
    else:
        started = time.time()
        messages = read_messages(Path(config["messages"]))
        records, dead = [], 0
        for m in messages:
            try:
                record, writer = decode(m)
            except EventDecodeError:
                dead += 1
                continue
            if writer.full_name == REPORT_SUBMISSION:  # target plans are not part of this aggregation
                records.append(record)
        table = flatten(records)
        result["decode_flatten_s"] = time.time() - started
        result["dead_letters"] = dead
        con.register("input_values", table)
    started = time.time()
    con.execute(f"CREATE TEMP VIEW cross_rule_failures AS {cross_rule_sql()}")
    rows = con.execute(QUERY).fetchall()
    result["query_s"] = time.time() - started
    result["rows"] = len(rows)
    if config.get("dump"):
        Path(config["dump"]).write_text(json.dumps([list(r) for r in rows]))
    Path(config["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
