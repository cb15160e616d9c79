"""The ASGI application: GraphQL (GraphiQL outside production) on FastAPI."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio.to_thread
import strawberry
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Engine, text
from starlette.requests import HTTPConnection, Request
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mobilize.api.admission import Admission
from mobilize.api.context import Context, RequestDb
from mobilize.api.downloads import ledger_file, report_file
from mobilize.api.middleware import (
    DEEP_MESSAGE,
    MAX_JSON_DEPTH,
    AdmissionLimit,
    RequestLimits,
    too_deep,
)
from mobilize.api.observe import RequestIds
from mobilize.api.schema import build_schema
from mobilize.auth.actor import ANONYMOUS, Actor
from mobilize.auth.cache import ActorCache
from mobilize.auth.ratelimit import Limit, RateLimiter, make_rate_limiter
from mobilize.auth.secrets import digest
from mobilize.auth.users import TokenRejected, authenticate
from mobilize.clock import Clock, SystemClock
from mobilize.db import make_engine, make_sessionmaker, normalize_url
from mobilize.errors import DomainError
from mobilize.jobs import Dispatcher
from mobilize.live import Broker, attach, make_broker, watch_credentials
from mobilize.logs import configure_logging
from mobilize.metrics import CONTENT_TYPE, exposition
from mobilize.notify import Notifier, notifier_from_settings
from mobilize.scheduler import Scheduler
from mobilize.settings import Settings, get_settings
from mobilize.web import add_pages, graphiql_page
from mobilize.worker.inprocess import InProcessDispatcher


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    limiter: RateLimiter | None = None,
    notifier: Notifier | None = None,
    dispatcher: Dispatcher | None = None,
    scheduler: bool | None = None,
    broker: Broker | None = None,
) -> FastAPI:
    """The service for `settings` (or the environment); tests pass their own parts.

    `scheduler`: run the in-process beat (escalations, deadlines, retries). By default it
    runs in the embedded setup (no broker) when the app owns its engine; with a broker,
    Celery beat does it; tests that pass an engine drive it themselves."""
    if settings is None:  # the process's own server (`mobilize serve`, each uvicorn worker)
        settings = get_settings()
        configure_logging(settings.log_format)
    if settings.env == "production" and settings.secret_key is None:
        raise RuntimeError("MOBILIZE_SECRET_KEY must be set when MOBILIZE_ENV=production")
    if settings.env == "production" and not (
        settings.metrics_token and settings.metrics_token.get_secret_value()
    ):
        raise RuntimeError(
            "MOBILIZE_METRICS_TOKEN must be set when MOBILIZE_ENV=production: /metrics shows "
            "live counts of the mobilisation and must not answer just anyone"
        )
    owns_engine = engine is None
    engine = engine or make_engine(settings.database_url, **pool_for(settings))
    admission = Admission(settings.max_concurrent_requests, settings.admission_wait_seconds)
    reader = make_sessionmaker(engine, write=False)
    writer = make_sessionmaker(engine)
    clock = clock or SystemClock()
    limiter = limiter or make_rate_limiter(settings.broker_url)
    notifier = notifier or notifier_from_settings(settings)
    actors = ActorCache(settings.auth_cache_seconds)
    if dispatcher is None:
        dispatcher = _dispatcher(settings, engine, notifier, clock)
    broker = broker or make_broker(settings.broker_url)
    attach(writer, broker)  # committed events wake subscriptions, here and elsewhere
    broker.hub.on_credentials_changed(actors.clear)
    if isinstance(dispatcher, InProcessDispatcher):
        dispatcher.publish_to(broker)
    if scheduler is None:
        scheduler = owns_engine and not settings.broker_url
    beat = (
        Scheduler(
            engine,
            clock,
            dispatcher,
            interval_s=settings.scheduler_interval_seconds,
            display_tz=settings.display_timezone,
            broker=broker,
            snapshot_every=settings.replay_snapshot_every,
            job_lease_seconds=settings.job_lease_seconds,
        )
        if scheduler
        else None
    )

    async def authenticated(db: RequestDb, header: str | None, address: str) -> Actor:
        """The actor for an `Authorization` value (a header, or a WebSocket's connection
        parameters); anonymous without one, refused when it is bad."""
        if header is None:
            return ANONYMOUS.with_address(address)
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise TokenRejected("expected 'Authorization: Bearer <token>'")
        key = digest(secret.strip())
        cached = actors.get(key, clock.now())
        if cached is not None:
            return cached.with_address(address)
        generation = actors.generation()
        actor = await db.run(authenticate, secret=secret.strip(), clock=clock, address=address)
        assert actor.token_expires_at is not None
        actors.put(key, actor, actor.token_expires_at, generation)
        return actor

    async def context(request: HTTPConnection) -> AsyncIterator[Context]:
        streamed = request.scope["type"] == "websocket"
        db = RequestDb(reader, writer, admission if streamed else None)
        address = request.client.host if request.client else "unknown"
        credentials = request.headers.get("authorization")
        try:
            try:
                actor = await authenticated(db, credentials, address)
            except TokenRejected as exc:
                raise _unauthorized(exc.reason) from None
            if streamed:
                await db.close()  # a socket may stay open for hours: hold no connection
            yield Context(
                db=db,
                clock=clock,
                actor=actor,
                settings=settings,
                limiter=limiter,
                notifier=notifier,
                dispatcher=dispatcher,
                hub=broker.hub,
                authenticate=authenticated,
                credentials=credentials,
            )
        finally:
            await db.close()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        broker.hub.bind(asyncio.get_running_loop())
        background = [
            asyncio.create_task(broker.listen()),
            asyncio.create_task(
                watch_credentials(engine, broker.hub, settings.credentials_poll_seconds)
            ),
        ]
        if beat is not None:
            beat.start()
        yield
        if beat is not None:
            beat.stop()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if owns_engine:
            engine.dispose()

    app = FastAPI(
        title="mobilize", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    router: GraphQLRouter[Context, None] = Router(
        build_schema(settings),
        context_getter=_depends(context),
        graphql_ide=None if settings.env == "production" else "graphiql",
    )
    app.include_router(router, prefix="/graphql")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process answers (liveness: restart it when this fails)."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """The process can serve (readiness: send it traffic only when this passes): the
        database answers and, in production, the broker too. 503 names what is down."""
        checks = {"database": _check_database(engine), "broker": _check_broker(settings)}
        ready = all(v in ("ok", "none") for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus: this process's (or, under PROMETHEUS_MULTIPROC_DIR, every worker
        process's) latencies, and the database's gauges read now."""
        wanted = settings.metrics_token
        if (
            wanted is not None
            and wanted.get_secret_value()
            and not hmac.compare_digest(
                request.headers.get("authorization", ""), f"Bearer {wanted.get_secret_value()}"
            )
        ):
            return JSONResponse({"errors": [{"message": "metrics need the metrics token"}]}, 401)
        body = await anyio.to_thread.run_sync(exposition, engine)
        return Response(body, media_type=CONTENT_TYPE)

    @app.get("/reports/{mobilisation}/report.{fmt}")
    async def report_download(mobilisation: str, fmt: str, request: Request) -> Response:
        """The after-action report as a file, for whoever may read it (bearer token)."""
        return await _download(
            request,
            report_file,
            clock=clock,
            mobilisation=mobilisation,
            fmt=fmt,
            display_tz=settings.display_timezone,
        )

    @app.get("/service/ledger.{fmt}")
    async def ledger_download(
        fmt: str,
        request: Request,
        community: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Response:
        """A community's service ledger (hours, points, redemptions) for a period, as a file,
        for whoever may read it (bearer token)."""
        return await _download(
            request,
            ledger_file,
            community=community,
            start=start,
            end=end,
            fmt=fmt,
            display_tz=settings.display_timezone,
        )

    async def _download(request: Request, fn: Any, **kwargs: Any) -> Response:
        db = RequestDb(reader, writer)
        address = request.client.host if request.client else "unknown"
        try:
            actor = await authenticated(db, request.headers.get("authorization"), address)
            body, media, name = await db.run(fn, actor=actor, **kwargs)
        except TokenRejected as exc:
            raise _unauthorized(exc.reason) from None
        except DomainError as exc:
            return JSONResponse(
                {"errors": [{"message": exc.message, "code": exc.code}]},
                status_code=DOWNLOAD_STATUS.get(exc.code, 400),
            )
        finally:
            await db.close()
        return Response(
            body,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    add_pages(app, settings)
    app.add_middleware(AdmissionLimit, admission=admission)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        limiter=limiter,
        per_address=Limit.parse(settings.rate_limit_per_address),
        per_token=Limit.parse(settings.rate_limit_per_token),
    )
    app.add_middleware(RequestIds)  # limits log too
    # Outermost: the client's address is settled before anything counts or logs it.
    app.add_middleware(
        ProxyHeadersMiddleware,
        trusted_hosts=settings.proxies(),
    )
    return app


def _check_database(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means not ready; say which
        return f"down: {type(exc).__name__}"


def _check_broker(settings: Settings) -> str:
    if not settings.broker_url:
        return "none"
    import redis

    try:
        client = redis.Redis.from_url(
            settings.broker_url, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
        client.close()
        return "ok"
    except Exception as exc:
        return f"down: {type(exc).__name__}"


REFUSALS = frozenset({"FORBIDDEN", "NOT_FOUND", "UNAUTHENTICATED"})


class RefusalEndsStream(BaseGraphQLTransportWSHandler[Context, None]):
    """A subscription refused, at its start or mid-stream (its token revoked or expired, its
    roles changed, a place not the caller's), ends with one `error` frame instead of a `next`
    frame of errors per event. A token that no longer opens the door also closes the socket
    (4401), taking every other subscription opened with it along."""

    async def _send_result_stream(self, operation: Any, result_source: Any) -> None:
        async def until_refused() -> AsyncGenerator[Any, None]:
            async for result in result_source:
                errors = getattr(result, "errors", None) or []
                codes = {(e.extensions or {}).get("code") for e in errors}
                if getattr(result, "data", None) is None and codes & REFUSALS:
                    await operation.send_initial_errors(errors)
                    if "UNAUTHENTICATED" in codes:
                        await self.websocket.close(code=4401, reason="Unauthorized")
                    return
                yield result

        await super()._send_result_stream(operation, until_refused())


class Router(GraphQLRouter[Context, None]):
    """Subscriptions over graphql-transport-ws only (the legacy protocol is off). A browser
    cannot set headers on a WebSocket, so the token may come in the connection_init
    payload as `{"Authorization": "Bearer ..."}`; a bad one closes the socket (4403)."""

    graphql_transport_ws_handler_class = RefusalEndsStream

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket message nested too deep is refused as bad JSON (the socket closes with
        4400 and a reason) instead of the JSON reader's recursion killing the connection;
        HTTP bodies were checked before (`RequestLimits`)."""
        raw = data.encode() if isinstance(data, str) else data
        if too_deep(raw, MAX_JSON_DEPTH):
            raise json.JSONDecodeError(DEEP_MESSAGE, raw.decode(errors="replace")[:100], 0)
        return super().decode_json(data)

    def __init__(self, schema: strawberry.Schema, **kwargs: Any) -> None:
        kwargs["subscription_protocols"] = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
        super().__init__(schema, **kwargs)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """Our GraphiQL (its files ship in the package), not Strawberry's from a CDN."""
        return graphiql_page()

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        if isinstance(header, str):
            address = context.actor.address or "unknown"
            try:
                context.use(await context.authenticate(context.db, header, address), header)
            except TokenRejected:
                raise ConnectionRejectionError from None
            finally:
                await context.db.close()
        return None


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status_code=401,
        detail=f"身份验证失败 Not signed in: {reason}",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _depends(dependency: Callable[..., Any]) -> Callable[..., Any]:
    """FastAPI resolves the context as a dependency, so its cleanup runs after the response."""

    async def context_getter(ctx: Context = Depends(dependency)) -> Context:  # noqa: B008
        return ctx

    return context_getter


def pool_for(settings: Settings) -> dict[str, int]:
    """Connections for every admitted request plus the rest of the process (subscriptions'
    first reads, health checks, metrics, the embedded scheduler and jobs), so an admitted
    request never waits for one."""
    if normalize_url(settings.database_url).get_backend_name() != "postgresql":
        return {}
    return {"pool_size": settings.max_concurrent_requests + POOL_HEADROOM, "max_overflow": 0}


POOL_HEADROOM = 6
DOWNLOAD_STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404}


def _dispatcher(settings: Settings, engine: Engine, notifier: Notifier, clock: Clock) -> Dispatcher:
    """Celery where a broker is configured (imported only then: the embedded default never
    loads it), else threads in this process."""
    if settings.broker_url:
        from mobilize.worker.tasks import CeleryDispatcher

        return CeleryDispatcher()
    return InProcessDispatcher(
        engine,
        notifier,
        clock,
        max_attempts=settings.notify_max_attempts,
        display_tz=settings.display_timezone,
    )
