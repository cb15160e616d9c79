"""Limits applied before a request reaches GraphQL: how many at once, body size and rates.

Too many at once in this process: 503 with Retry-After (see `admission`). Too large: 413. Too
many requests from one address or with one token: 429 with Retry-After. Rate counting is
shared through Redis when a broker is configured."""

from __future__ import annotations

import json
import re

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobilize.api.admission import BUSY_MESSAGE, Admission, Busy
from mobilize.auth.ratelimit import Hit, Limit, RateLimiter
from mobilize.auth.secrets import digest
from mobilize.errors import RateLimited


async def _reply(
    send: Send, status: int, message: str, headers: dict[str, str], code: str | None = None
) -> None:
    error: dict[str, object] = {"message": message}
    if code is not None:
        error["extensions"] = {"code": code}
    body = json.dumps({"errors": [error]}, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


MAX_JSON_DEPTH = 64
DEEP_MESSAGE = f"请求嵌套过深 The request body nests deeper than {MAX_JSON_DEPTH} levels"
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def too_deep(body: bytes, limit: int) -> bool:
    """Whether a JSON body nests arrays and objects deeper than `limit`: the JSON reader would
    otherwise recurse until Python gives up (a bare 500). A body with few brackets cannot be,
    so only those with many are scanned (strings first blanked, brackets in them are text)."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub(b'""', body)):
        depth += 1 if bracket in (b"{", b"[") else -1
        if depth > limit:
            return True
    return False


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        limiter: RateLimiter,
        per_address: Limit,
        per_token: Limit,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter
        self.per_address = per_address
        self.per_token = per_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in ("/healthz", "/readyz"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        address = scope["client"][0] if scope.get("client") else "unknown"
        hits = [Hit("address", address, self.per_address)]
        if token := headers.get(b"authorization"):
            hits.append(Hit("token", digest(token.decode("latin-1")), self.per_token))
        try:
            await anyio.to_thread.run_sync(lambda: self.limiter.hit(*hits))
        except RateLimited as exc:
            await _reply(send, 429, exc.message, {"retry-after": str(exc.retry_after_s)})
            return

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reply(send, 413, self._too_large(), {})
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _reply(send, 413, self._too_large(), {})
                return

        if too_deep(bytes(body), MAX_JSON_DEPTH):
            await _reply(send, 400, DEEP_MESSAGE, {}, "BAD_REQUEST")
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"请求过大 Request body larger than {self.max_body_bytes} bytes"


class AdmissionLimit:
    """Each HTTP request to GraphQL holds an admission slot for its whole life."""

    def __init__(self, app: ASGIApp, *, admission: Admission, prefix: str = "/graphql") -> None:
        self.app = app
        self.admission = admission
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        try:
            await self.admission.acquire(self.admission.wait_s)
        except Busy:
            s = self.admission.retry_after_s
            await _reply(send, 503, BUSY_MESSAGE.format(s=s), {"retry-after": str(s)}, "BUSY")
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.admission.release()
