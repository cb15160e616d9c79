"""Configuration from the environment (prefix MOBILIZE_), read only when asked for."""

from __future__ import annotations

from functools import lru_cache

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator may set; defaults give the embedded single-machine setup."""

    model_config = SettingsConfigDict(env_prefix="MOBILIZE_", extra="ignore")

    database_url: str = "sqlite:///./mobilize.db"
    """SQLite file by default; `postgresql://user@host/db` for a district deployment."""

    broker_url: str | None = None
    """Celery broker (`redis://...`); none means background jobs run in-process."""

    secret_key: SecretStr | None = None
    """Signs tokens; required outside the embedded default."""

    display_timezone: str = "Asia/Shanghai"
    """Times shown to people; everything is stored in UTC."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()
