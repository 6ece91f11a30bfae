"""`readiness index`: composite and ranking from published component values, as analysts run it."""
from __future__ import annotations

import subprocess
import sys


def run_index(tmp_path, methodology: str, rows: str) -> subprocess.CompletedProcess:
    components = tmp_path / "components.csv"
    components.write_text("unit,component,value\n" + rows, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "readiness.cli", "index", "--methodology", methodology,
                           "--components", str(components)], capture_output=True, text=True, timeout=60)


def test_ict_index_from_components_sorted_by_rank_then_unit(tmp_path):
    result = run_index(tmp_path, "ict-index",
                       "38,infrastructure,0.9\n38,human_resources,0.6\n38,application,0.6\n"
                       "25,infrastructure,0.6\n25,human_resources,0.9\n25,application,0.6\n"
                       "01,infrastructure,0.5\n01,human_resources,0.5\n01,application,0.5\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["unit,index,rank", "25,0.7000,1", "38,0.7000,1", "01,0.5000,3"]


def test_dti_points_weighted_sum(tmp_path):
    result = run_index(tmp_path, "dti-2022",
                       "01,awareness,1\n01,institutions,1\n01,infrastructure,1\n01,human_resources,1\n"
                       "01,cybersecurity,1\n01,smart_city,1\n01,digital_government,0.5\n01,digital_economy,0\n"
                       "01,digital_society,0\n")
    assert result.returncode == 0, result.stderr
    # (5 x 100 + 0 x 1 + 0.5 x 200) / 1000
    assert result.stdout.splitlines() == ["unit,index,rank", "01,0.6000,1"]


def test_bad_header_is_a_clear_error(tmp_path):
    components = tmp_path / "bad.csv"
    components.write_text("province,score\n01,0.5\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "readiness.cli", "index", "--methodology", "ict-index",
                             "--components", str(components)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "header must be unit,component,value" in result.stderr
