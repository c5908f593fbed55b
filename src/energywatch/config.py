"""Settings (environment variables ENERGYWATCH_*) and the YAML feed list, validated in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from energywatch import __version__
from energywatch.errors import ConfigError
from energywatch.models import Feed


class Settings(BaseSettings):
    """Every tunable of energywatch; read from ENERGYWATCH_* variables (and .env when present)."""

    model_config = SettingsConfigDict(env_prefix="ENERGYWATCH_", env_file=".env", extra="ignore")

    store: str = Field(
        default="sqlite:///var/energywatch.db",
        description="sqlite:///PATH (embedded default) or http(s)://user:pass@host:9200 (Elasticsearch)",
    )
    feeds_file: Path = Path("config/feeds.yaml")
    alerts_file: Path = Field(
        default=Path("config/alerts.yaml"), description="alert rules and channels; no file, no alerts"
    )
    web_token: SecretStr | None = Field(
        default=None, description="access token the web UI requires (mandatory when it binds beyond loopback)"
    )
    web_allowed_hosts: tuple[str, ...] = Field(
        default=("localhost", "127.0.0.1", "::1"),
        description="host names the web UI answers to (the Host header); others get 400, which stops DNS rebinding")
    web_remote_images: bool = Field(
        default=True, description="show articles' lead images, loaded from their publishers' servers (which then "
                                  "see the analyst's address; false keeps every request on this UI)")
    profile_file: Path | None = Field(
        default=None, description="a concept profile (YAML) replacing the packaged one"
    )
    user_agent: str = f"energywatch/{__version__} (+https://github.com/energywatch/energywatch)"
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=20.0, gt=0)
    max_feed_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_page_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=20)
    per_host_concurrency: int = Field(default=2, ge=1)
    global_concurrency: int = Field(default=16, ge=1)
    allow_private_addresses: bool = Field(
        default=False,
        description="let feeds and pages resolve to private, loopback or link-local addresses (tests, intranets)",
    )
    max_inline_retry_after: float = Field(
        default=5.0, ge=0, description="wait in-run for a Retry-After up to this many seconds; longer ones defer"
    )
    default_interval_minutes: int = Field(default=10, ge=1)
    watch_min_interval_seconds: int = Field(
        default=60, ge=5, description="`watch`: how often a feed that just published is polled")
    watch_max_interval_seconds: int = Field(
        default=300, ge=5, description="`watch`: how often a feed quiet for hours is polled at least")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    min_text_chars: int = Field(default=200, ge=0, description="shorter page text counts as no text")
    max_text_chars: int = Field(
        default=200_000, ge=1000,
        description="extracted text is cut here, with a warning (a long report is ~60,000; beyond is seldom news)",
    )
    run_deadline_seconds: float = Field(
        default=1200, gt=0,
        description="a run stops taking new work after this long, stores what it has and leaves the rest for the next",
    )
    max_items_per_feed: int = Field(
        default=500, ge=1, description="entries read from one feed body; the rest are counted as dropped"
    )
    language_sample_chars: int = Field(default=600, ge=200, description="characters of text the language detector reads")
    languages: tuple[str, ...] = Field(
        default=(
            "en", "ru", "ar", "uk", "tr", "az", "de", "fr", "es", "pl", "it", "pt", "nl", "ro", "bg",
            "el", "ka", "fa", "ur", "hi", "zh", "ja", "ko", "sk", "cs", "sv", "fi", "no", "da", "hu",
            "lt", "lv", "et", "sr", "hr", "kk", "he", "id",
        ),
        description="languages the detector may answer (ISO 639-1)",
    )

    @field_validator("web_token", mode="before")
    @classmethod
    def _empty_token(cls, value: object) -> object:
        # ENERGYWATCH_WEB_TOKEN= (empty) means no token, not a token that anyone can guess
        return None if value in ("", None) else value

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in {"sqlite", "http", "https"}:
            raise ValueError(f"store URL must start with sqlite:///, http:// or https://, got {scheme or value!r}")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with explicit overrides (CLI options) winning."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        raise ConfigError(_format_validation("settings (ENERGYWATCH_* variables)", exc)) from exc


class Readable(Protocol):
    """A file to read: a Path, or a package resource."""

    def read_text(self, encoding: str = ...) -> str: ...


def read_yaml(path: Readable, what: str, *, missing_hint: str = "") -> Any:
    """Parse a YAML configuration file; a missing or malformed one is a ConfigError naming it."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {path} does not exist{missing_hint}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from exc


def load_feeds(path: Path) -> list[Feed]:
    """Load and validate a feed list; every problem is reported with the feed it belongs to."""
    raw = read_yaml(path, "feed list", missing_hint=": pass --feeds FILE or set ENERGYWATCH_FEEDS_FILE")
    entries = raw.get("feeds") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"feed list {path} must be a mapping with a 'feeds:' list")
    feeds: list[Feed] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        label = f"feed #{index}" + (f" ({entry.get('id')!r})" if isinstance(entry, dict) and entry.get("id") else "")
        if not isinstance(entry, dict):
            problems.append(f"{label}: must be a mapping with id, name and url")
            continue
        if isinstance(entry.get("tags"), list):
            entry = {**entry, "tags": tuple(entry["tags"])}
        try:
            feed = Feed(**entry)
        except ValidationError as exc:
            problems.append(_format_validation(label, exc))
            continue
        if urlsplit(feed.url).scheme not in {"http", "https"}:
            problems.append(f"{label}: url must be http(s), got {feed.url!r}")
            continue
        if feed.id in seen:
            problems.append(f"{label}: id {feed.id!r} is already used by feed #{seen[feed.id]}")
            continue
        seen[feed.id] = index
        feeds.append(feed)
    if problems:
        raise ConfigError(f"feed list {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return feeds


def _format_validation(label: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{where}: {err['msg']}")
    return f"{label}: " + "; ".join(parts)
