"""What analysts see: the gold tables under the lake, their descriptions and column comments, the
reference views, and "as of" snapshots (Delta time travel).

Everything here except :func:`resolve_versions` and :func:`open_snapshot` is pure Python: the SQL
server's DDL is generated from the Delta logs without starting Spark.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from readiness.domain.periods import REPORTING_TIMEZONE
from readiness.domain.reference import REORGANISATION_DATE, indicators, province_mapping, provinces
from readiness.lake.tables import GOLD_PREFIX
from readiness.settings import Settings

DATABASE = "readiness"
# The same gold tables as external Delta tables: DESCRIBE HISTORY and VERSION/TIMESTAMP AS OF.
DELTA_DATABASE = "readiness_delta"
LOCAL_TZ = REPORTING_TIMEZONE
# The zone as analysts read it in column comments: "Asia/Ho_Chi_Minh (UTC+07:00)".
_OFFSET = datetime(2026, 1, 1, tzinfo=ZoneInfo(LOCAL_TZ)).strftime("%z")
ZONE_TEXT = f"{LOCAL_TZ} (UTC{_OFFSET[:3]}:{_OFFSET[3:]})"
TIME_NOTE = (f"Periods, data windows and due dates are calendar days in {ZONE_TEXT}; "
             "timestamps are UTC (the session time zone).")

DATABASE_COMMENT = ("Provincial ICT-readiness: the published (gold) tables as read-only views with described "
                    "columns, and reference views of provinces and indicators (names in Vietnamese, NFC). "
                    + TIME_NOTE)
DELTA_DATABASE_COMMENT = ("The gold tables as external Delta tables at their paths in the lake: use them for "
                          "DESCRIBE HISTORY and time travel (VERSION AS OF n, TIMESTAMP AS OF '...+07:00'). "
                          "Column descriptions are on the views in database readiness.")

TABLE_DESCRIPTIONS: dict[str, str] = {
    "gold_indicator_values": (
        "Value of each indicator per province and period: the ratio of the reporting units' summed numerators "
        "and denominators (never a mean of ratios), or the summed amount; as reported and restated to the 34 "
        "provinces of 2025. One row per period, basis, province and indicator."),
    "gold_readiness_index": (
        "Readiness index, sub-index scores and competition rank per province, period, basis and methodology, "
        "with the silver Delta version it was computed from. One row per period, basis, methodology and province."),
    "gold_reporting_completeness": (
        "Reporting completeness per province and period: expected, received, on-time, late and missing reports "
        "and the units that did not report. On time = first submission at or before the end of the due date "
        f"in {ZONE_TEXT}."),
    "gold_target_attainment": (
        "Attainment of each province's yearly plan targets per indicator and period: the value as reported "
        "against the target of the period's plan year."),
    "ref_provinces": (
        "Provinces: the 63 in force until 2025-06-30 and the 34 since 2025-07-01, with Vietnamese names (NFC) "
        "and the 2025 province each former one merged into."),
    "ref_indicators": "The indicator catalogue: names in Vietnamese (NFC) and English, unit, scale and direction.",
}

# Comments by column name (a name means the same in every table), then per-table overrides.
COLUMN_COMMENTS: dict[str, str] = {
    "period_id": ("Reporting period: 2026Q3 (quarter), 2026S1 (half year) or 2026 (year); periods and due dates "
                  f"follow the reporting calendar in {ZONE_TEXT}. Partition column."),
    "report_type": "Report type of the period: quarterly, six_monthly or yearly.",
    "basis": ("as_reported: units counted in the province they belonged to in the period; restated_2025: "
              "re-summed onto the 34 provinces in force since 2025-07-01."),
    "province_code": ("Province code (text, e.g. 01 = Hà Nội): one of the 34 provinces since 2025-07-01 for basis "
                      "restated_2025, the province in force in the period for as_reported. Names: ref_provinces."),
    "province_name": "Province name in Vietnamese (Unicode NFC), as in force for the row's basis.",
    "indicator_code": "Indicator code from the catalogue; Vietnamese and English names and unit in ref_indicators.",
    "numerator_sum": ("Sum of the reporting units' numerators (latest revision of each unit's report), in the "
                      "numerator's own unit (ref_indicators.numerator, e.g. computers in use); null for amounts."),
    "denominator_sum": ("Sum of the reporting units' denominators (ref_indicators.denominator, e.g. civil "
                        "servants); null for amounts."),
    "value": ("Province value in the indicator's unit (ref_indicators.unit): percent (0-100) or per 100 staff "
              "for ratios = numerator_sum / denominator_sum x scale; a count or VND for amounts = sum over units."),
    "units_reported": "Number of distinct reporting units whose values entered the row (count).",
    "methodology_id": "Index methodology id (e.g. ict-index): a file under readiness/data/methodologies.",
    "methodology_version": "Version of the methodology file the index was computed with.",
    "components": ("Sub-index scores by component id (e.g. infrastructure, human_resources, application), each "
                   "0 to 1, unitless; a component the province reported nothing for is absent."),
    "readiness_index": ("Composite readiness index, 0 to 1, unitless (1 = every indicator at or above its "
                        "reference value), rounded half up to the methodology's decimals."),
    "rank": ("Competition rank within period, basis and methodology: 1 = highest index; ties share a rank and "
             "the next rank is skipped."),
    "previous_rank": ("Rank in the previous period of the same report type, basis and methodology; null if not "
                      "ranked then."),
    "rank_change": "previous_rank - rank: positive = moved up, 0 = unchanged; null if not ranked before.",
    "input_table": "Lineage: the silver table the index was computed from.",
    "input_version": "Lineage: the Delta version of input_table the index was computed from.",
    "expected": ("Reporting units expected to report: the registry in force at the end of the period's data "
                 "window (count)."),
    "received": "Expected units that submitted at least one report for the period (count).",
    "on_time": ("Expected units whose first submission was at or before the end of the due date, 23:59:59 in "
                f"{ZONE_TEXT} (count)."),
    "late": f"Expected units whose first submission came after the end of the due date in {LOCAL_TZ} (count).",
    "missing": "expected - received: expected units with no submission (count).",
    "received_rate": "received / expected x 100: percent (0-100), 2 decimals.",
    "on_time_rate": "on_time / expected x 100: percent (0-100), 2 decimals.",
    "missing_units": "Codes of the expected units that did not report, sorted (array of unit codes).",
    "plan_year": "Calendar year of the province's plan whose targets apply to the period.",
    "plan_reference": "The plan document, e.g. 128/KH-UBND.",
    "plan_event_id": "Event id (UUID) of the plan revision used.",
    "plan_revision": "Revision number of the plan used (the latest revision wins).",
    "comparison": "at_least: the target is a minimum; at_most: the target is a maximum.",
    "target_value": "Target in the indicator's unit (ref_indicators.unit; percent for ratios).",
    "actual": ("The province's value for the period in the indicator's unit (gold_indicator_values.value, "
               "basis as_reported); null if it reported none."),
    "attainment_ratio": ("actual / target (at_least) or target / actual (at_most): unitless, 4 decimals; "
                         "1 or more = target met."),
    "on_track": "true if the target is met, false if not; null without an actual value.",
    "status": "on_track, behind, or no_actual (no value reported for the indicator).",
}
TABLE_COLUMN_COMMENTS: dict[tuple[str, str], str] = {
    ("ref_provinces", "code"): "Province code (text).",
    ("ref_provinces", "name"): "Province name in Vietnamese (Unicode NFC).",
    ("ref_provinces", "kind"): "province, or city (thành phố trực thuộc trung ương) for the 2025 units.",
    ("ref_provinces", "valid_from"): f"First day in force (calendar day, {LOCAL_TZ}).",
    ("ref_provinces", "valid_to"): f"Last day in force, inclusive (calendar day, {LOCAL_TZ}); 9999-12-31 if in force.",
    ("ref_provinces", "code_2025"): "Code of the 2025 province this province is part of (its own code for a 2025 province).",
    ("ref_indicators", "code"): "Indicator code (indicator_code in the gold tables).",
    ("ref_indicators", "name_vi"): "Indicator name in Vietnamese (Unicode NFC).",
    ("ref_indicators", "name_en"): "Indicator name in English.",
    ("ref_indicators", "pillar"): "Pillar: infrastructure, human_resources, application, cybersecurity or investment.",
    ("ref_indicators", "unit"): "Unit of the indicator's value: percent, per_100 (per 100 civil servants), count or VND.",
    ("ref_indicators", "numerator"): "What the numerator counts (ratio indicators).",
    ("ref_indicators", "denominator"): "What the denominator counts (ratio indicators).",
    ("ref_indicators", "scale"): "Multiplier from numerator / denominator to the value (100 for percent and per 100).",
    ("ref_indicators", "direction"): "higher or lower: which way is better.",
    ("ref_indicators", "rollup"): "ratio_of_sums (sum numerators and denominators, then divide) or sum (amounts).",
}
UNDESCRIBED = "Not described yet (a column added after the analysts' catalogue was written)."


def table_description(table: str) -> str:
    return TABLE_DESCRIPTIONS.get(table) or f"Gold table {table} (not described yet)."


def column_comment(table: str, column: str) -> str:
    return TABLE_COLUMN_COMMENTS.get((table, column)) or COLUMN_COMMENTS.get(column) or UNDESCRIBED


# --- the gold tables in the lake -------------------------------------------------------------------

def is_delta_table(path: Path) -> bool:
    return DeltaTable.is_deltatable(str(path))


def gold_tables(settings: Settings) -> list[str]:
    """Names of the ``gold_*`` Delta tables under the lake directory, sorted."""
    lake = Path(settings.lake_dir)
    if not lake.is_dir():
        return []
    return sorted(p.name for p in lake.iterdir() if p.name.startswith(GOLD_PREFIX) and p.is_dir() and is_delta_table(p))


def delta_fields(path: str | Path) -> list[dict]:
    """The current schema's fields of the Delta table at ``path``, read by delta-rs (no Spark).

    delta-rs replays the log from its last checkpoint, so the schema is found also when the
    commits that set it have been cleaned up.
    """
    try:
        table = DeltaTable(str(path))
    except (TableNotFoundError, OSError) as exc:
        raise ValueError(f"no schema found in the Delta log of {path}: {exc}") from exc
    return json.loads(table.schema().to_json())["fields"]


def delta_columns(path: str | Path) -> list[str]:
    return [f["name"] for f in delta_fields(path)]


# --- reference views ------------------------------------------------------------------------------

REFERENCE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "ref_provinces": [("code", "string"), ("name", "string"), ("kind", "string"), ("valid_from", "date"),
                      ("valid_to", "date"), ("code_2025", "string")],
    "ref_indicators": [("code", "string"), ("name_vi", "string"), ("name_en", "string"), ("pillar", "string"),
                       ("unit", "string"), ("numerator", "string"), ("denominator", "string"),
                       ("scale", "double"), ("direction", "string"), ("rollup", "string")],
}


def reference_rows() -> dict[str, list[tuple]]:
    """Rows of the reference views, from the reference data in the repository."""
    mapping = province_mapping()
    # Codes of former provinces are reused by 2025 provinces: a 2025 province maps to itself.
    province_rows = [(p.code, p.name, p.kind, p.valid_from, p.valid_to,
                      p.code if p.valid_from >= REORGANISATION_DATE else mapping[p.code]) for p in provinces()]
    indicator_rows = [(i.code, i.name_vi, i.name_en, i.pillar, i.unit, i.numerator or None, i.denominator or None,
                       i.scale, i.direction, i.rollup) for i in indicators()]
    return {"ref_provinces": province_rows, "ref_indicators": indicator_rows}


def sql_string(text: str) -> str:
    """A Spark SQL string literal (backslash escapes are on by default)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_literal(value: object, kind: str) -> str:
    if value is None:
        return f"CAST(NULL AS {kind.upper()})"
    if kind == "date":
        return f"DATE '{value.isoformat()}'"
    if kind == "double":
        return f"CAST({float(value)!r} AS DOUBLE)"
    return sql_string(str(value))


def reference_select(name: str) -> str:
    """``SELECT`` of a reference view's rows as an inline table (no files, no temporary views)."""
    columns = REFERENCE_COLUMNS[name]
    rows = ",\n  ".join("(" + ", ".join(_sql_literal(v, k) for v, (_, k) in zip(row, columns)) + ")"
                        for row in reference_rows()[name])
    return f"SELECT * FROM VALUES\n  {rows}\nAS t({', '.join(c for c, _ in columns)})"


# --- as of: Delta time travel ---------------------------------------------------------------------

class AsOfError(ValueError):
    """An ``--as-of`` that cannot be parsed or that names a version no table has."""


AS_OF_FORMS = (f"YYYY-MM-DD (end of that day in {LOCAL_TZ}), an ISO date-time ({LOCAL_TZ} unless "
               "it has an offset), N or vN (Delta version N of every table), TABLE@N[,TABLE@N] (those tables "
               "at those versions, the others as published at that time), or tag:NAME (the commits whose "
               "userMetadata is NAME)")
_TABLE_AT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)@v?(\d+)$")


@dataclass(frozen=True)
class AsOf:
    text: str
    moment: datetime | None = None  # an aware instant: every table at its last commit at or before it
    version: int | None = None  # this Delta version of every table
    table_versions: tuple[tuple[str, int], ...] = ()  # these tables at these versions
    tag: str | None = None  # commits whose userMetadata is this

    def describe(self) -> str:
        if self.moment is not None:
            local = self.moment.astimezone(ZoneInfo(LOCAL_TZ))
            return f"as published at {local.isoformat(timespec='seconds')} ({LOCAL_TZ})"
        if self.version is not None:
            return f"Delta version {self.version} of every table"
        if self.table_versions:
            return "as of " + ", ".join(f"{t} version {v}" for t, v in self.table_versions)
        return f"as of the commits tagged {self.tag!r}"


def end_of_day(day: date, tz: str = LOCAL_TZ) -> datetime:
    """The last microsecond of ``day`` in ``tz``, as an aware UTC datetime."""
    return datetime.combine(day, time(23, 59, 59, 999999), ZoneInfo(tz)).astimezone(timezone.utc)


def parse_as_of(text: str, tz: str = LOCAL_TZ) -> AsOf:
    raw = (text or "").strip()
    if not raw:
        raise AsOfError(f"--as-of is empty; expected {AS_OF_FORMS}")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            return AsOf(raw, moment=end_of_day(date.fromisoformat(raw), tz))
        except ValueError as exc:
            raise AsOfError(f"--as-of {raw!r}: {exc}") from None
    if re.fullmatch(r"[vV]?\d+", raw):
        return AsOf(raw, version=int(raw.lstrip("vV")))
    if raw.lower().startswith("tag:"):
        tag = raw[4:].strip()
        if not tag:
            raise AsOfError("--as-of tag: needs a name, e.g. tag:published-2026Q3")
        return AsOf(raw, tag=tag)
    if "@" in raw:
        pairs = []
        for part in raw.split(","):
            match = _TABLE_AT.match(part.strip())
            if not match:
                raise AsOfError(f"--as-of {raw!r}: {part.strip()!r} is not TABLE@VERSION")
            pairs.append((match.group(1), int(match.group(2))))
        if len({t for t, _ in pairs}) != len(pairs):
            raise AsOfError(f"--as-of {raw!r} names a table twice")
        return AsOf(raw, table_versions=tuple(pairs))
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise AsOfError(f"--as-of {raw!r} is not understood; expected {AS_OF_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return AsOf(raw, moment=moment.astimezone(timezone.utc))


@dataclass(frozen=True)
class Commit:
    version: int
    timestamp: datetime  # aware, UTC
    user_metadata: str | None = None


@dataclass
class Resolution:
    """Which Delta version of each table to read (None: the latest), and what was left out and why."""
    versions: dict[str, int | None]
    left_out: dict[str, str] = field(default_factory=dict)


def pick_versions(histories: dict[str, list[Commit]], as_of: AsOf | None) -> Resolution:
    """Choose each table's version for ``as_of`` from the tables' commit histories (pure)."""
    if as_of is None:
        return Resolution({t: None for t in histories})
    result = Resolution({})

    def at_moment(tables: list[str], moment: datetime) -> None:
        for table in tables:
            before = [c.version for c in histories[table] if c.timestamp <= moment]
            if before:
                result.versions[table] = max(before)
            else:
                result.left_out[table] = f"not published yet at {moment.astimezone(ZoneInfo(LOCAL_TZ)).isoformat(timespec='seconds')}"

    if as_of.moment is not None:
        at_moment(sorted(histories), as_of.moment)
        return result
    if as_of.version is not None:
        for table in sorted(histories):
            versions = sorted(c.version for c in histories[table])
            if as_of.version in versions:
                result.versions[table] = as_of.version
            else:
                result.left_out[table] = f"has no version {as_of.version} (versions {versions[0]}..{versions[-1]})"
        if not result.versions:
            raise AsOfError(f"no gold table has Delta version {as_of.version}")
        return result
    named: dict[str, Commit] = {}
    if as_of.table_versions:
        for table, version in as_of.table_versions:
            if table not in histories:
                raise AsOfError(f"--as-of names {table!r}, which is not a gold table ({', '.join(sorted(histories))})")
            commit = next((c for c in histories[table] if c.version == version), None)
            if commit is None:
                versions = sorted(c.version for c in histories[table])
                raise AsOfError(f"{table} has no Delta version {version} (versions {versions[0]}..{versions[-1]})")
            named[table] = commit
    else:
        for table, commits in histories.items():
            tagged = [c for c in commits if c.user_metadata == as_of.tag]
            if tagged:
                named[table] = max(tagged, key=lambda c: c.version)
        if not named:
            raise AsOfError(f"no commit of any gold table is tagged {as_of.tag!r} (Delta commit userMetadata)")
    result.versions.update({t: c.version for t, c in named.items()})
    at_moment(sorted(set(histories) - set(named)), max(c.timestamp for c in named.values()))
    return result


# --- snapshots in a Spark session -----------------------------------------------------------------

@dataclass
class Snapshot:
    """The tables registered in a Spark session: name -> Delta version read (None for reference views)."""
    tables: dict[str, int | None]
    as_of: AsOf | None = None
    left_out: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        read = ", ".join(f"{t}@v{v}" for t, v in self.tables.items() if v is not None)
        when = self.as_of.describe() if self.as_of else "latest"
        return f"{when}: {read or 'no gold tables'}"


def table_history(spark, path: str) -> list[Commit]:
    from delta.tables import DeltaTable as SparkDeltaTable  # the Spark session is the caller's
    from pyspark.sql import functions as F

    rows = (SparkDeltaTable.forPath(spark, path).history()
            .select("version", F.unix_micros("timestamp").alias("us"), "userMetadata").collect())
    return [Commit(int(r["version"]), datetime.fromtimestamp(r["us"] / 1e6, timezone.utc), r["userMetadata"])
            for r in rows]


def current_versions(spark, settings: Settings, tables: list[str]) -> dict[str, int]:
    from delta.tables import DeltaTable as SparkDeltaTable

    return {t: int(SparkDeltaTable.forPath(spark, settings.table_path(t)).history(1).collect()[0]["version"])
            for t in tables}


def resolve_versions(spark, settings: Settings, as_of: AsOf | None) -> Resolution:
    """Each gold table's Delta version to read for ``as_of`` (the current version if None)."""
    tables = gold_tables(settings)
    if as_of is None:
        return Resolution(dict(current_versions(spark, settings, tables)))
    return pick_versions({t: table_history(spark, settings.table_path(t)) for t in tables}, as_of)


def open_snapshot(spark, settings: Settings, as_of: AsOf | None = None, database: bool = True) -> Snapshot:
    """Register every gold table (at the versions ``as_of`` picks) and the reference views.

    Each table is a temporary view under its own name and, if ``database``, also a view
    ``readiness.<table>`` in the session catalog, so SQL written for the JDBC server runs as is.
    Versions are pinned: the views read exactly the resolved Delta versions.
    """
    resolution = resolve_versions(spark, settings, as_of)
    if database:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        for name, temporary in spark.sql(f"SHOW VIEWS IN {DATABASE}").select("viewName", "isTemporary").collect():
            if not temporary and name.startswith(GOLD_PREFIX) and name not in resolution.versions:
                spark.sql(f"DROP VIEW IF EXISTS {DATABASE}.{name}")
    for name, version in resolution.versions.items():
        source = f"delta.`{settings.table_path(name)}`" + (f" VERSION AS OF {version}" if version is not None else "")
        spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS SELECT * FROM {source}")
        if database:
            spark.sql(f"CREATE OR REPLACE VIEW {DATABASE}.{name} AS SELECT * FROM {source}")
    for name in resolution.left_out:
        spark.sql(f"DROP VIEW IF EXISTS {name}")
    for name in REFERENCE_COLUMNS:
        select = reference_select(name)
        spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {select}")
        if database:
            spark.sql(f"CREATE OR REPLACE VIEW {DATABASE}.{name} AS {select}")
    return Snapshot(dict(resolution.versions), as_of, dict(resolution.left_out))
