"""Builds the demonstration registry of reporting units, ``data/reporting_units.csv``.

The registry lists every unit expected to report, with opening and closing dates, in the shape a
province's own list would take (a province replaces its rows with its real units; the format is the
contract). Synthetic but consistent with the 2025 reorganisation: districts and former communes close
on 30 June 2025, the new communes open on 1 July 2025, and the agencies of a province that holds the
seat of a merged province carry on while those of the absorbed provinces close.

Run ``python -m readiness.dev.unit_registry`` to rebuild the file (deterministic).
"""
from __future__ import annotations

import csv
import zlib
from datetime import date
from pathlib import Path

from readiness.domain.reference import DATA_DIR, OPEN_END, REORGANISATION_DATE, _read_csv, nfc

AGENCIES = (
    "Văn phòng Ủy ban nhân dân tỉnh", "Sở Nội vụ", "Sở Tài chính", "Sở Khoa học và Công nghệ",
    "Sở Tư pháp", "Sở Y tế", "Sở Giáo dục và Đào tạo", "Sở Nông nghiệp và Môi trường",
    "Sở Xây dựng", "Sở Công Thương",
)
FIRST_DAY = date(2004, 1, 1)
LAST_FORMER_DAY = date(2025, 6, 30)
FORMER_DISTRICTS = 4
FORMER_COMMUNES = 8


def _communes_2025(province_code: str) -> int:
    """A stable pseudo-random commune count between 15 and 30 for a 2025 province."""
    return 15 + zlib.crc32(province_code.encode()) % 16


def build_rows() -> list[dict[str, str]]:
    admin = _read_csv("admin_units_2025.csv")
    rows: list[dict[str, str]] = []

    def add(code: str, kind: str, name: str, province: str, opened: date, closed: date) -> None:
        rows.append({"code": code, "kind": kind, "name": nfc(name), "province_code": province,
                     "opened_on": opened.isoformat(), "closed_on": closed.isoformat()})

    former_commune = 10001
    seats = {r["former_code"] for r in admin if r["holds_seat"] == "true"}
    for r in admin:
        former, name = r["former_code"], r["former_name"]
        continues = former in seats
        closed = OPEN_END if continues else LAST_FORMER_DAY
        province_name = r["name_2025"] if continues else name
        add(former, "province", f"Ủy ban nhân dân tỉnh {nfc(province_name)}", former, FIRST_DAY, closed)
        for n, agency in enumerate(AGENCIES, start=1):
            add(f"{former}.S{n:02d}", "agency", f"{agency} {nfc(province_name)}", former, FIRST_DAY, closed)
        for n in range(1, FORMER_DISTRICTS + 1):
            add(f"{former}.H{n:02d}", "district", f"Huyện {n} ({nfc(name)})", former, FIRST_DAY, LAST_FORMER_DAY)
        for n in range(1, FORMER_COMMUNES + 1):
            add(f"{former_commune:05d}", "commune", f"Xã {n} ({nfc(name)})", former, FIRST_DAY, LAST_FORMER_DAY)
            former_commune += 1

    new_commune = 30001
    for code, name in sorted({(r["code_2025"], r["name_2025"]) for r in admin}):
        for n in range(1, _communes_2025(code) + 1):
            label = "Phường" if n % 4 == 0 else "Xã"
            add(f"{new_commune:05d}", "commune", f"{label} {n} ({nfc(name)})", code, REORGANISATION_DATE, OPEN_END)
            new_commune += 1
    return rows


def write(path: Path = DATA_DIR / "reporting_units.csv") -> int:
    rows = build_rows()
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


if __name__ == "__main__":
    print(f"wrote {write()} reporting units")
