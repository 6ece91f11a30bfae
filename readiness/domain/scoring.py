"""Readiness indexes as data: methodologies, normalisation, composites, rounding and ranking.

A methodology is a JSON file under ``data/methodologies/`` (a new methodology is a new file). This
module is plain Python on purpose: a ranking covers at most 63 provinces per period, and one
implementation serves both the aggregation job and the analysts' ``readiness index`` command, so a
published ranking and a recomputation of it cannot disagree.
"""
from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from readiness.settings import PACKAGE_DATA

METHODOLOGY_DIR = PACKAGE_DATA / "methodologies"
NORMALISATIONS = ("ratio_to_reference", "min_max", "z_score", "identity")
COMPOSITES = ("weighted_mean", "points_sum")


class MethodologyError(ValueError):
    pass


@dataclass(frozen=True)
class IndicatorRule:
    code: str
    weight: float
    method: str
    reference: float | None
    cap: float | None
    lower_is_better: bool


@dataclass(frozen=True)
class Component:
    id: str
    weight: float  # weight in a weighted mean, or points in a points sum
    indicators: tuple[IndicatorRule, ...]


@dataclass(frozen=True)
class Methodology:
    id: str
    version: str
    name: str
    components: tuple[Component, ...]
    composite: str
    total_points: float | None
    decimals: int
    path: Path | None = None

    @property
    def indicator_codes(self) -> list[str]:
        return sorted({r.code for c in self.components for r in c.indicators})


def parse_methodology(data: Mapping, path: Path | None = None) -> Methodology:
    try:
        default = data.get("normalisation", {"method": "identity"})
        components = []
        for comp in data["components"]:
            rules = []
            for ind in comp.get("indicators", []):
                norm = {**default, **ind.get("normalisation", {})}
                if norm["method"] not in NORMALISATIONS:
                    raise MethodologyError(f"indicator {ind['code']}: normalisation {norm['method']!r} not in {NORMALISATIONS}")
                rules.append(IndicatorRule(ind["code"], float(ind.get("weight", 1)), norm["method"],
                                           norm.get("reference"), norm.get("cap"),
                                           ind.get("direction", "higher") == "lower"))
            components.append(Component(comp["id"], float(comp.get("weight", comp.get("points", 1))), tuple(rules)))
        composite = data["composite"]["method"]
        if composite not in COMPOSITES:
            raise MethodologyError(f"composite {composite!r} not in {COMPOSITES}")
        return Methodology(
            id=data["id"], version=str(data["version"]), name=data.get("name", data["id"]),
            components=tuple(components), composite=composite,
            total_points=data["composite"].get("total_points"),
            decimals=int(data.get("rounding", {}).get("decimals", 4)), path=path,
        )
    except KeyError as exc:
        raise MethodologyError(f"{path or 'methodology'}: missing key {exc.args[0]!r}") from None


def load_methodology(name: str, directory: Path = METHODOLOGY_DIR) -> Methodology:
    """Load by id (``ict-index``: the highest version file) or by file path."""
    candidate = Path(name)
    if candidate.suffix == ".json" and candidate.exists():
        return parse_methodology(json.loads(candidate.read_text(encoding="utf-8")), candidate)
    found = [parse_methodology(json.loads(p.read_text(encoding="utf-8")), p) for p in sorted(directory.glob("*.json"))]
    matches = [m for m in found if m.id == name]
    if not matches:
        raise MethodologyError(f"no methodology {name!r} in {directory}; have {sorted({m.id for m in found})}")
    return max(matches, key=lambda m: _version_key(m.version))


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))


@lru_cache(maxsize=None)
def available_methodologies(directory: Path = METHODOLOGY_DIR) -> tuple[str, ...]:
    return tuple(sorted({json.loads(p.read_text(encoding="utf-8"))["id"] for p in directory.glob("*.json")}))


def round_half_up(value: float, decimals: int) -> float:
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def competition_ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """Competition ranking ("1224"): equal scores share a rank and the next rank skips."""
    ordered = sorted(scores.values(), reverse=True)
    first_position = {}
    for position, score in enumerate(ordered, start=1):
        first_position.setdefault(score, position)
    return {unit: first_position[score] for unit, score in scores.items()}


def normalise(rule: IndicatorRule, values: Mapping[str, float]) -> dict[str, float]:
    """Normalise one indicator's values across the units of one period to [0, 1]."""
    present = {u: v for u, v in values.items() if v is not None and not math.isnan(v)}
    if rule.method == "identity":
        result = dict(present)
    elif rule.method == "ratio_to_reference":
        if not rule.reference:
            raise MethodologyError(f"{rule.code}: ratio_to_reference needs a reference value")
        cap = rule.cap if rule.cap is not None else 1.0
        if rule.lower_is_better:
            result = {u: min(cap, rule.reference / v) if v > 0 else cap for u, v in present.items()}
        else:
            result = {u: min(cap, v / rule.reference) for u, v in present.items()}
        return result
    elif rule.method == "min_max":
        low, high = min(present.values(), default=0.0), max(present.values(), default=0.0)
        result = {u: (v - low) / (high - low) if high > low else 1.0 for u, v in present.items()}
    else:  # z_score rescaled to [0, 1] by min-max over the z-scores
        mean = statistics.fmean(present.values()) if present else 0.0
        spread = statistics.pstdev(present.values()) if len(present) > 1 else 0.0
        z = {u: (v - mean) / spread if spread else 0.0 for u, v in present.items()}
        low, high = min(z.values(), default=0.0), max(z.values(), default=0.0)
        result = {u: (s - low) / (high - low) if high > low else 1.0 for u, s in z.items()}
    if rule.lower_is_better:
        result = {u: 1.0 - v for u, v in result.items()}
    return result


@dataclass(frozen=True)
class IndexRow:
    unit: str
    components: dict[str, float | None]
    index: float
    rank: int


def composite(methodology: Methodology, components: Mapping[str, Mapping[str, float | None]]) -> list[IndexRow]:
    """Composite index and competition rank from component values per unit.

    ``components``: unit -> component id -> value in [0, 1]. A missing component counts as 0 so a
    province cannot rank higher by not reporting. Rounding (half up) happens before ranking.
    """
    rows = []
    for unit, values in components.items():
        parts = [(c.weight, values.get(c.id)) for c in methodology.components]
        filled = [(w, 0.0 if v is None else float(v)) for w, v in parts]
        if methodology.composite == "weighted_mean":
            total_weight = sum(w for w, _ in filled)
            raw = sum(w * v for w, v in filled) / total_weight if total_weight else 0.0
        else:
            points = methodology.total_points or sum(w for w, _ in filled)
            raw = sum(w * v for w, v in filled) / points
        rows.append((unit, dict(values), round_half_up(raw, methodology.decimals)))
    ranks = competition_ranks({unit: score for unit, _, score in rows})
    return sorted((IndexRow(u, c, s, ranks[u]) for u, c, s in rows), key=lambda r: (r.rank, r.unit))


def component_values(methodology: Methodology,
                     indicator_values: Mapping[str, Mapping[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """Component values per unit from indicator values per unit (unit -> indicator -> value).

    A component is the weighted mean of its normalised indicators; indicators a unit did not report
    count as 0 for that unit. A component whose indicators nobody reported is None.
    """
    units = sorted(indicator_values)
    result: dict[str, dict[str, float | None]] = {u: {} for u in units}
    for comp in methodology.components:
        normalised = {r.code: normalise(r, {u: indicator_values[u].get(r.code) for u in units}) for r in comp.indicators}
        reported = [r for r in comp.indicators if normalised[r.code]]
        total = sum(r.weight for r in reported)
        for unit in units:
            if not reported or not total:
                result[unit][comp.id] = None
                continue
            result[unit][comp.id] = sum(r.weight * normalised[r.code].get(unit, 0.0) for r in reported) / total
    return result


def rank_rows(methodology: Methodology, indicator_values: Mapping[str, Mapping[str, float | None]]) -> list[IndexRow]:
    return composite(methodology, component_values(methodology, indicator_values))


def read_components_csv(lines: Iterable[str]) -> dict[str, dict[str, float]]:
    """Parse ``unit,component,value`` CSV into unit -> component -> value."""
    import csv

    reader = csv.DictReader(lines)
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != ["unit", "component", "value"]:
        raise MethodologyError(f"components CSV header must be unit,component,value; got {reader.fieldnames}")
    result: dict[str, dict[str, float]] = {}
    for line, row in enumerate(reader, start=2):
        try:
            value = float(row["value"])
        except (TypeError, ValueError):
            raise MethodologyError(f"line {line}: value {row['value']!r} is not a number") from None
        result.setdefault(row["unit"].strip(), {})[row["component"].strip()] = value
    return result


def shipped_methodologies() -> dict[str, str]:
    """``methodology id -> version`` that ``aggregate_period`` applies (the highest shipped version)."""
    return {m: load_methodology(m).version for m in available_methodologies()}


_METHODOLOGY_SPEC = re.compile(r"^(?P<id>[a-z0-9][a-z0-9-]*?)(?:\.v(?P<version>[0-9][0-9.]*))?$")


def resolve_methodology(spec: str | None, shipped: Mapping[str, str]) -> tuple[str, str] | None:
    """``ict-index`` or ``ict-index.v1`` (the file-name form) -> ``(id, version)``; None for no spec.

    Raises ``ValueError`` when the id is not shipped or the version is not the one the aggregation
    applies (it scores every shipped methodology at its highest version).
    """
    if not spec:
        return None
    match = _METHODOLOGY_SPEC.match(spec.strip())
    if not match:
        raise ValueError(f"methodology {spec!r} is not of the form 'ict-index' or 'ict-index.v1'")
    methodology_id, version = match["id"], match["version"]
    if methodology_id not in shipped:
        raise ValueError(f"unknown methodology {methodology_id!r}; shipped: {', '.join(sorted(shipped))}")
    if version is not None and version != shipped[methodology_id]:
        raise ValueError(f"methodology {methodology_id} version {version} is not the shipped version "
                         f"{shipped[methodology_id]} (the aggregation applies the shipped version)")
    return methodology_id, shipped[methodology_id]
