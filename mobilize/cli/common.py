"""What every command shares: consoles, settings, the database option and the edge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mobilize.db import make_engine, make_sessionmaker, migrate, transaction
from mobilize.errors import DomainError
from mobilize.live import attach, make_broker
from mobilize.settings import Settings, get_settings

out = Console()
err = Console(stderr=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides MOBILIZE_DATABASE_URL.", show_default=False),
]


def settings_for(database_url: str | None) -> Settings:
    settings = get_settings()
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings


def require_migrated(engine: Engine) -> None:
    current = migrate.current_revision(engine)
    head = migrate.head_revision()
    if current != head:
        err.print(
            f"[red]The database is at revision {current or 'none'}; this version needs {head}.[/]"
            "\nRun: mobilize db upgrade"
        )
        raise typer.Exit(1)


@contextmanager
def edge(database_url: str | None) -> Iterator[Session]:
    """One command's one transaction; a domain refusal prints its reason and exits 2."""
    settings = settings_for(database_url)
    engine = make_engine(settings.database_url)
    try:
        require_migrated(engine)
        with refusals(), transaction(command_sessions(engine, settings)) as session:
            yield session
    finally:
        engine.dispose()


def command_sessions(engine: Engine, settings: Settings) -> sessionmaker[Session]:
    """Sessions whose commits reach the running API processes as their own writes do:
    subscriptions wake, and a revoked token or a re-imported district is forgotten at once."""
    factory = make_sessionmaker(engine)
    attach(factory, make_broker(settings.broker_url))
    return factory


@contextmanager
def refusals() -> Iterator[None]:
    """A domain refusal prints its reason and exits 2."""
    try:
        yield
    except DomainError as exc:
        err.print(f"[red]{exc.message}[/]")
        raise typer.Exit(2) from None


def configure_logging() -> None:
    """Log lines on stderr, text or JSON as configured (MOBILIZE_LOG_FORMAT): in the embedded
    default, sign-in codes and assignment messages are delivered here."""
    from mobilize import logs
    from mobilize.settings import get_settings

    logs.configure_logging(get_settings().log_format)
