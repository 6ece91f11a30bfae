"""Query results as an aligned text table, CSV or XLSX. Pure Python: no Spark here.

Text is UTF-8 everywhere and Vietnamese names stay as they are (NFC in the tables). Values keep their
types where the format has them (numbers and dates in XLSX); maps, arrays and structs become JSON
text; timestamps are UTC and written with their offset.
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO

from readiness.terminal import Column, display_width, format_rows  # noqa: F401 (display_width: part of the API)

NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
XLSX_MAX_ROWS = 1_048_576 - 1  # Excel's sheet limit, less the header row


@dataclass
class QueryResult:
    """Column names, their Spark SQL types (``simpleString``) and the rows as Python values."""
    columns: list[str]
    types: list[str]
    rows: list[tuple]
    # Provenance written beside the data (XLSX "about" sheet): the SQL, the snapshot read, ...
    about: dict[str, str] = field(default_factory=dict)

    def is_numeric(self, index: int) -> bool:
        return self.types[index].split("(")[0] in NUMERIC_TYPES


# --- values as text ---------------------------------------------------------------------------

def _plain(value: object) -> object:
    """A JSON-ready copy of a nested value (Rows, maps, arrays, dates, decimals)."""
    if hasattr(value, "asDict"):
        value = value.asDict(recursive=False)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return text_value(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return text_value(value)
    if isinstance(value, (bytes, bytearray)):
        return text_value(value)
    return value


def text_value(value: object, null: str = "") -> str:
    """One value as text: the same in the table, the CSV and XLSX's text cells."""
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
            return value.isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)) or hasattr(value, "asDict"):
        return json.dumps(_plain(value), ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def format_table(result: QueryResult, null: str = "NULL") -> str:
    """An aligned table (numbers right-aligned) with a row count, as ``psql`` prints one."""
    columns = [Column(c, right=result.is_numeric(i)) for i, c in enumerate(result.columns)]
    lines = format_rows(columns, ([text_value(v, null) for v in row] for row in result.rows), sep=" | ",
                        rule_sep="-+-", align_titles=False)
    count = len(result.rows)
    lines.append(f"({count} row{'s' if count != 1 else ''})")
    return "\n".join(lines)


# --- CSV -----------------------------------------------------------------------------------------

def write_csv(result: QueryResult, handle: IO[str]) -> None:
    """RFC 4180 CSV (CRLF, quotes where needed) with a header row; NULL is an empty field."""
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([text_value(v) for v in row])


def csv_bytes(result: QueryResult, bom: bool = False) -> bytes:
    """The CSV encoded as UTF-8; with ``bom``, prefixed by a byte-order mark so Excel reads it as UTF-8."""
    buffer = io.StringIO()
    write_csv(result, buffer)
    return ("\ufeff" if bom else "").encode("utf-8") + buffer.getvalue().encode("utf-8")


def save_csv(result: QueryResult, path: str | Path, bom: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_bytes(result, bom))
    return path


# --- XLSX ----------------------------------------------------------------------------------------

def _xlsx_value(value: object) -> object:
    """A cell value: numbers, booleans, dates and text stay typed; the rest becomes text."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else text_value(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        # Excel has no time zones: an aware time is written as its UTC wall time (see the "about" sheet).
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return value
    return ILLEGAL_CHARACTERS_RE.sub("", text_value(value))


def write_xlsx(result: QueryResult, path: str | Path, sheet: str = "result") -> Path:
    """An .xlsx with the rows on ``sheet`` (bold, frozen, filterable header) and an "about" sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    if len(result.rows) > XLSX_MAX_ROWS:
        raise ValueError(f"{len(result.rows)} rows do not fit in an Excel sheet ({XLSX_MAX_ROWS} at most); use --csv")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(result.columns)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    widths = [display_width(c) for c in result.columns]
    for row in result.rows:
        values = [_xlsx_value(v) for v in row]
        ws.append(values)
        for i, value in enumerate(values):
            cell = ws.cell(row=ws.max_row, column=i + 1)
            if isinstance(value, str) and value.startswith("="):
                cell.data_type = "s"  # text that looks like a formula stays text
            elif isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
            widths[i] = max(widths[i], min(60, display_width(text_value(row[i]))))
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = min(60, width + 2)
    ws.freeze_panes = "A2"
    if result.columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(result.columns))}{max(1, ws.max_row)}"
    about = book.create_sheet("about")
    about.append(["key", "value"])
    for cell in about[1]:
        cell.font = Font(bold=True)
    for key, value in {**result.about, "columns": ", ".join(f"{c} {t}" for c, t in zip(result.columns, result.types)),
                       "rows": str(len(result.rows)),
                       "time zone": "timestamps are UTC (written without offset); dates are calendar days"}.items():
        about.append([key, _xlsx_value(value)])
        if isinstance(value, str) and value.startswith("="):
            about.cell(row=about.max_row, column=2).data_type = "s"
    about.column_dimensions["A"].width = 14
    about.column_dimensions["B"].width = 100
    book.save(path)
    return path


def rows_as_text(rows: Iterable[Sequence[object]]) -> list[list[str]]:
    """Rows as the text CSV would hold (for comparisons in tests and tools)."""
    return [[text_value(v) for v in row] for row in rows]
