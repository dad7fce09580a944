"""Configuration from the environment, read once per process.

Everything has a default that works for the embedded mode (`make run`): the state lives
under ``TRUST_HOME`` (``./var``), the database is an SQLite file there.
"""

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from trust.errors import InvalidInput

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class Mode(StrEnum):
    """``TRUST_MODE``: ``embedded`` (the default: `make run`, demo and development) or
    ``production``, in which `trustctl serve` refuses settings only a demo may have
    (api/production.py)."""

    EMBEDDED = "embedded"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    TEXT = "text"   # gunicorn's combined access lines and plain warnings, for a person at a terminal
    JSON = "json"   # one JSON object a line, each with its request id, for a log collector


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    host: str
    port: int
    max_request_bytes: int
    workers: int
    public_url: str = DEFAULT_PUBLIC_URL  # where clients reach this service: OIDC issuer, CRL/OCSP/AIA URLs
    # Reverse proxies in front that append X-Forwarded-For/-Proto; 0: the header is not believed.
    proxy_hops: int = 0
    # An RFC 3161 time-stamp authority of the province's, for seal signatures that ask for "external".
    tsa_url: str | None = None
    mode: Mode = Mode.EMBEDDED
    log_format: LogFormat = LogFormat.TEXT
    # Who may read /metrics besides loopback clients (TRUST_METRICS_ALLOW: addresses or networks).
    metrics_allow: tuple = ()

    @property
    def sqlite_default(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = Path(env.get("TRUST_HOME", "var")).resolve()
    return Settings(
        home=home,
        database_url=env.get("TRUST_DATABASE_URL") or f"sqlite:///{home / 'trust.db'}",
        host=env.get("TRUST_HOST", "127.0.0.1"),
        port=int(env.get("TRUST_PORT", "8000")),
        max_request_bytes=int(env.get("TRUST_MAX_REQUEST_BYTES", str(16 * 1024 * 1024))),
        workers=int(env.get("TRUST_WORKERS", "2")),
        public_url=public_url(env),
        proxy_hops=proxy_hops(env),
        tsa_url=tsa_url(env),
        mode=mode(env),
        log_format=log_format(env),
        metrics_allow=metrics_allow(env),
    )


def mode(env: Mapping[str, str]) -> Mode:
    value = env.get("TRUST_MODE", Mode.EMBEDDED).strip().lower()
    try:
        return Mode(value)
    except ValueError:
        raise InvalidInput(f"TRUST_MODE is embedded or production, not {value[:20]!r}",
                           f"TRUST_MODE 须为 embedded 或 production，而不是 {value[:20]!r}") from None


def log_format(env: Mapping[str, str]) -> LogFormat:
    value = env.get("TRUST_LOG_FORMAT", LogFormat.TEXT).strip().lower()
    try:
        return LogFormat(value)
    except ValueError:
        raise InvalidInput(en=f"TRUST_LOG_FORMAT is text or json, not {value[:20]!r}",
                           zh=f"TRUST_LOG_FORMAT 须为 text 或 json，而不是 {value[:20]!r}") from None


def metrics_allow(env: Mapping[str, str]) -> tuple:
    """``TRUST_METRICS_ALLOW``: comma-separated addresses or networks (10.0.0.0/8) that may
    read /metrics besides loopback clients."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in env.get("TRUST_METRICS_ALLOW", "").split(",") if part.strip())
    except ValueError as error:
        raise InvalidInput(en=f"TRUST_METRICS_ALLOW is a list of addresses or networks: {error}",
                           zh=f"TRUST_METRICS_ALLOW 须为地址或网段列表：{error}") from None


def public_url(environ: Mapping[str, str] | None = None) -> str:
    """``TRUST_PUBLIC_URL`` without a trailing slash; read at call time, so a test may set it."""
    env = os.environ if environ is None else environ
    return env.get("TRUST_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/")


def proxy_hops(env: Mapping[str, str]) -> int:
    """``TRUST_PROXY_HOPS``: how many proxies' X-Forwarded-For entries to believe (0 to 10)."""
    value = env.get("TRUST_PROXY_HOPS", "0").strip()
    if not (value.isascii() and value.isdigit() and int(value) <= 10):
        raise InvalidInput(f"TRUST_PROXY_HOPS is a number of proxies from 0 to 10, not {value[:20]!r}",
                           f"TRUST_PROXY_HOPS 须为 0 至 10 的代理层数，而不是 {value[:20]!r}")
    return int(value)


def tsa_url(env: Mapping[str, str]) -> str | None:
    """``TRUST_TSA_URL``: the http(s) URL of an external RFC 3161 TSA, or None."""
    value = env.get("TRUST_TSA_URL", "").strip()
    if not value:
        return None
    if not value.startswith(("http://", "https://")) or len(value) > 2000 or any(c.isspace() for c in value):
        raise InvalidInput(f"TRUST_TSA_URL is the http(s) URL of an RFC 3161 time-stamp authority, not {value[:60]!r}",
                           f"TRUST_TSA_URL 须为 RFC 3161 时间戳服务的 http(s) 地址，而不是 {value[:60]!r}")
    return value
