"""The demo's REST API against a real uvicorn server on 127.0.0.1 (every endpoint)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudstream.fraud.transaction import Transaction
from fraudstream.service import DemoEngine, create_app
from service_server import LiveServer

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

GOOD_RULE: dict[str, Any] = {
    "ruleId": 7,
    "ruleState": "ACTIVE",
    "groupingKeyNames": ["payeeId"],
    "aggregateFieldName": "paymentAmount",
    "aggregatorFunctionType": "SUM",
    "limitOperatorType": "GREATER",
    "limit": 500,
    "windowMinutes": 10,
}

#: Every mutating endpoint (method, path, JSON body or None).
MUTATING: list[tuple[str, str, Any]] = [
    ("POST", "/api/rules", GOOD_RULE),
    ("DELETE", "/api/rules", None),
    ("DELETE", "/api/rules/1", None),
    ("POST", "/api/rules/1/pause", None),
    ("POST", "/api/rules/1/resume", None),
    ("POST", "/api/rules/pushToFlink", None),
    ("POST", "/api/syncRules", None),
    ("POST", "/api/clearState", None),
    ("POST", "/api/startTransactionsGeneration", None),
    ("POST", "/api/stopTransactionsGeneration", None),
    ("POST", "/api/generatorSpeed/100", None),
    ("POST", "/api/backtest", GOOD_RULE),
]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``predicate`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def engine() -> DemoEngine:
    return DemoEngine(rate=0)


@pytest.fixture
def client(engine: DemoEngine) -> Iterator[httpx.Client]:
    with LiveServer(create_app(engine, TOKEN)) as server, httpx.Client(base_url=server.url) as c:
        yield c


@pytest.fixture(scope="module")
def shared() -> Iterator[httpx.Client]:
    """One server for the tests that must leave everything as it was (refusals, reads)."""
    app = create_app(DemoEngine(rate=0), TOKEN)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as c:
        yield c


def rule_ids(client: httpx.Client) -> list[int]:
    return [rule["ruleId"] for rule in client.get("/api/rules").json()]


# -- rules -------------------------------------------------------------------------------------
def test_first_start_loads_the_four_demo_rules(shared: httpx.Client) -> None:
    rules = shared.get("/api/rules").json()
    assert [r["ruleId"] for r in rules] == [1, 2, 3, 4]
    assert [r["ruleState"] for r in rules] == ["ACTIVE", "PAUSE", "ACTIVE", "ACTIVE"]
    assert all(r["ruleIdStr"] == str(r["ruleId"]) for r in rules)
    assert all(isinstance(r["description"], str) and r["description"] for r in rules)


def test_add_get_and_version_a_rule(client: httpx.Client) -> None:
    created = client.post("/api/rules", json=GOOD_RULE, headers=AUTH)
    assert created.status_code == 201
    assert created.json()["ruleId"] == 7
    assert created.json()["version"] == 1
    again = client.post("/api/rules", json={**GOOD_RULE, "limit": 900}, headers=AUTH)
    assert again.json()["version"] == 2
    fetched = client.get("/api/rules/7").json()
    assert fetched["limit"] == 900
    versions = client.get("/api/rules/7/versions").json()
    assert [v["limit"] for v in versions] == [500, 900]
    audit = client.get("/api/audit", params={"limit": 2}).json()
    assert len(audit) == 2
    assert all(entry["ruleId"] == 7 for entry in audit)


def test_the_demo_wire_wrapper_rule_payload_is_accepted(client: httpx.Client) -> None:
    body = {"id": 8, "rulePayload": json.dumps({**GOOD_RULE, "ruleId": 8})}
    response = client.post("/api/rules", json=body, headers=AUTH)
    assert response.status_code == 201
    assert 8 in rule_ids(client)


def test_the_largest_rule_id_stays_exact(client: httpx.Client) -> None:
    big = 2**53  # rule ids are capped where JSON numbers stay exact in browsers
    body = json.dumps({**GOOD_RULE, "ruleId": big})
    response = client.post(
        "/api/rules", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 201
    assert response.json()["ruleIdStr"] == str(big)
    assert client.get(f"/api/rules/{big}").json()["ruleIdStr"] == str(big)


BAD_RULES: list[tuple[str, dict[str, Any], str]] = [
    ("missing id", {k: v for k, v in GOOD_RULE.items() if k != "ruleId"}, "ruleId"),
    ("id is text", {**GOOD_RULE, "ruleId": "seven"}, "ruleId"),
    ("negative id", {**GOOD_RULE, "ruleId": -1}, "ruleId"),
    ("id beyond 2**53", {**GOOD_RULE, "ruleId": 2**53 + 1}, "ruleId"),
    ("unknown state", {**GOOD_RULE, "ruleState": "SLEEPING"}, "ruleState"),
    ("unknown key field", {**GOOD_RULE, "groupingKeyNames": ["nope"]}, "groupingKeyNames"),
    ("keys not a list", {**GOOD_RULE, "groupingKeyNames": "payeeId"}, "groupingKeyNames"),
    ("unknown aggregate field", {**GOOD_RULE, "aggregateFieldName": "x"}, "aggregateFieldName"),
    (
        "unknown aggregator",
        {**GOOD_RULE, "aggregatorFunctionType": "MEDIAN"},
        "aggregatorFunctionType",
    ),
    ("unknown operator", {**GOOD_RULE, "limitOperatorType": "ABOUT"}, "limitOperatorType"),
    ("limit is text", {**GOOD_RULE, "limit": "lots"}, "limit"),
    ("limit missing", {k: v for k, v in GOOD_RULE.items() if k != "limit"}, "limit"),
    ("window zero", {**GOOD_RULE, "windowMinutes": 0}, "windowMinutes"),
    ("window negative", {**GOOD_RULE, "windowMinutes": -5}, "windowMinutes"),
    ("window text", {**GOOD_RULE, "windowMinutes": "ten"}, "windowMinutes"),
]


@pytest.mark.parametrize(("case", "rule", "field"), BAD_RULES, ids=[c[0] for c in BAD_RULES])
def test_a_bad_rule_is_refused_with_its_field_and_changes_nothing(
    shared: httpx.Client, case: str, rule: dict[str, Any], field: str
) -> None:
    before = shared.get("/api/rules").json()
    audit_before = shared.get("/api/audit").json()
    response = shared.post("/api/rules", json=rule, headers=AUTH)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert field in errors
    assert isinstance(errors[field], str) and errors[field]
    assert shared.get("/api/rules").json() == before
    assert shared.get("/api/audit").json() == audit_before


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"a string"', b"", b"{", b'{"rulePayload": "{broken"}'],
    ids=["text", "list", "string", "empty", "truncated", "bad payload"],
)
def test_malformed_bodies_are_422_and_change_nothing(shared: httpx.Client, body: bytes) -> None:
    before = rule_ids(shared)
    response = shared.post(
        "/api/rules", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert rule_ids(shared) == before


def test_replacing_a_rule_with_a_bad_version_keeps_the_old_one(client: httpx.Client) -> None:
    client.post("/api/rules", json=GOOD_RULE, headers=AUTH)
    response = client.post("/api/rules", json={**GOOD_RULE, "limit": None}, headers=AUTH)
    assert response.status_code == 422
    assert client.get("/api/rules/7").json()["limit"] == 500
    assert len(client.get("/api/rules/7/versions").json()) == 1


def test_pause_resume_and_delete(client: httpx.Client) -> None:
    paused = client.post("/api/rules/1/pause", headers=AUTH).json()
    assert paused["ruleState"] == "PAUSE"
    assert client.get("/api/rules/1").json()["ruleState"] == "PAUSE"
    resumed = client.post("/api/rules/1/resume", headers=AUTH).json()
    assert resumed["ruleState"] == "ACTIVE"
    deleted = client.delete("/api/rules/1", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json()["ruleId"] == 1
    assert rule_ids(client) == [2, 3, 4]
    assert client.delete("/api/rules", headers=AUTH).json() == {"deleted": 3}
    assert rule_ids(client) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/rules/999"),
        ("DELETE", "/api/rules/999"),
        ("POST", "/api/rules/999/pause"),
        ("POST", "/api/rules/999/resume"),
        ("GET", "/api/rules/999/versions"),
        ("GET", "/api/nothing-here"),
        ("GET", "/static/missing.js"),
    ],
)
def test_unknown_things_are_404(shared: httpx.Client, method: str, path: str) -> None:
    assert shared.request(method, path, headers=AUTH).status_code == 404


@pytest.mark.parametrize("rule_id", ["abc", "-1", str(2**63), "1.5"])
def test_bad_rule_ids_in_the_path_are_422(shared: httpx.Client, rule_id: str) -> None:
    assert shared.get(f"/api/rules/{rule_id}").status_code == 422


def test_push_sync_and_clear_state(client: httpx.Client) -> None:
    assert client.post("/api/rules/pushToFlink", headers=AUTH).json() == {"pushed": 4}
    assert client.post("/api/syncRules", headers=AUTH).json() == {"pushed": 4}
    assert client.post("/api/clearState", headers=AUTH).json() == {"ok": True}


# -- security ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body"), MUTATING)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-Token": "wrong"}, {"Authorization": TOKEN}],
    ids=["none", "wrong bearer", "wrong x-token", "no scheme"],
)
def test_every_mutating_endpoint_needs_the_token(
    shared: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    before = shared.get("/api/rules").json()
    response = shared.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert shared.get("/api/rules").json() == before


def test_the_x_token_header_works_too(client: httpx.Client) -> None:
    response = client.post("/api/rules", json=GOOD_RULE, headers={"X-Token": TOKEN})
    assert response.status_code == 201


def test_large_bodies_are_refused_with_413(client: httpx.Client) -> None:
    huge = {**GOOD_RULE, "padding": "x" * 70_000}
    assert client.post("/api/rules", json=huge, headers=AUTH).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted while reading
        yield b'{"padding": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}'

    response = client.post(
        "/api/rules", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert 7 not in rule_ids(client)


def test_cors_is_closed(shared: httpx.Client) -> None:
    preflight = shared.options(
        "/api/rules",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = shared.get("/api/rules", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers


# -- generator ---------------------------------------------------------------------------------
def test_generator_start_stop_and_speed(client: httpx.Client) -> None:
    status = client.post("/api/generatorSpeed/250", headers=AUTH).json()
    assert status["speed"] == 250
    assert client.post("/api/startTransactionsGeneration", headers=AUTH).json()["running"]
    wait_for(lambda: client.get("/api/generator").json()["emitted"] > 0)
    stopped = client.post("/api/stopTransactionsGeneration", headers=AUTH).json()
    assert stopped["running"] is False
    assert client.get("/api/generator").json()["speed"] == 250


@pytest.mark.parametrize("speed", ["-1", "1e9", "abc", "nan", "inf"])
def test_bad_speeds_are_422(client: httpx.Client, speed: str) -> None:
    assert client.post(f"/api/generatorSpeed/{speed}", headers=AUTH).status_code == 422
    assert client.get("/api/generator").json()["speed"] == 0


# -- alerts, backtest, health, metrics ---------------------------------------------------------
EVERY_TX_RULE = {
    "ruleId": 42,
    "ruleState": "ACTIVE",
    "groupingKeyNames": ["paymentType"],
    "aggregateFieldName": "COUNT_FLINK",
    "aggregatorFunctionType": "SUM",
    "limitOperatorType": "GREATER_EQUAL",
    "limit": 1,
    "windowMinutes": 1,
}


def test_an_added_rule_raises_alerts_into_the_history(client: httpx.Client) -> None:
    client.post("/api/rules", json=EVERY_TX_RULE, headers=AUTH)
    client.post("/api/generatorSpeed/200", headers=AUTH)
    page = wait_for(
        lambda: client.get("/api/alerts", params={"ruleId": 42, "limit": 5}).json()["items"]
    )
    alert = page[0]
    assert alert["ruleId"] == 42
    assert alert["ruleIdStr"] == "42"
    assert alert["groupingKey"] in ({"paymentType": "CSH"}, {"paymentType": "CRD"})
    assert alert["triggeringEvent"]["transactionIdStr"] == str(
        alert["triggeringEvent"]["transactionId"]
    )
    assert alert["explanation"]


def _stored_alert(rule_id: int, key: str, at: int) -> dict[str, Any]:
    return {
        "ruleId": rule_id,
        "ruleVersion": 1,
        "groupingKey": {"paymentType": key},
        "key": key,
        "triggeringEvent": {"transactionId": at, "ingestionTimestamp": at},
        "aggregate": 1.0,
        "limit": 1.0,
        "limitOperator": "GREATER_EQUAL",
        "windowStart": at - 60_000,
        "windowEnd": at,
        "explanation": "test",
        "shadow": False,
        "alertTime": at,
    }


def test_alert_history_filters_and_pages(engine: DemoEngine, client: httpx.Client) -> None:
    engine.alert_store.add_many(
        [_stored_alert(1 + i % 2, "CSH" if i % 3 else "CRD", 1_000 + i) for i in range(30)]
    )
    first = client.get("/api/alerts", params={"limit": 10}).json()
    assert [a["alertTime"] for a in first["items"]] == list(range(1029, 1019, -1))
    second = client.get("/api/alerts", params={"limit": 10, "before": first["nextBefore"]}).json()
    assert [a["alertTime"] for a in second["items"]] == list(range(1019, 1009, -1))
    by_rule = client.get("/api/alerts", params={"ruleId": 2, "limit": 100}).json()["items"]
    assert {a["ruleId"] for a in by_rule} == {2}
    assert len(by_rule) == 15
    by_key = client.get("/api/alerts", params={"key": "CRD", "limit": 100}).json()["items"]
    assert len(by_key) == 10
    in_time = client.get("/api/alerts", params={"since": 1005, "until": 1010}).json()["items"]
    assert sorted(a["alertTime"] for a in in_time) == [1005, 1006, 1007, 1008, 1009]
    assert client.get("/api/alerts", params={"limit": 0}).status_code == 422
    assert client.get("/api/alerts", params={"ruleId": "x"}).status_code == 422


def test_backtest_runs_a_draft_rule_over_recent_history(
    engine: DemoEngine, client: httpx.Client
) -> None:
    engine.recent.extend(Transaction(i, 1_000 + i, 1, 2, 10.0, "CSH", 1_000 + i) for i in range(10))
    draft = {**EVERY_TX_RULE, "ruleId": 77, "limit": 5}
    result = client.post("/api/backtest", json=draft, headers=AUTH).json()
    assert result["transactions"] == 10
    assert result["alertCount"] == 6  # the 5th to the 10th transaction reach a count of 5
    assert 77 not in rule_ids(client)  # a backtest activates nothing
    bad = client.post("/api/backtest", json={**draft, "limit": "x"}, headers=AUTH)
    assert bad.status_code == 422
    assert "limit" in bad.json()["errors"]


def test_health(client: httpx.Client) -> None:
    health = wait_for(lambda: (h := client.get("/api/health").json())["job"] == "RUNNING" and h)
    assert health["status"] == "ok"
    assert health["rules"] == 4
    assert set(health["clients"]) == {"transactions", "alerts", "latency"}


PROM_LINE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+-]+$')


def test_metrics_are_prometheus_text(client: httpx.Client) -> None:
    client.post("/api/generatorSpeed/500", headers=AUTH)
    wait_for(lambda: "fraudstream_latency_ms{" in client.get("/metrics").text)
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    values: dict[str, float] = {}
    for line in response.text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE "))
            continue
        assert PROM_LINE.match(line), line
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    for name in [
        "fraudstream_events_total",
        "fraudstream_events_per_second",
        "fraudstream_alerts_total",
        "fraudstream_alerts_per_second",
        "fraudstream_dead_letters_total",
        'fraudstream_latency_ms{quantile="0.5"}',
        'fraudstream_latency_ms{quantile="0.99"}',
        'fraudstream_ws_dropped_total{stream="transactions"}',
    ]:
        assert name in values
    assert values["fraudstream_events_total"] > 0


def test_the_ui_and_its_assets_are_served(shared: httpx.Client) -> None:
    page = shared.get("/")
    assert page.status_code == 200
    assert "<title>fraudstream" in page.text
    for asset in ("/static/app.js", "/static/app.css"):
        assert shared.get(asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    assert shared.get("/openapi.json").json()["info"]["title"] == "fraudstream demo"


# -- persistence -------------------------------------------------------------------------------
def test_a_restart_shows_the_same_rules_and_alert_history(tmp_path: Path) -> None:
    first = DemoEngine(tmp_path, rate=0)
    first.add_rule(GOOD_RULE)
    first.delete_rule(2)
    first.alert_store.add_many([_stored_alert(1, "CSH", 5_000)])
    with LiveServer(create_app(first, TOKEN)):
        pass
    second = DemoEngine(tmp_path, rate=0)
    with LiveServer(create_app(second, TOKEN)) as server, httpx.Client(base_url=server.url) as c:
        assert rule_ids(c) == [1, 3, 4, 7]  # the deleted default rule does not come back
        assert c.get("/api/alerts").json()["items"][0]["alertTime"] == 5_000


def test_backtest_over_no_history_and_of_a_control_command(shared: httpx.Client) -> None:
    result = shared.post("/api/backtest", json=EVERY_TX_RULE, headers=AUTH).json()
    assert (result["transactions"], result["alertCount"], result["alerts"]) == (0, 0, [])
    control = {"ruleId": 0, "ruleState": "CONTROL", "controlType": "CLEAR_STATE_ALL"}
    refused = shared.post("/api/backtest", json=control, headers=AUTH)
    assert refused.status_code == 422
    assert "ruleState" in refused.json()["errors"]
