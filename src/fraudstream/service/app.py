"""The demo's ASGI app: REST API, WebSocket streams, Prometheus metrics and the UI.

Security: every mutating endpoint and every WebSocket needs the access token
(``Authorization: Bearer TOKEN`` or ``X-Token: TOKEN``; WebSockets: ``?token=TOKEN`` or a
first message ``{"token": "TOKEN"}``). Request bodies over ``max_body`` bytes are refused
with 413 before any handler sees them. No CORS headers are sent, so browsers keep other
origins out; WebSockets from a foreign ``Origin`` are refused as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from fraudstream.exceptions import ConfigurationError, RuleValidationError
from fraudstream.service.engine import (
    MAX_SPEED,
    DemoEngine,
    RuleNotFoundError,
    exact_ids,
    rule_view,
)
from fraudstream.service.limits import BodyLimit
from fraudstream.service.metrics import render_prometheus

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

#: Request bodies larger than this are refused with 413.
DEFAULT_MAX_BODY = 64 * 1024

#: The largest rule id (64-bit signed).
_MAX_ID = 2**63 - 1


def _token_ok(expected: str, presented: str | None) -> bool:
    return presented is not None and secrets.compare_digest(
        presented.encode("utf-8", "replace"), expected.encode("utf-8")
    )


def _require_token(request: Request) -> str:
    """The dependency guarding mutating endpoints; returns the actor for the audit log."""
    auth = request.headers.get("authorization", "")
    presented = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    presented = presented or request.headers.get("x-token")
    if not _token_ok(request.app.state.token, presented):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong access token (Authorization: Bearer TOKEN or X-Token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return "api"


Actor = Annotated[str, Depends(_require_token)]

RuleId = Annotated[int, PathParam(ge=0, le=_MAX_ID, description="the rule's id")]

_RULE_EXAMPLE = {
    "ruleId": 5,
    "ruleState": "ACTIVE",
    "groupingKeyNames": ["payeeId"],
    "aggregateFieldName": "paymentAmount",
    "aggregatorFunctionType": "SUM",
    "limitOperatorType": "GREATER",
    "limit": 5000,
    "windowMinutes": 10,
}


def _static_dir() -> Path:
    return Path(str(resources.files("fraudstream.service").joinpath("static")))


def create_app(
    controller: DemoEngine,
    token: str,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    manage_engine: bool = True,
    latency_interval: float = 0.5,
) -> FastAPI:
    """The ASGI app serving ``controller`` (REST, WebSockets, metrics, UI).

    Args:
        controller: the engine the API drives.
        token: the access token mutating requests and WebSockets must present.
        max_body: largest accepted request body in bytes.
        manage_engine: start the engine when the app starts; stop and close it when it stops.
        latency_interval: seconds between two points of the latency chart.
    """
    if not token:
        raise ConfigurationError("the access token must not be empty")
    engine = controller

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hub in engine.hubs():
            hub.start()
        ticker = asyncio.create_task(_latency_ticker())
        if manage_engine:
            await asyncio.to_thread(engine.start)
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for hub in engine.hubs():
                await hub.stop()
            if manage_engine:
                await asyncio.to_thread(engine.close)

    async def _latency_ticker() -> None:
        while True:
            await asyncio.sleep(latency_interval)
            point = engine.latency_point()
            if point is not None:
                engine.latency_hub.send([point])

    app = FastAPI(
        title="fraudstream demo",
        version="0.1.0",
        description="Rules, alerts, generator control and live streams of the fraud demo. "
        "Mutating endpoints need the access token (Authorization: Bearer or X-Token).",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, limit=max_body)

    app.state.token = token
    token_ok = functools.partial(_token_ok, token)

    @app.exception_handler(RuleValidationError)
    async def _invalid_rule(request: Request, exc: RuleValidationError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "errors": exc.errors}, status_code=422)

    @app.exception_handler(RuleNotFoundError)
    async def _no_rule(request: Request, exc: RuleNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ConfigurationError)
    async def _bad_value(request: Request, exc: ConfigurationError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    def unwrap_rule(body: dict[str, Any]) -> dict[str, Any] | str:
        """Accept the rule itself or the original demo's ``{"rulePayload": "<json>"}``."""
        payload = body.get("rulePayload")
        if isinstance(payload, str) and "ruleId" not in body:
            return payload
        return body

    # -- rules -----------------------------------------------------------------------------------
    @app.get("/api/rules", tags=["rules"])
    def list_rules() -> list[dict[str, Any]]:
        """Every rule, by id, with its readable description."""
        return [rule_view(rule) for rule in engine.list_rules()]

    @app.post("/api/rules", tags=["rules"], status_code=201)
    def add_rule(
        actor: Actor, body: Annotated[dict[str, Any], Body(examples=[_RULE_EXAMPLE])]
    ) -> dict[str, Any]:
        """Add or replace a rule (validated; 422 with field errors when refused)."""
        return rule_view(engine.add_rule(unwrap_rule(body), actor))

    @app.delete("/api/rules", tags=["rules"])
    def delete_all_rules(actor: Actor) -> dict[str, int]:
        """Delete every rule."""
        return {"deleted": engine.delete_all_rules(actor)}

    @app.post("/api/rules/pushToFlink", tags=["rules"])
    def push_to_flink(actor: Actor) -> dict[str, int]:
        """Send the whole rule set to the job again."""
        return {"pushed": engine.push_rules()}

    @app.get("/api/rules/{rule_id}", tags=["rules"])
    def get_rule(rule_id: RuleId) -> dict[str, Any]:
        """One rule."""
        return rule_view(engine.get_rule(rule_id))

    @app.delete("/api/rules/{rule_id}", tags=["rules"])
    def delete_rule(actor: Actor, rule_id: RuleId) -> dict[str, Any]:
        """Delete one rule; returns it as it was."""
        return rule_view(engine.delete_rule(rule_id, actor))

    @app.post("/api/rules/{rule_id}/pause", tags=["rules"])
    def pause_rule(actor: Actor, rule_id: RuleId) -> dict[str, Any]:
        """Pause a rule (it stops raising alerts, keeps its definition)."""
        return rule_view(engine.set_rule_state(rule_id, "PAUSE", actor))

    @app.post("/api/rules/{rule_id}/resume", tags=["rules"])
    def resume_rule(actor: Actor, rule_id: RuleId) -> dict[str, Any]:
        """Resume a paused rule."""
        return rule_view(engine.set_rule_state(rule_id, "ACTIVE", actor))

    @app.get("/api/rules/{rule_id}/versions", tags=["rules"])
    def rule_versions(rule_id: RuleId) -> list[dict[str, Any]]:
        """Every version of a rule, oldest first."""
        return [rule_view(rule) for rule in engine.rule_versions(rule_id)]

    @app.get("/api/audit", tags=["rules"])
    def audit(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=_MAX_ID)] = 0,
    ) -> list[Any]:
        """The audit log of rule changes, newest first."""
        return [_jsonable(entry) for entry in engine.audit(limit, offset)]

    @app.post("/api/backtest", tags=["rules"])
    def backtest(
        actor: Actor, body: Annotated[dict[str, Any], Body(examples=[_RULE_EXAMPLE])]
    ) -> dict[str, Any]:
        """Run a draft rule over the recent transactions kept in memory; activates nothing."""
        rule = unwrap_rule(body)
        if isinstance(rule, str):
            rule = _loads_rule(rule)
        return engine.backtest(rule)

    # -- the job ---------------------------------------------------------------------------------
    @app.post("/api/syncRules", tags=["job"])
    def sync_rules(actor: Actor) -> dict[str, int]:
        """Bring the job's rules in line with the rule book."""
        return {"pushed": engine.push_rules()}

    @app.post("/api/clearState", tags=["job"])
    def clear_state(actor: Actor) -> dict[str, bool]:
        """Forget all window state in the job."""
        engine.clear_state()
        return {"ok": True}

    # -- generator -------------------------------------------------------------------------------
    @app.get("/api/generator", tags=["generator"])
    def generator_status() -> dict[str, Any]:
        """The generator's speed and measured rate."""
        return engine.generator_status()

    @app.post("/api/startTransactionsGeneration", tags=["generator"])
    def start_generation(actor: Actor) -> dict[str, Any]:
        """Start (resume) the generator."""
        return engine.start_generation()

    @app.post("/api/stopTransactionsGeneration", tags=["generator"])
    def stop_generation(actor: Actor) -> dict[str, Any]:
        """Stop (pause) the generator."""
        return engine.stop_generation()

    @app.post("/api/generatorSpeed/{speed}", tags=["generator"])
    def generator_speed(
        actor: Actor,
        speed: Annotated[float, PathParam(ge=0, le=MAX_SPEED, allow_inf_nan=False)],
    ) -> dict[str, Any]:
        """Set the generator's speed in transactions per second (0 holds it)."""
        return engine.set_speed(speed)

    # -- alerts ----------------------------------------------------------------------------------
    @app.get("/api/alerts", tags=["alerts"])
    def alerts(
        *,
        rule_id: Annotated[int | None, Query(alias="ruleId", ge=0, le=_MAX_ID)] = None,
        key: Annotated[str | None, Query(max_length=1000)] = None,
        since: Annotated[int | None, Query(ge=0, le=_MAX_ID, description="epoch ms")] = None,
        until: Annotated[int | None, Query(ge=0, le=_MAX_ID, description="epoch ms")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: Annotated[
            int | None, Query(ge=0, le=_MAX_ID, description="nextBefore of the previous page")
        ] = None,
    ) -> dict[str, Any]:
        """Stored alerts, newest first; filter by rule, key and time; page with ``before``."""
        return engine.alert_history(
            rule_id=rule_id, key=key, since_ms=since, until_ms=until, limit=limit, before=before
        )

    # -- health, metrics, UI ---------------------------------------------------------------------
    @app.get("/api/health", tags=["ops"])
    def health() -> dict[str, Any]:
        """Job status, counts and WebSocket clients."""
        return engine.health()

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus text format."""
        return PlainTextResponse(
            render_prometheus(engine.metric_samples()),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    static = _static_dir()

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=static), name="static")

    # -- WebSockets ------------------------------------------------------------------------------
    hubs = {hub.name: hub for hub in engine.hubs()}

    async def authorize(websocket: WebSocket) -> bool:
        origin = websocket.headers.get("origin")
        host = websocket.headers.get("host", "")
        if origin is not None and origin.split("://", 1)[-1] != host:
            await websocket.close(code=4403, reason="foreign origin")
            return False
        await websocket.accept()
        if token_ok(websocket.query_params.get("token")):
            return True
        try:
            first = await asyncio.wait_for(websocket.receive_text(), timeout=5.0)
            presented = json.loads(first).get("token") if first.startswith("{") else None
        except (asyncio.TimeoutError, ValueError, AttributeError, WebSocketDisconnect, KeyError):
            presented = None
        if token_ok(presented if isinstance(presented, str) else None):
            return True
        with contextlib.suppress(RuntimeError):
            await websocket.close(code=4401, reason="missing or wrong access token")
        return False

    async def stream(websocket: WebSocket, name: str) -> None:
        hub = hubs[name]
        if not await authorize(websocket):
            return
        subscriber = hub.subscribe()
        sender = asyncio.create_task(hub.pump(websocket, subscriber))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.unsubscribe(subscriber)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    def route(name: str) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(websocket: WebSocket) -> None:
            await stream(websocket, name)

        return endpoint

    for name in hubs:
        app.add_api_websocket_route(f"/ws/{name}", route(name))

    return app


def _loads_rule(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise RuleValidationError({"rulePayload": f"not JSON: {exc}"}) from exc
    if not isinstance(value, dict):
        raise RuleValidationError({"rulePayload": "expected a JSON object"})
    return value


def _jsonable(entry: Any) -> Any:
    if hasattr(entry, "to_json_dict"):
        return exact_ids(entry.to_json_dict())
    if isinstance(entry, MutableMapping):
        return exact_ids(dict(entry))
    if hasattr(entry, "_asdict"):
        return exact_ids(entry._asdict())
    if hasattr(entry, "__dataclass_fields__"):
        import dataclasses

        return exact_ids(dataclasses.asdict(entry))
    return entry
