"""Property-based run of the whole OpenAPI document (schemathesis): no input gives a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from fraudstream.service import DemoEngine, create_app
from service_server import LiveServer

TOKEN = "schema-token"


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    with LiveServer(create_app(DemoEngine(rate=50), TOKEN)) as server:
        yield server


def test_no_generated_input_makes_the_server_fail(live_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has invalid operations"
    assert len(operations) >= 19  # every endpoint of the API is in the document
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            # With the token, so that generated inputs reach the handlers, not only the 401.
            response = case.call(headers={"X-Token": TOKEN}, timeout=10)
            case.validate_response(response, checks=[not_a_server_error])

        run()
