"""The baseline a user might pick instead of the pipeline: the same aggregation written directly in
DuckDB, in a fresh process (so its memory is its own). Called by :mod:`bench.pipeline`.

    python -m bench.duckdb_worker CONFIG.json

Modes (CONFIG ``mode``):

- ``parquet``: the simulated reports flattened to Parquet (one row per indicator value) -> one SQL
  query. Only the query is timed.
- ``e2e``: the raw messages exactly as published to Kafka -> decode with ``readiness.encoding.decode``
  -> flatten into an Arrow table -> the same query on it. Decode+flatten and the query are timed.

The query does what validate + aggregate do for ``gold_indicator_values``: drop every report with a
value that breaks a row rule of the quality suite (nulls, formats, unknown indicator, negative
numbers, numerator above its limit, a repeated indicator), keep each unit's latest revision (then
latest submission, then event id), and sum numerators, denominators and values per province,
period and indicator, as reported and restated to the 2025 provinces.
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
import pyarrow.parquet as pq  # noqa: E402

from readiness.reference import indicators, province_mapping  # noqa: E402

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
    WHERE v.event_id IS NULL OR v.province_code IS NULL OR v.unit_code IS NULL OR v.unit_kind IS NULL
       OR v.report_type IS NULL OR v.period_id IS NULL OR v.indicator_code IS NULL OR v.revision IS NULL
       OR v.submitted_at IS NULL OR v.source_system IS NULL
       OR NOT regexp_full_match(v.province_code, '[0-9]{2}')
       OR NOT regexp_full_match(v.period_id, '[0-9]{4}(Q[1-4]|S[12])?')
       OR v.report_type NOT IN ('quarterly', 'six_monthly', 'yearly')
       OR v.unit_kind NOT IN ('agency', 'commune', 'district', 'province')
       OR c.code IS NULL OR v.numerator < 0 OR v.denominator < 0 OR v.revision < 0
       OR (c.numerator_at_most_denominator AND v.numerator > v.denominator)
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


def _reference_tables(con: duckdb.DuckDBPyConnection) -> None:
    catalogue = pa.table({
        "code": [i.code for i in indicators()], "rollup": [i.rollup for i in indicators()],
        "scale": [float(i.scale) for i in indicators()],
        "numerator_at_most_denominator": [bool(i.numerator_at_most_denominator) for i in indicators()]})
    mapping = sorted(province_mapping().items())
    province_map = pa.table({"former_code": [a for a, _ in mapping], "code_2025": [b for _, b in mapping]})
    con.register("catalogue", catalogue)
    con.register("province_map", province_map)


def main(config_path: str) -> int:
    from readiness.encoding import REPORT_SUBMISSION, EventDecodeError, decode

    config = json.loads(Path(config_path).read_text())
    result: dict[str, object] = {"mode": config["mode"], "process_start": PROCESS_START}
    con = duckdb.connect()
    _reference_tables(con)
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
    rows = con.execute(QUERY).fetchall()
    result["query_s"] = time.time() - started
    result["rows"] = len(rows)
    if config.get("dump"):
        Path(config["dump"]).write_text(json.dumps([list(r) for r in rows]))
    Path(config["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
