"""Database access: engines, sessions, column types and migrations, for SQLite and PostGIS."""

from mobilize.db.engine import make_engine, normalize_url
from mobilize.db.session import make_sessionmaker, transaction

__all__ = ["make_engine", "make_sessionmaker", "normalize_url", "transaction"]
