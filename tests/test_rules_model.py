"""The rule model: the demo's rules parse, bad rules are refused field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fraudstream.fraud.rules as rules_pkg
from fraudstream.exceptions import RuleValidationError
from fraudstream.fraud.rules import (
    DEMO_RULES,
    Aggregator,
    ControlType,
    LimitOperator,
    Rule,
    RuleState,
    parse_rule,
    parse_rule_csv,
    parse_rules,
)

GOOD: dict[str, Any] = dict(DEMO_RULES[0])


def refused(doc: Any) -> dict[str, str]:
    with pytest.raises(RuleValidationError) as info:
        parse_rule(doc)
    assert str(info.value).startswith("invalid rule: ")
    return info.value.errors


def test_public_names_are_stable() -> None:
    assert sorted(rules_pkg.__all__) == sorted(
        [
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
    )


def test_demo_rules_parse_with_their_fields() -> None:
    parsed = [parse_rule(doc) for doc in DEMO_RULES]
    first = parsed[0]
    assert first.rule_id == 1
    assert first.rule_state is RuleState.ACTIVE
    assert first.grouping_key_names == ("payeeId", "beneficiaryId")
    assert first.aggregate_field_name == "paymentAmount"
    assert first.aggregator_function_type is Aggregator.SUM
    assert first.limit_operator_type is LimitOperator.GREATER
    assert first.limit == 20_000_000
    assert first.window_ms == 43200 * 60_000
    assert [r.rule_state for r in parsed] == [
        RuleState.ACTIVE,
        RuleState.PAUSE,
        RuleState.ACTIVE,
        RuleState.ACTIVE,
    ]
    assert parsed[3].aggregate_field_name == "COUNT_WITH_RESET_FLINK"


def test_demo_rules_fixture_file_matches(shared_dir: Path) -> None:
    from_file = json.loads((shared_dir / "fixtures" / "demo_rules.json").read_text())
    assert from_file == list(DEMO_RULES)
    assert len(parse_rules(json.dumps(from_file))) == 4


def test_describe_reads_as_a_sentence() -> None:
    assert parse_rule(DEMO_RULES[0]).describe() == (
        "Rule 1 (v0, ACTIVE): alert when SUM(paymentAmount) > 20,000,000 over the last "
        "30 days per payeeId, beneficiaryId"
    )
    rule = parse_rule(
        {
            **GOOD,
            "filters": [{"field": "paymentType", "operator": "=", "value": "CRD"}],
            "cooldownSeconds": 600,
            "windowMinutes": 90,
        }
    )
    assert rule.describe().endswith(
        "over the last 90 minutes per payeeId, beneficiaryId for transactions with "
        'paymentType = "CRD", at most one alert per key every 600 s'
    )
    assert (
        parse_rule(DEMO_RULES[3])
        .describe()
        .startswith(
            "Rule 4 (v0, ACTIVE): alert when COUNT(*) since the last alert >= 100 "
            "over the last 1 day"
        )
    )
    control = parse_rule({"ruleState": "CONTROL", "controlType": "DELETE_RULES_ALL"})
    assert control.describe() == "Control command DELETE_RULES_ALL"


def test_json_text_bytes_and_round_trip() -> None:
    rule = parse_rule(json.dumps(GOOD).encode())
    assert parse_rule(rule.to_json_dict()) == rule
    assert parse_rule(rule) is rule
    assert rule.to_json_dict()["limit"] == 20000000


def test_symbols_and_case_are_accepted() -> None:
    for symbol, op in [
        (">", LimitOperator.GREATER),
        (">=", LimitOperator.GREATER_EQUAL),
        ("<", LimitOperator.LESS),
        ("<=", LimitOperator.LESS_EQUAL),
        ("=", LimitOperator.EQUAL),
        ("!=", LimitOperator.NOT_EQUAL),
        ("greater", LimitOperator.GREATER),
    ]:
        assert parse_rule({**GOOD, "limitOperatorType": symbol}).limit_operator_type is op
    assert parse_rule({**GOOD, "ruleState": "active"}).rule_state is RuleState.ACTIVE


def test_demo_csv_rule_format() -> None:
    rule = parse_rule_csv(
        "1,(active),(payeeId&beneficiaryId),,(paymentAmount),(sum),(>),(20000000),(43200)"
    )
    assert rule == parse_rule(GOOD)
    assert parse_rule("3,ACTIVE,beneficiaryId,,paymentAmount,SUM,>=,10000000,1440").rule_id == 3
    errors = refused("1,(active),(payeeId)")
    assert "9 comma-separated fields" in errors["rule"]
    assert "aggregatorFunctionType" in refused("1,active,payeeId,,paymentAmount,median,>,1,1")


def test_control_commands() -> None:
    for control in ControlType:
        rule = parse_rule({"ruleState": "CONTROL", "controlType": control.value})
        assert rule.is_control and rule.control_type is control
    assert "controlType" in refused({"ruleState": "CONTROL"})
    assert (
        "unknown control type"
        in refused({"ruleState": "CONTROL", "controlType": "REBOOT"})["controlType"]
    )
    assert "controlType" in refused({**GOOD, "controlType": "CLEAR_STATE_ALL"})


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"aggregatorFunctionType": "MEDIAN"}, "aggregatorFunctionType", "unknown aggregator"),
        ({"aggregatorFunctionType": 3}, "aggregatorFunctionType", "must be a string"),
        ({"groupingKeyNames": []}, "groupingKeyNames", "must not be empty"),
        ({"groupingKeyNames": "payeeId"}, "groupingKeyNames", "must be a list"),
        ({"groupingKeyNames": ["payerId"]}, "groupingKeyNames", "unknown field 'payerId'"),
        ({"groupingKeyNames": ["payeeId", "payeeId"]}, "groupingKeyNames", "named twice"),
        ({"groupingKeyNames": [1]}, "groupingKeyNames", "must be strings"),
        ({"aggregateFieldName": "amount"}, "aggregateFieldName", "unknown field 'amount'"),
        ({"aggregateFieldName": "paymentType"}, "aggregateFieldName", "not numeric"),
        ({"limitOperatorType": "~"}, "limitOperatorType", "unknown limit operator"),
        ({"limit": "NaN"}, "limit", "finite"),
        ({"limit": float("inf")}, "limit", "finite"),
        ({"limit": "ten"}, "limit", "not a number"),
        ({"limit": True}, "limit", "must be a number"),
        ({"limit": 1e300}, "limit", "magnitude"),
        ({"windowMinutes": 0}, "windowMinutes", "between 1"),
        ({"windowMinutes": -5}, "windowMinutes", "between 1"),
        ({"windowMinutes": 10**12}, "windowMinutes", "between 1"),
        ({"windowMinutes": 1.5}, "windowMinutes", "must be an integer"),
        ({"windowMinutes": "a day"}, "windowMinutes", "not an integer"),
        ({"ruleId": 0}, "ruleId", "between 1"),
        ({"ruleId": -1}, "ruleId", "between 1"),
        ({"ruleId": "x"}, "ruleId", "not an integer"),
        ({"ruleId": None}, "ruleId", "required"),
        ({"ruleState": "RUNNING"}, "ruleState", "unknown rule state"),
        ({"cooldownSeconds": -1}, "cooldownSeconds", "between 0"),
        ({"windowMinute": 5}, "windowMinute", "unknown field"),
        ({"filters": "paymentType=CRD"}, "filters", "must be a list"),
        ({"filters": [{"field": "x", "operator": "=", "value": 1}]}, "filters[0].field", "unknown"),
        (
            {"filters": [{"field": "paymentType", "operator": ">", "value": "CRD"}]},
            "filters[0].operator",
            "= or !=",
        ),
        (
            {"filters": [{"field": "paymentAmount", "operator": ">", "value": "big"}]},
            "filters[0].value",
            "not a number",
        ),
        ({"description": 5}, "description", "string"),
    ],
)
def test_invalid_fields_are_named(change: dict[str, Any], field: str, needle: str) -> None:
    errors = refused({**GOOD, **change})
    assert field in errors, errors
    assert needle in errors[field]


def test_every_bad_field_is_reported_at_once() -> None:
    errors = refused({"ruleId": 1, "ruleState": "ACTIVE", "limit": "x"})
    assert {
        "groupingKeyNames",
        "aggregateFieldName",
        "aggregatorFunctionType",
        "limitOperatorType",
        "limit",
        "windowMinutes",
    } <= set(errors)


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ("", "empty"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (b"\xff\xfe{", "UTF-8"),
        ("x" * 70_000, "at most"),
        ("{" * 5000 + "}" * 5000, "not valid JSON"),
        (json.dumps([GOOD]), "JSON object"),
    ],
)
def test_malformed_and_huge_documents(doc: str | bytes, needle: str) -> None:
    errors = refused(doc)
    assert needle in errors["rule"]


def test_non_object_json_is_refused() -> None:
    assert "JSON object" in refused(["not", "a", "rule"])["rule"]


def test_parse_rules_names_the_index() -> None:
    with pytest.raises(RuleValidationError) as info:
        parse_rules([GOOD, {**GOOD, "limit": "x"}])
    assert list(info.value.errors) == ["[1].limit"]
    lines = "\n".join(json.dumps(d) for d in DEMO_RULES)
    assert [r.rule_id for r in parse_rules(lines)] == [1, 2, 3, 4]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from([*sorted(GOOD), "filters", "cooldownSeconds", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=20),
            st.lists(st.text(max_size=12), max_size=4),
        ),
    )
)
def test_hostile_documents_either_parse_or_name_fields(doc: dict[str, Any]) -> None:
    try:
        rule = parse_rule(doc)
    except RuleValidationError as exc:
        assert exc.errors and all(isinstance(m, str) and m for m in exc.errors.values())
    else:
        assert isinstance(rule, Rule)
        assert parse_rule(rule.to_json_dict()) == rule
