"""The demo UI in Debian's Chromium, driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudstream.service import DemoEngine, create_app
from service_server import LiveServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-token"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    engine = DemoEngine(rate=20)
    with LiveServer(create_app(engine, TOKEN)) as server:
        yield server


@pytest.fixture(scope="module")
def page(live: LiveServer) -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium` (./dev test does it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(f"{live.url}/#token={TOKEN}")
        yield tab
        browser.close()
        assert errors == [], f"JavaScript errors in the page: {errors}"


@pytest.fixture(scope="module")
def api(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, headers={"X-Token": TOKEN}) as client:
        yield client


def first_transaction_id(page: Any) -> str | None:
    cell = page.locator("#tx-list tr td:nth-child(2)").first
    return str(cell.text_content()) if cell.count() else None


def test_transactions_flow_and_the_token_leaves_the_address_bar(page: Any) -> None:
    wait_for(lambda: page.locator("#tx-list tr").count() >= 3, what="transaction rows")
    first = first_transaction_id(page)
    wait_for(lambda: first_transaction_id(page) != first, what="new transactions")
    assert "token" not in page.url
    assert page.locator("#job-status").text_content() == "RUNNING"
    assert page.locator(".rule-card").count() == 4
    page.screenshot(path=str(ARTIFACTS / "ui-main.png"), full_page=True)


def fill_rule(page: Any, **fields: str) -> None:
    form = page.locator("#rule-form")
    for name, value in fields.items():
        element = form.locator(f"[name={name}]")
        if element.evaluate("e => e.tagName") == "SELECT":
            element.select_option(value)
        else:
            element.fill(value)


EVERY_TX = {
    "ruleId": "555",
    "groupingKeyNames": "paymentType",
    "aggregateFieldName": "COUNT_FLINK",
    "aggregatorFunctionType": "SUM",
    "limitOperatorType": "GREATER_EQUAL",
    "limit": "1",
    "windowMinutes": "1",
}


def test_a_rule_added_in_the_form_raises_alerts_and_pausing_stops_them(
    page: Any, api: httpx.Client
) -> None:
    fill_rule(page, **EVERY_TX)
    page.locator("#add-rule-button").click()
    card = page.locator('.rule-card[data-rule-id="555"]')
    wait_for(lambda: card.count() == 1, what="the new rule's card")
    assert card.locator(".badge").text_content() == "ACTIVE"
    wait_for(
        lambda: page.locator('#alerts li[data-rule-id="555"]').count() > 0,
        what="an alert of rule 555 in the page",
    )
    assert "555" in page.locator('#alerts li[data-rule-id="555"]').first.text_content()
    page.screenshot(path=str(ARTIFACTS / "ui-alerts.png"), full_page=True)

    api.post("/api/generatorSpeed/300")  # so that "no more alerts" is seen within seconds
    card.locator("button.toggle").click()
    wait_for(
        lambda: page.locator('.rule-card[data-rule-id="555"] .badge').text_content() == "PAUSE",
        what="the PAUSE badge",
    )

    def newest_alert_of_555() -> Any:
        items = api.get("/api/alerts", params={"ruleId": 555, "limit": 1}).json()["items"]
        return items[0]["triggeringEvent"]["transactionIdStr"] if items else None

    def emitted() -> int:
        return int(api.get("/api/generator").json()["emitted"])

    # Alerts raised before the pause reached the job may still land: wait until the newest
    # one stays the same while the engine keeps processing...
    last = newest_alert_of_555()

    def events_advance(by: int) -> None:
        start = emitted()
        wait_for(lambda: emitted() > start + by, what=f"{by} more events")

    for _ in range(20):
        events_advance(100)
        now = newest_alert_of_555()
        if now == last:
            break
        last = now
    else:
        raise AssertionError("rule 555 kept raising alerts after it was paused")
    # ...then no new alert of rule 555 appears while hundreds more transactions go through.
    events_advance(600)
    assert newest_alert_of_555() == last
    assert last is not None
    api.post("/api/generatorSpeed/20")


def test_an_invalid_rule_shows_the_server_error_inline(page: Any, api: httpx.Client) -> None:
    before = api.get("/api/rules").json()
    fill_rule(page, **{**EVERY_TX, "ruleId": "556", "limit": "lots"})
    page.locator("#add-rule-button").click()
    error = page.locator('.field-error[data-field="limit"]')
    wait_for(lambda: error.text_content(), what="the inline error for limit")
    assert page.locator("label.invalid").count() == 1
    assert page.locator('.rule-card[data-rule-id="556"]').count() == 0
    assert api.get("/api/rules").json() == before
    page.locator("#rule-form").screenshot(path=str(ARTIFACTS / "ui-invalid-rule.png"))


def test_64_bit_transaction_ids_stay_exact_in_the_page(page: Any, api: httpx.Client) -> None:
    stored = api.get("/api/alerts", params={"limit": 1}).json()["items"][0]
    exact = stored["triggeringEvent"]["transactionIdStr"]
    assert int(exact) > 2**53  # a double could not hold it
    page.reload()  # the page loads the newest alerts from the API on start
    wait_for(
        lambda: any(f"tx {exact}" in t for t in page.locator("#alerts li").all_text_contents()),
        what=f"the alert of transaction {exact} with its exact id",
    )


def test_deleting_a_rule_from_its_card(page: Any, api: httpx.Client) -> None:
    card = page.locator('.rule-card[data-rule-id="555"]')
    card.locator("button.delete").click()
    wait_for(lambda: card.count() == 0, what="the card to go")
    assert 555 not in [r["ruleId"] for r in api.get("/api/rules").json()]


def test_without_a_token_the_page_asks_for_one(live: LiveServer, page: Any) -> None:
    other = page.context.new_page()
    try:
        other.goto(f"{live.url}/")  # a new tab: its session storage holds no token
        form = other.locator("#token-form")
        wait_for(form.is_visible, what="the token prompt")
        other.locator("#token-input").fill(TOKEN)
        form.locator("button").click()
        wait_for(lambda: not form.is_visible(), what="the prompt to close")
        wait_for(lambda: other.locator("#tx-list tr").count() > 0, what="transactions")
    finally:
        other.close()


def test_moving_the_slider_changes_the_rate(page: Any, api: httpx.Client) -> None:
    page.locator("#speed").fill("60")  # 10 ** (60 * 5 / 100) = 1,000 tx/s
    wait_for(lambda: api.get("/api/generator").json()["speed"] == 1000, what="speed 1000")
    assert page.locator("#speed-label").text_content() == "1,000 tx/s"
    wait_for(
        lambda: float(page.locator("#tx-rate").text_content().replace(",", "")) > 500,
        what="measured rate above 500 tx/s",
    )
    wait_for(lambda: page.locator("#tx-overlay").is_visible(), what="the too-fast overlay")
    page.screenshot(path=str(ARTIFACTS / "ui-fast.png"), full_page=True)
    page.locator("#speed").fill("40")  # 100 tx/s
    wait_for(lambda: api.get("/api/generator").json()["speed"] == 100, what="speed 100")
