"""What each request did, for the people on call: its latency by operation (Prometheus), an
access log line carrying its request id, and that id handed back in `X-Request-ID`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from graphql import FieldNode, OperationDefinitionNode
from mobilize import logs
from mobilize.metrics import GRAPHQL_SECONDS, HTTP_REQUESTS, path_label

logger = logging.getLogger("mobilize.access")


def operation_label(extension: SchemaExtension) -> tuple[str, str]:
    """(root field, operation type): `checkIn`, `mutation`. Requests that did not validate
    are `invalid` and several root fields `multiple`, so a client cannot mint labels."""
    ctx = extension.execution_context
    document = ctx.graphql_document
    if document is None or ctx.pre_execution_errors:
        return "invalid", "unknown"
    wanted = ctx.operation_name
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            wanted is None or (definition.name is not None and definition.name.value == wanted)
        ):
            names = {
                s.name.value
                for s in definition.selection_set.selections
                if isinstance(s, FieldNode)
            }
            field = names.pop() if len(names) == 1 else "multiple"
            return field, definition.operation.value
    return "invalid", "unknown"


class OperationTiming(SchemaExtension):
    """Query and mutation latency by root field (subscriptions last as long as a phone stays)."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        field, kind = operation_label(self)
        if kind != "subscription":
            GRAPHQL_SECONDS.labels(field, kind).observe(time.perf_counter() - started)


class RequestIds:
    """Every HTTP request and WebSocket gets a request id (the caller's `X-Request-ID` when
    sane), set for everything it logs and every task it queues, and an access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = logs.request_id_from(headers.get(logs.HEADER.encode(), b"").decode("latin-1"))
        token = logs.REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (logs.HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                path = scope.get("path", "")
                HTTP_REQUESTS.labels(path_label(path), str(status)).inc()
                logger.info(
                    "%s %s %s",
                    scope.get("method"),
                    path,
                    status,
                    extra={
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            logs.REQUEST_ID.reset(token)
