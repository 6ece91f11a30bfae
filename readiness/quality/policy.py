"""The quality gate's policy and the cross-indicator validation rules, both kept as data."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from readiness.settings import PACKAGE_DATA

DATA_DIR = PACKAGE_DATA
ACTIONS = ("quarantine", "fail_batch", "warn")
OPERATORS = ("<=", "<", ">=", ">", "==", "!=")
STRATEGIES = ("skip_if_any_value_missing", "skip_if_all_values_missing", "never_skip")
TERM = re.compile(r"^(?P<code>[a-z0-9_]+)\.(?P<field>numerator|denominator|value)$")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Term:
    indicator_code: str | None  # None for a number
    field: str | None
    number: float | None = None


@dataclass(frozen=True)
class ValidationRule:
    id: str
    name: str
    left: tuple[Term, ...]
    operator: str
    right: tuple[Term, ...]
    importance: str
    missing_value_strategy: str
    left_text: str
    right_text: str


@dataclass(frozen=True)
class GatePolicy:
    suite_rule_actions: dict[str, str]
    validation_rule_actions: dict[str, str]
    outlier_threshold: float
    outlier_min_history: int
    outlier_max_history: int
    outlier_action: str
    # A province with at least min_events_for_share reports, more than max_quarantined_share of them
    # quarantined, is held back (its new reports are not published this run).
    max_quarantined_share: float
    min_events_for_share: int

    def suite_action(self, rule: str, severity: str) -> str:
        return self.suite_rule_actions.get(rule, severity)


def _check_action(action: str, where: str) -> str:
    if action not in ACTIONS:
        raise PolicyError(f"{where}: action {action!r} is not one of {ACTIONS}")
    return action


def load_policy(path: Path = DATA_DIR / "gate_policy.json") -> GatePolicy:
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        outliers, province = data["outliers"], data["province"]
        return GatePolicy(
            suite_rule_actions={k: _check_action(v, f"{path}: suite_rule_actions") for k, v in data.get("suite_rule_actions", {}).items()},
            validation_rule_actions={k: _check_action(v, f"{path}: validation_rule_actions")
                                     for k, v in data["validation_rule_actions"].items()},
            outlier_threshold=float(outliers["threshold"]),
            outlier_min_history=int(outliers["min_history"]),
            outlier_max_history=int(outliers["max_history"]),
            outlier_action=_check_action(outliers["action"], f"{path}: outliers"),
            max_quarantined_share=float(province["max_quarantined_share"]),
            min_events_for_share=int(province["min_events_for_share"]),
        )
    except KeyError as exc:
        raise PolicyError(f"{path}: missing key {exc.args[0]!r}") from None


def _side(text: str, where: str) -> tuple[Term, ...]:
    terms = []
    for part in (p.strip() for p in text.split("+")):
        match = TERM.match(part)
        if match:
            terms.append(Term(match["code"], match["field"]))
            continue
        try:
            terms.append(Term(None, None, float(part)))
        except ValueError:
            raise PolicyError(f"{where}: {part!r} is neither 'indicator.field' nor a number") from None
    return tuple(terms)


def load_validation_rules(path: Path = DATA_DIR / "validation_rules.json",
                          known_indicators: set[str] | None = None) -> list[ValidationRule]:
    data = json.loads(path.read_text(encoding="utf-8"))
    rules, seen = [], set()
    for raw in data["rules"]:
        where = f"{path.name} rule {raw.get('id', '?')}"
        if raw["operator"] not in OPERATORS:
            raise PolicyError(f"{where}: operator {raw['operator']!r} is not one of {OPERATORS}")
        strategy = raw.get("missing_value_strategy", "skip_if_any_value_missing")
        if strategy not in STRATEGIES:
            raise PolicyError(f"{where}: missing_value_strategy {strategy!r} is not one of {STRATEGIES}")
        if raw["importance"] not in ("high", "medium", "low"):
            raise PolicyError(f"{where}: importance must be high, medium or low")
        if raw["id"] in seen:
            raise PolicyError(f"{where}: duplicate rule id")
        seen.add(raw["id"])
        rule = ValidationRule(raw["id"], raw.get("name", raw["id"]), _side(raw["left"], where), raw["operator"],
                              _side(raw["right"], where), raw["importance"], strategy, raw["left"], raw["right"])
        unknown = {t.indicator_code for t in rule.left + rule.right if t.indicator_code} - (known_indicators or set())
        if known_indicators is not None and unknown:
            raise PolicyError(f"{where}: unknown indicators {sorted(unknown)}")
        rules.append(rule)
    return rules
