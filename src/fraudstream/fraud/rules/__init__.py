"""The dynamic rules engine: the demo's JSON rules, broadcast at run time.

Rules (:class:`Rule`, :func:`parse_rule`) change while the job runs; the job
(:func:`build_rules_job`) forks each transaction per grouping of the rules in force and
evaluates them over incremental sliding windows; alerts (:class:`RuleAlert`) explain
themselves; the :class:`RuleBook` keeps the versioned rule set and its audit log.
"""

from __future__ import annotations

from fraudstream.fraud.rules.alert import RuleAlert
from fraudstream.fraud.rules.functions import DynamicAlertFunction, DynamicKeyFunction
from fraudstream.fraud.rules.job import RulesJobStreams, build_rules_job
from fraudstream.fraud.rules.model import (
    DEMO_RULES,
    Aggregator,
    ControlType,
    LimitOperator,
    Rule,
    RuleFilter,
    RuleState,
    parse_rule,
    parse_rule_csv,
    parse_rules,
)
from fraudstream.fraud.rules.rulebook import AuditEntry, RuleBook

__all__ = [
    "DEMO_RULES",
    "Aggregator",
    "AuditEntry",
    "ControlType",
    "DynamicAlertFunction",
    "DynamicKeyFunction",
    "LimitOperator",
    "Rule",
    "RuleAlert",
    "RuleBook",
    "RuleFilter",
    "RuleState",
    "RulesJobStreams",
    "build_rules_job",
    "parse_rule",
    "parse_rule_csv",
    "parse_rules",
]
