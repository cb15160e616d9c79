"""The ASGI application: GraphQL (with GraphiQL) on FastAPI, one engine per process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy import Engine
from strawberry.fastapi import GraphQLRouter

from mobilize.api.context import Context, RequestDb
from mobilize.api.schema import schema
from mobilize.clock import Clock, SystemClock
from mobilize.db import make_engine, make_sessionmaker
from mobilize.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The service for `settings` (or the environment); tests pass their own engine and clock."""
    settings = settings or get_settings()
    owns_engine = engine is None
    engine = engine or make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    clock = clock or SystemClock()

    async def context() -> AsyncIterator[Context]:
        db = RequestDb(factory)
        try:
            yield Context(db=db, clock=clock)
        finally:
            await db.close()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            engine.dispose()

    app = FastAPI(title="mobilize", lifespan=lifespan)
    router: GraphQLRouter[Context, None] = GraphQLRouter(
        schema, context_getter=_depends(context), graphql_ide="graphiql"
    )
    app.include_router(router, prefix="/graphql")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _depends(dependency: object) -> object:
    """FastAPI resolves the context as a dependency, so its cleanup runs after the response."""

    async def context_getter(ctx: Context = Depends(dependency)) -> Context:  # noqa: B008
        return ctx

    return context_getter
