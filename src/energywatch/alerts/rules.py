"""Alert rules and channels from YAML, validated; which documents a rule matches; outbox entries."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from energywatch.config import read_yaml
from energywatch.errors import ConfigError
from energywatch.models import Alert, Document, SavedSearch
from energywatch.store.query import matches_text, parse_query, searchable

log = logging.getLogger(__name__)
SAVED_PREFIX = "saved."  # the rule of a saved search that alerts is named saved.NAME
ALL_LABELS: tuple[Literal["core", "related", "none"], ...] = ("core", "related", "none")

_EVIDENCE = 3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelConfig(_Strict):
    """Where alerts go. Secrets are never written here: name the environment variable that holds them."""

    type: Literal["webhook", "slack", "email"]
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = Field(default=None, description="HMAC-SHA256 shared secret (webhook)")
    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password_env: str | None = None
    sender: str | None = None
    recipients: list[str] = []
    timeout_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> ChannelConfig:
        if self.type in {"webhook", "slack"} and not (self.url or self.url_env):
            raise ValueError(f"a {self.type} channel needs url or url_env")
        if self.type == "email" and not (self.host and self.sender and self.recipients):
            raise ValueError("an email channel needs host, sender and recipients")
        return self


class Rule(_Strict):
    """Which new stories to alert on, where, and how often."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    labels: list[Literal["core", "related", "none"]] = ["core"]
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    themes: list[str] = []
    organizations: list[str] = []
    countries: list[str] = []
    infrastructure: list[str] = []
    people: list[str] = []
    languages: list[str] = []
    sources: list[str] = []
    query: str | None = None
    channels: list[str] = Field(min_length=1)
    mode: Literal["instant", "digest"] = "instant"
    digest_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    quiet_minutes: int = Field(default=0, ge=0, le=7 * 24 * 60)
    # instant alerts: the first goes at once; those due within this many seconds of a send wait for
    # the window's end and go together as one message (a burst of related stories, not 20 webhooks)
    batch_seconds: int = Field(default=10, ge=0, le=3600)

    @model_validator(mode="after")
    def _readable_query(self) -> Rule:
        if self.query is not None:
            try:
                searchable(self.query)
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc
        return self


class RulesFile(_Strict):
    """A whole rules file."""

    channels: dict[str, ChannelConfig]
    rules: list[Rule]

    @model_validator(mode="after")
    def _references(self) -> RulesFile:
        names = [r.name for r in self.rules]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"rule names must be unique: {', '.join(doubled)}")
        for rule in self.rules:
            unknown = [c for c in rule.channels if c not in self.channels]
            if unknown:
                raise ValueError(f"rule {rule.name!r}: unknown channel(s) {', '.join(unknown)} "
                                 f"(defined: {', '.join(self.channels) or 'none'})")
        return self

    def rule(self, name: str) -> Rule:
        """A rule by name, or a clear error."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise ConfigError(f"no rule named {name!r} (rules: {', '.join(r.name for r in self.rules)})")


def saved_search_rule(saved: SavedSearch, channels: Sequence[str]) -> Rule:
    """The alert rule of a saved search: every new story the search would list, on its channels."""
    return Rule(name=f"{SAVED_PREFIX}{saved.name}", labels=list(saved.labels or ALL_LABELS),
                min_score=saved.min_score or 0.0, themes=list(saved.themes),
                organizations=list(saved.organizations), countries=list(saved.countries),
                languages=list(saved.languages), sources=list(saved.sources), query=saved.text or None,
                channels=list(channels))


def with_saved_searches(rules: RulesFile, saved: Sequence[SavedSearch]) -> RulesFile:
    """The rules file plus a rule for each saved search that alerts (on channels the file defines).

    The channels, and the secrets they name, stay in the file: a saved search only picks among them.
    A channel since removed from the file is left out, with a warning, never an error that would stop
    the file's own rules."""
    added = []
    names = {r.name for r in rules.rules}
    for search in (s for s in saved if s.channels):
        channels = [c for c in search.channels if c in rules.channels]
        if len(channels) < len(search.channels):
            log.warning("saved search %r names channel(s) the rules file no longer defines: %s", search.name,
                        ", ".join(c for c in search.channels if c not in rules.channels))
        rule = saved_search_rule(search, channels) if channels else None
        if rule is not None and rule.name not in names:
            added.append(rule)
    return rules.model_copy(update={"rules": [*rules.rules, *added]}) if added else rules


def load_all_rules(path: Path, saved: Sequence[SavedSearch]) -> RulesFile | None:
    """The rules file with the rules of the saved searches that alert; None when there is no file (no
    channel to alert on: saved searches that ask for alerts are then only warned about)."""
    if path.exists():
        return with_saved_searches(load_rules(path), saved)
    alerting = sum(1 for s in saved if s.channels)
    if alerting:
        log.warning("%d saved search(es) ask for alerts, but there is no alert rules file to define channels: "
                    "set ENERGYWATCH_ALERTS_FILE", alerting)
    return None


def load_rules(path: Path) -> RulesFile:
    """Read and validate a rules file; every problem names the rule and the field."""
    raw = read_yaml(path, "alert rules file", missing_hint=" (set ENERGYWATCH_ALERTS_FILE)") or {}
    problems = _reference_problems(raw)
    try:
        loaded = RulesFile.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = list(err["loc"])
            if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
                rules = (raw or {}).get("rules") or []
                known = loc[1] < len(rules) and isinstance(rules[loc[1]], dict)
                name = rules[loc[1]].get("name", f"#{loc[1] + 1}") if known else f"#{loc[1] + 1}"
                where = f"rule {name!r}" + (f": {'.'.join(map(str, loc[2:]))}" if loc[2:] else "")
            else:
                where = ".".join(map(str, loc)) or "file"
            message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            if err["type"] == "value_error":  # our own words, without pydantic's "Value error, " before them
                message = str(err.get("ctx", {}).get("error", message))
            if "unknown channel" not in message:  # already reported, with every rule at once
                problems.append(f"{where}: {message}")
        raise ConfigError(f"alert rules file {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems)) from exc
    if problems:
        raise ConfigError(f"alert rules file {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return loaded


def _reference_problems(raw: dict) -> list[str]:
    """Channels that rules name but the file does not define (checked even when other fields are wrong)."""
    channels: dict[str, Any] = raw["channels"] if isinstance(raw.get("channels"), dict) else {}
    problems = []
    for index, rule in enumerate(raw.get("rules") or []):
        if isinstance(rule, dict) and isinstance(rule.get("channels"), list):
            unknown = [c for c in rule["channels"] if c not in channels]
            if unknown:
                rule_name = rule.get("name", f"#{index + 1}")
                problems.append(f"rule {rule_name!r}: unknown channel(s) {', '.join(map(str, unknown))}"
                                f" (defined: {', '.join(channels) or 'none'})")
    return problems


def _any(wanted: list[str], present: tuple[str, ...]) -> bool:
    return not wanted or not set(wanted).isdisjoint(present)


def _query_matches(query: str, doc: Document) -> bool:
    return matches_text(parse_query(query), doc.title, doc.text, doc.language)


def matches(rule: Rule, doc: Document) -> bool:
    """Whether a document satisfies every condition of a rule."""
    r, e = doc.relevance, doc.entities
    return (
        r.label in rule.labels and r.score >= rule.min_score
        and _any(rule.themes, r.themes) and _any(rule.organizations, e.organizations)
        and _any(rule.countries, e.countries) and _any(rule.infrastructure, e.infrastructure)
        and _any(rule.people, e.people)
        and (not rule.languages or doc.language in rule.languages)
        and (not rule.sources or doc.feed_id in rule.sources or doc.source in rule.sources)
        and (not rule.query or _query_matches(rule.query, doc))
    )


def alert_id(rule: str, story_id: str, channel: str) -> str:
    """Exactly once per (rule, story, channel): the outbox key."""
    return hashlib.blake2b(f"{rule}\x00{story_id}\x00{channel}".encode(), digest_size=16).hexdigest()


def digest_due(created: datetime, minutes: int) -> datetime:
    """The end of the digest window a time falls in (windows aligned on the epoch, in UTC)."""
    seconds = minutes * 60
    stamp = created.timestamp()
    return datetime.fromtimestamp(math.floor(stamp / seconds) * seconds + seconds, tz=timezone.utc)


def alerts_for(rules: RulesFile, doc: Document, now: datetime) -> list[Alert]:
    """Outbox entries for a document: one per matching rule and channel, keyed by its story."""
    story = doc.story_id or doc.id
    out = []
    for rule in rules.rules:
        if not matches(rule, doc):
            continue
        due = digest_due(now, rule.digest_minutes) if rule.mode == "digest" else now
        for channel in rule.channels:
            out.append(Alert(
                id=alert_id(rule.name, story, channel), rule=rule.name, channel=channel, mode=rule.mode,
                story_id=story, doc_id=doc.id, title=doc.title, url=doc.url, source=doc.source,
                language=doc.language, label=doc.relevance.label, score=doc.relevance.score,
                themes=doc.relevance.themes, organizations=doc.entities.organizations,
                countries=doc.entities.countries,
                evidence=tuple(e.sentence for e in doc.relevance.evidence[:_EVIDENCE]),
                published_at=doc.published_at, created_at=now, due_at=due,
            ))
    return out


def retry_delay(attempts: int) -> timedelta:
    """Back-off after a failed send: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))
