"""Settings come from MOBILIZE_* variables, read when asked for, never at import."""

import pytest

from mobilize.db.engine import normalize_url
from mobilize.settings import Settings, get_settings


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MOBILIZE_DATABASE_URL", "MOBILIZE_BROKER_URL", "MOBILIZE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.database_url == "sqlite:///./mobilize.db"
    assert settings.broker_url is None
    assert settings.display_timezone == "Asia/Shanghai"


def test_environment_is_read_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("MOBILIZE_DATABASE_URL", "postgresql://u@db/district")
    monkeypatch.setenv("MOBILIZE_BROKER_URL", "redis://127.0.0.1:6379/0")
    try:
        settings = get_settings()
        assert settings.database_url == "postgresql://u@db/district"
        assert settings.broker_url == "redis://127.0.0.1:6379/0"
    finally:
        get_settings.cache_clear()


def test_postgres_urls_work_as_given() -> None:
    assert normalize_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
