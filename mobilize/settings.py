"""Configuration from the environment (prefix MOBILIZE_), read only when asked for."""

from __future__ import annotations

import ipaddress
import secrets
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Times people read (deadlines in messages, reports) are shown in China Standard Time unless
# a deployment says otherwise (MOBILIZE_DISPLAY_TIMEZONE); everything is stored in UTC.
DISPLAY_TIMEZONE = "Asia/Shanghai"


class Settings(BaseSettings):
    """Everything an operator may set; defaults give the embedded single-machine setup."""

    model_config = SettingsConfigDict(env_prefix="MOBILIZE_", extra="ignore")

    database_url: str = "sqlite:///./mobilize.db"
    """SQLite file by default; `postgresql://user@host/db` for a district deployment."""

    broker_url: str | None = None
    """Celery broker (`redis://...`); none means background jobs run in-process."""

    secret_key: SecretStr | None = None
    """Signs tokens; required outside the embedded default."""

    display_timezone: str = DISPLAY_TIMEZONE
    """Times shown to people; everything is stored in UTC."""

    placement_tolerance_m: float = Field(default=1.0, ge=0, le=50)
    """Import: a household this close to a micro-grid but in none (a sliver of drawing or of a
    coordinate conversion) goes to the nearest, with a warning; further is an error."""

    env: Literal["development", "production"] = "development"
    """`production` turns off introspection and GraphiQL and requires a secret key."""

    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per log line, with the request id (production)."""
    metrics_token: SecretStr | None = None
    """When set, `/metrics` wants `Authorization: Bearer <token>` (Prometheus' bearer_token)."""
    worker_metrics_port: int | None = None
    """A Celery worker serves its Prometheus metrics on this port (task durations), wanting
    the metrics token when one is set, as the API does."""
    worker_metrics_host: str = "127.0.0.1"
    """Where that port listens: this machine only, unless told (compose: `0.0.0.0`)."""
    worker_watch_seconds: float = 30.0
    """How often a worker pings its own consumer; after three silent pings while the broker
    answers it ends itself, to be restarted (0: never)."""

    # Limits on what one request may ask (GraphQL) and how often (rate limits "count/seconds").
    max_concurrent_requests: int = Field(12, ge=1, le=32)
    """GraphQL requests one API process serves at once (each holds a database connection);
    more wait up to `admission_wait_seconds`, then get 503 with Retry-After."""
    admission_wait_seconds: float = Field(5.0, ge=0)
    max_body_bytes: int = 1_000_000
    max_query_depth: int = 12
    max_query_tokens: int = 4_000
    max_aliases: int = 30
    max_query_cost: int = 60_000
    auth_cache_seconds: float = 60.0
    """How long a process trusts a token it checked. A revocation reaches every process at
    once through the broker; only when it cannot (Redis down) does it wait this long."""
    rate_limit_per_address: str = "1200/60"
    rate_limit_per_token: str = "600/60"
    sign_in_requests_per_phone: str = "5/900"
    """Codes one client (device, else address) may ask for one phone."""
    sign_in_codes_per_phone: str = "20/3600"
    """Codes a phone is sent, shared by every client that never signed in with it."""
    sign_in_requests_per_address: str = "30/900"
    sign_in_tries_per_phone: str = "10/900"
    """Tries one client may make for one phone."""
    sign_in_tries_per_address: str = "50/900"

    # Notification channels besides the log (see mobilize/notify.py).
    notify_wecom_url: str | None = None
    """A WeCom group robot webhook; escalations and deadline reports go to that group."""
    notify_wecom_style: Literal["text", "markdown"] = "markdown"
    notify_webhook_url: str | None = None
    """Every message is POSTed here as JSON (an SMS gateway, the district's own systems)."""
    notify_webhook_secret: SecretStr | None = None
    """Signs webhook bodies: header X-Mobilize-Signature: sha256=<HMAC>."""
    notify_max_attempts: int = 8
    """A message still failing after this many attempts is marked failed."""
    trusted_proxies: str = ""
    """Addresses or networks (comma-separated, e.g. `10.0.0.2,172.16.0.0/12`) of the reverse
    proxies in front of the API. Only from these is `X-Forwarded-For` believed; from anyone
    else it is ignored, so no client can pose as another address to escape rate limits."""
    credentials_poll_seconds: float = 1.0
    """Each API process looks this often for credential changes written by anyone (a token
    revoked from the command line, with or without a broker) and forgets what it trusted."""
    live_poll_seconds: float = 5.0
    """Subscriptions also re-read this often, in case a live update was lost."""
    live_batch_seconds: float = 0.5
    """A subscription re-reads at most this often: changes in between arrive together."""
    scheduler_interval_seconds: float = 15.0
    """How often the embedded scheduler checks for escalations, deadlines and retries."""
    activation_wait_seconds: float = 30.0
    """How long `activateMobilisation` waits for its solve before answering `activating`
    (the solve goes on; ask again, or follow the mobilisation's live updates)."""
    job_lease_seconds: int = Field(default=3600, ge=5)
    """A job running longer than this is taken to have lost its worker and is run again;
    also the broker's visibility timeout. Longer than the longest solve."""
    replay_snapshot_every: int = Field(default=5000, ge=100)
    """Replay snapshots a mobilisation's state after every this many events."""

    # A base map under the grids on the pages. None by default: nothing is fetched from outside.
    base_map_url: str | None = None
    """A tile server, as a URL template with `{x}`, `{y}`, `{z}` (and `{s}` for a subdomain),
    e.g. Amap's `https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}`."""
    base_map_crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    """The tiles' coordinate system: `wgs84` (OpenStreetMap and most servers), `gcj02` (Amap,
    Tencent), `bd09` (Baidu, with its own Mercator and tile numbers). The pages shift the
    grids (stored in WGS-84) into it, so a grid sits on its streets."""
    base_map_subdomains: str = "abc"
    """What `{s}` stands for, one character each (Amap: `1234`)."""
    base_map_attribution: str = ""
    """Shown in the map's corner, as the tile service's terms ask (plain text)."""
    base_map_max_zoom: int = Field(default=18, ge=1, le=22)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if not entry:
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"MOBILIZE_TRUSTED_PROXIES: {entry!r} is not an address or network"
                ) from None
        return value

    @field_validator("base_map_url")
    @classmethod
    def _tile_template(cls, value: str | None) -> str | None:
        if not value:
            return None
        missing = [part for part in ("{x}", "{y}", "{z}") if part not in value]
        if not value.startswith(("https://", "http://")) or missing:
            raise ValueError(
                f"MOBILIZE_BASE_MAP_URL: {value!r} is not a tile URL template (http(s)://..."
                f" with {{x}}, {{y}} and {{z}}; missing {', '.join(missing) or 'the scheme'})"
            )
        return value

    def base_map(self) -> dict[str, object] | None:
        """The base map as the pages take it (`/ui/config.json`), or None."""
        if self.base_map_url is None:
            return None
        return {
            "url": self.base_map_url,
            "crs": self.base_map_crs,
            "subdomains": self.base_map_subdomains,
            "attribution": self.base_map_attribution,
            "maxZoom": self.base_map_max_zoom,
        }

    def proxies(self) -> list[str]:
        """`trusted_proxies` as a list."""
        return [e.strip() for e in self.trusted_proxies.split(",") if e.strip()]

    def signing_secret(self) -> str:
        """The configured secret key; without one, a random key for this process only."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _process_secret()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()


@lru_cache(maxsize=1)
def _process_secret() -> str:
    return secrets.token_urlsafe(32)
