"""WebSocket streams: authentication, message shape, and the bounded fan-out of the hubs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from fraudstream.service import DemoEngine, create_app
from fraudstream.service.hubs import Hub
from service_server import LiveServer, stuck_websocket

TOKEN = "ws-token"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    engine = DemoEngine(rate=500, stream_interval=0.05)
    engine.add_rule(
        {
            "ruleId": 9,
            "ruleState": "ACTIVE",
            "groupingKeyNames": ["paymentType"],
            "aggregateFieldName": "COUNT_FLINK",
            "aggregatorFunctionType": "SUM",
            "limitOperatorType": "GREATER_EQUAL",
            "limit": 1,
            "windowMinutes": 1,
        }
    )
    with LiveServer(create_app(engine, TOKEN, latency_interval=0.1)) as live:
        yield live


def receive(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return message


@pytest.mark.parametrize("stream", ["transactions", "alerts", "latency"])
def test_each_stream_sends_json_batches_with_a_query_token(server: LiveServer, stream: str) -> None:
    with connect(f"{server.ws_url}/ws/{stream}?token={TOKEN}") as ws:
        message = receive(ws)
    assert message["stream"] == stream
    assert message["dropped"] == 0
    assert isinstance(message["items"], list) and message["items"]


def test_transactions_carry_exact_ids_as_strings(server: LiveServer) -> None:
    with connect(f"{server.ws_url}/ws/transactions?token={TOKEN}") as ws:
        tx = receive(ws)["items"][0]
    assert tx["transactionIdStr"] == str(tx["transactionId"]) or int(tx["transactionIdStr"]) > 2**53
    assert set(tx) >= {"eventTime", "payeeId", "beneficiaryId", "paymentAmount", "paymentType"}


def test_alerts_explain_themselves(server: LiveServer) -> None:
    with connect(f"{server.ws_url}/ws/alerts") as ws:
        ws.send(json.dumps({"token": TOKEN}))
        alert = receive(ws)["items"][0]
    assert alert["ruleIdStr"] == str(alert["ruleId"])
    assert alert["explanation"]


def test_latency_points_have_percentiles(server: LiveServer) -> None:
    with connect(f"{server.ws_url}/ws/latency?token={TOKEN}") as ws:
        point = receive(ws)["items"][0]
    assert point["p50"] <= point["p99"]
    assert point["count"] > 0


@pytest.mark.parametrize(
    "first_message",
    ['{"token": "wrong"}', '{"nothing": 1}', "not json", "[1]", '{"token": 5}'],
)
def test_a_wrong_or_missing_token_closes_the_socket(server: LiveServer, first_message: str) -> None:
    with connect(f"{server.ws_url}/ws/alerts?token=bad") as ws:
        ws.send(first_message)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


def test_a_foreign_origin_is_refused(server: LiveServer) -> None:
    with (
        pytest.raises(InvalidStatus),
        connect(f"{server.ws_url}/ws/alerts?token={TOKEN}", origin=Origin("http://evil.example")),
    ):
        pass


def test_unknown_streams_do_not_exist(server: LiveServer) -> None:
    with pytest.raises(InvalidStatus), connect(f"{server.ws_url}/ws/secrets?token={TOKEN}"):
        pass


def test_a_client_that_never_reads_drops_messages_and_others_keep_flowing(
    server: LiveServer,
) -> None:
    # alerts are the heaviest stream (rule 9 fires on every transaction), so the stuck
    # client's socket buffers fill within seconds
    stuck = stuck_websocket(server.port, f"/ws/alerts?token={TOKEN}")
    try:
        with httpx.Client(base_url=server.url) as http:
            http.post("/api/generatorSpeed/5000", headers={"X-Token": TOKEN})
            deadline = time.monotonic() + 30
            dropped = received = 0
            with connect(f"{server.ws_url}/ws/alerts?token={TOKEN}") as reader:
                while time.monotonic() < deadline and dropped == 0:
                    message = receive(reader)  # the reading client is served all along
                    received += 1
                    assert message["dropped"] == 0
                    dropped = http.get("/api/health").json()["dropped"]["alerts"]
            assert dropped > 0
            assert received > 0
            events_before = http.get("/api/generator").json()["emitted"]
            wait_for_growth = time.monotonic() + 10
            while http.get("/api/generator").json()["emitted"] <= events_before:
                assert time.monotonic() < wait_for_growth, "the engine stalled"
                time.sleep(0.05)
            http.post("/api/generatorSpeed/500", headers={"X-Token": TOKEN})
    finally:
        stuck.close()


def test_messages_go_out_uncompressed_even_when_the_client_asks_for_deflate(
    server: LiveServer,
) -> None:
    # Compression costs CPU once per client and message, on the thread the engine shares.
    with connect(f"{server.ws_url}/ws/transactions?token={TOKEN}", compression="deflate") as ws:
        assert receive(ws)["items"]
        assert ws.protocol.extensions == []
        assert ws.request is not None and ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]


# -- the hub on its own ------------------------------------------------------------------------
def test_a_hub_with_no_subscribers_keeps_nothing() -> None:
    hub = Hub("t")
    hub.publish_many([1, 2, 3])
    assert hub.published == 0


def test_a_full_client_queue_drops_for_that_client_only() -> None:
    async def scenario() -> tuple[int, int, int, int]:
        hub = Hub("t", inbox_size=10, queue_size=2)
        slow, fast = hub.subscribe(), hub.subscribe()
        for batch in range(5):
            hub.publish_many([batch, batch])
            hub.flush()
            while not fast.queue.empty():
                fast.queue.get_nowait()
        dropped_slow = slow.dropped
        hub.unsubscribe(slow)
        return dropped_slow, fast.dropped, hub.dropped, slow.queue.qsize()

    dropped_slow, dropped_fast, total, queued = asyncio.run(scenario())
    assert (dropped_slow, dropped_fast, total, queued) == (6, 0, 6, 2)


def test_the_inbox_keeps_the_newest_items_and_counts_the_sampled_out() -> None:
    async def scenario() -> tuple[list[Any], int]:
        hub = Hub("t", inbox_size=3)
        subscriber = hub.subscribe()
        hub.publish_many(list(range(10)))
        hub.flush()
        message = json.loads(subscriber.queue.get_nowait())
        return message["items"], hub.sampled_out

    items, sampled_out = asyncio.run(scenario())
    assert items == [7, 8, 9]
    assert sampled_out == 7


def test_a_message_is_built_once_per_distinct_drop_count_not_per_client() -> None:
    async def scenario() -> tuple[list[str], bool, bool]:
        hub = Hub("t", inbox_size=10, queue_size=1)
        behind = hub.subscribe()
        hub.send([0])  # fills the queue of every subscriber there is: ``behind``
        hub.send([1])  # dropped for ``behind``
        first, second = hub.subscribe(), hub.subscribe()
        behind.queue.get_nowait()
        hub.send([2])
        texts = [s.queue.get_nowait() for s in (behind, first, second)]
        shared = texts[1] is texts[2]
        return texts, shared, texts[0] is texts[1]

    texts, shared, behind_shares = asyncio.run(scenario())
    assert [json.loads(text) for text in texts] == [
        {"stream": "t", "dropped": 1, "items": [2]},
        {"stream": "t", "dropped": 0, "items": [2]},
        {"stream": "t", "dropped": 0, "items": [2]},
    ]
    assert shared  # one string for the clients that missed nothing
    assert not behind_shares
