"""Configuration from the environment, read in one place (the app factory and the commands)."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GRAPH_URL = "https://graph.facebook.com/v21.0"
DEFAULT_ZALO_API_URL = "https://openapi.zalo.me"
DEFAULT_ZALO_OAUTH_URL = "https://oauth.zaloapp.com"


def load_env_file(path: Path, env: dict[str, str] | None = None) -> int:
    """Add KEY=value lines of a .env file to the environment, never overriding a set variable."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    if not path.is_file():
        return 0
    added = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key, value = key.strip(), value.split(" #", 1)[0].strip().strip('"').strip("'")
        if key and key not in env:
            env[key] = value
            added += 1
    return added


def _positive_int(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be at least 1, not {number}")
    return number


def _urls(value: str | None, name: str) -> tuple[str, ...]:
    """A comma-separated list of http(s) base URLs."""
    out = []
    for part in (value or "").split(","):
        url = part.strip().rstrip("/")
        if url:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{name}: {url!r} is not an http:// or https:// URL")
            out.append(url)
    return tuple(out)


def _networks(value: str | None) -> tuple[str, ...]:
    """TRUSTED_PROXIES: comma-separated addresses or networks (127.0.0.1, 10.0.0.0/8)."""
    import ipaddress

    out = []
    for part in (value or "").split(","):
        if part.strip():
            try:
                out.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"TRUSTED_PROXIES: {part.strip()!r} is not an address or network") from None
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'hotline.db'}"
    redis_url: str | None = None
    redis_prefix: str = "hotline"  # Redis channel / key prefix: one per deployment sharing a Redis
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str | None = None
    rasa_model_urls: tuple[str, ...] = ()  # every Rasa replica a published model goes into; () = RASA_URL
    public_base_url: str = "http://localhost:8080"
    messenger_app_secret: str | None = None
    messenger_verify_token: str | None = None
    messenger_page_access_token: str | None = None
    messenger_graph_url: str = DEFAULT_GRAPH_URL
    zalo_app_id: str | None = None
    zalo_oa_secret_key: str | None = None
    zalo_app_secret_key: str | None = None
    zalo_access_token: str | None = None
    zalo_refresh_token: str | None = None
    zalo_api_url: str = DEFAULT_ZALO_API_URL
    zalo_oauth_url: str = DEFAULT_ZALO_OAUTH_URL
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    session_secret_generated: bool = True
    content_dir: Path = PROJECT_ROOT / "content"
    max_body_bytes: int = 1024 * 1024
    worker_concurrency: int = 8
    send_max_attempts: int = 6
    retry_base_s: float = 1.0  # backoff of sends and of messages waiting for Rasa: base * 2^attempt
    location_link_ttl_s: int = 3600
    log_level: str = "INFO"
    log_format: str = "auto"  # json | text | auto (text on a terminal, JSON lines otherwise)
    retention_days: int = 90  # transcripts and locations older than this are purged unless their case is open
    tracker_database_url: str | None = None  # Rasa's SQL tracker store: purged, exported and erased with ours
    trusted_proxies: tuple[str, ...] = ()  # reverse proxies whose X-Forwarded-For / -Proto are believed
    auto_migrate: bool = True
    zalo_site_verification: str | None = None

    @property
    def messenger_enabled(self) -> bool:
        return bool(self.messenger_app_secret and self.messenger_page_access_token)

    @property
    def zalo_enabled(self) -> bool:
        return bool(self.zalo_app_id and self.zalo_oa_secret_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        secret = get("SESSION_SECRET")
        kwargs = dict(
            host=get("HOST") or cls.host,
            port=int(get("PORT") or cls.port),
            database_url=get("DATABASE_URL") or cls.database_url,
            redis_url=get("REDIS_URL"),
            rasa_url=(get("RASA_URL") or cls.rasa_url).rstrip("/"),
            rasa_token=get("RASA_TOKEN"),
            rasa_model_urls=_urls(get("RASA_MODEL_URLS"), "RASA_MODEL_URLS"),
            public_base_url=(get("PUBLIC_BASE_URL") or cls.public_base_url).rstrip("/"),
            messenger_app_secret=get("MESSENGER_APP_SECRET"),
            messenger_verify_token=get("MESSENGER_VERIFY_TOKEN"),
            messenger_page_access_token=get("MESSENGER_PAGE_ACCESS_TOKEN"),
            messenger_graph_url=(get("MESSENGER_GRAPH_URL") or cls.messenger_graph_url).rstrip("/"),
            zalo_app_id=get("ZALO_APP_ID"),
            zalo_oa_secret_key=get("ZALO_OA_SECRET_KEY"),
            zalo_app_secret_key=get("ZALO_APP_SECRET_KEY"),
            zalo_access_token=get("ZALO_ACCESS_TOKEN"),
            zalo_refresh_token=get("ZALO_REFRESH_TOKEN"),
            zalo_api_url=(get("ZALO_API_URL") or cls.zalo_api_url).rstrip("/"),
            zalo_oauth_url=(get("ZALO_OAUTH_URL") or cls.zalo_oauth_url).rstrip("/"),
            log_level=get("LOG_LEVEL") or cls.log_level,
            log_format=(get("LOG_FORMAT") or cls.log_format).lower(),
            redis_prefix=get("REDIS_PREFIX") or cls.redis_prefix,
            retention_days=_positive_int(get("RETENTION_DAYS"), "RETENTION_DAYS", cls.retention_days),
            tracker_database_url=get("TRACKER_DATABASE_URL"),
            trusted_proxies=_networks(get("TRUSTED_PROXIES")),
            auto_migrate=(get("AUTO_MIGRATE") or "1") not in ("0", "false", "no"),
            zalo_site_verification=get("ZALO_SITE_VERIFICATION"),
        )
        if get("CONTENT_DIR"):
            kwargs["content_dir"] = Path(get("CONTENT_DIR"))  # type: ignore[arg-type]
        if secret:
            kwargs.update(session_secret=secret, session_secret_generated=False)
        return cls(**kwargs)  # type: ignore[arg-type]
