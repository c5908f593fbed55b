"""Render and send alert messages: generic webhook (HMAC-signed JSON), Slack Block Kit, e-mail."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from energywatch.alerts.rules import ChannelConfig
from energywatch.errors import ConfigError, FetchError, TransientError
from energywatch.models import Alert

SIGNATURE_HEADER = "X-Energywatch-Signature"
# the same for every attempt at one message, so that a receiver can drop a delivery it has seen (a
# retry after a lost answer, a deliverer that died after sending)
DELIVERY_HEADER = "X-Energywatch-Delivery"


@dataclass(frozen=True)
class Message:
    """What one send carries: a rule's alerts for one channel (one story, or a digest of several)."""

    rule: str
    channel: str
    alerts: tuple[Alert, ...]
    copies: Mapping[str, int]

    @property
    def subject(self) -> str:
        """A one-line subject."""
        if len(self.alerts) == 1:
            return f"[energywatch] {self.alerts[0].title}"
        return f"[energywatch] {len(self.alerts)} new stories for {self.rule}"

    @property
    def delivery_id(self) -> str:
        """A stable id of this message: its channel and the outbox entries it carries."""
        key = "\x00".join([self.channel, *sorted(a.id for a in self.alerts)])
        return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


def _secret(config: ChannelConfig, env_name: str | None, secrets: Mapping[str, str]) -> str | None:
    if not env_name:
        return None
    value = secrets.get(env_name) or os.environ.get(env_name)
    if not value:
        raise ConfigError(f"channel needs the secret in {env_name}, which is not set")
    return value


def payload(message: Message) -> dict[str, Any]:
    """The JSON body of a webhook: plain data, the receiver escapes it for its own medium."""
    return {
        "delivery_id": message.delivery_id, "rule": message.rule, "count": len(message.alerts),
        "stories": [{
            "story_id": a.story_id, "document_id": a.doc_id, "title": a.title, "url": a.url, "source": a.source,
            "language": a.language, "label": a.label, "score": a.score, "themes": list(a.themes),
            "organizations": list(a.organizations), "countries": list(a.countries), "evidence": list(a.evidence),
            "published_at": a.published_at.isoformat() if a.published_at else None,
            "copies": message.copies.get(a.story_id, 1),
        } for a in message.alerts],
    }


def sign(body: bytes, secret: str) -> str:
    """HMAC-SHA256 of the exact body, as sent in X-Energywatch-Signature ("sha256=<hex>")."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def slack_escape(text: str) -> str:
    """Escape Slack mrkdwn control characters (&, <, >) so article text cannot inject links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _safe_url(url: str) -> str:
    # only http(s) links are rendered; a URL with | or > would break Slack's <url|text> syntax
    if not url.startswith(("http://", "https://")):
        return ""
    return url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")


def slack_blocks(message: Message) -> dict[str, Any]:
    """Slack incoming-webhook body in Block Kit."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}}]
    for a in message.alerts[:20]:
        url = _safe_url(a.url)
        title = slack_escape(a.title)
        heading = f"*<{url}|{title}>*" if url else f"*{title}*"
        copies = message.copies.get(a.story_id, 1)
        meta = (f"{slack_escape(a.source)} · {a.language or '?'} · {a.label} {a.score:.2f} · "
                f"{', '.join(a.themes) or 'no theme'}" + (f" · {copies} copies" if copies > 1 else ""))
        evidence = "\n".join(f"> {slack_escape(e[:280])}" for e in a.evidence)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{heading}\n{meta}\n{evidence}".strip()}})
        blocks.append({"type": "divider"})
    # "text" is the notification fallback and is read as mrkdwn; the header block is plain_text (not parsed)
    return {"text": slack_escape(message.subject), "blocks": blocks}


def email_message(message: Message, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """A plain-text and an HTML part; article text is escaped in the HTML."""
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    plain, rich = [], []
    for a in message.alerts:
        copies = message.copies.get(a.story_id, 1)
        plain.append(f"{a.title}\n{a.url}\n{a.source} · {a.language or '?'} · {a.label} {a.score:.2f} · "
                     f"{', '.join(a.themes)}" + (f" · {copies} copies" if copies > 1 else "") + "\n"
                     + "\n".join(f"  » {e}" for e in a.evidence))
        link = html.escape(a.url, quote=True) if a.url.startswith(("http://", "https://")) else ""
        title = html.escape(a.title)
        anchor = f'<a href="{link}">{title}</a>' if link else title
        rich.append(f"<h3>{anchor}</h3>"
                    f"<p>{html.escape(a.source)} · {html.escape(a.language or '?')} · {a.label} {a.score:.2f} · "
                    f"{html.escape(', '.join(a.themes))}</p>"
                    + "".join(f"<blockquote>{html.escape(e)}</blockquote>" for e in a.evidence))
    mail.set_content("\n\n".join(plain))
    mail.add_alternative("<html><body>" + "".join(rich) + "</body></html>", subtype="html")
    return mail


def send(message: Message, config: ChannelConfig, secrets: Mapping[str, str] | None = None) -> None:
    """Deliver one message; TransientError when a retry may help, ConfigError/FetchError when not."""
    secrets = secrets or {}
    if config.type in {"webhook", "slack"}:
        url = config.url or _secret(config, config.url_env, secrets)
        if config.type == "slack":
            body = json.dumps(slack_blocks(message), ensure_ascii=False).encode("utf-8")
        else:
            body = json.dumps(payload(message), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: message.delivery_id}
        secret = _secret(config, config.secret_env, secrets) if config.type == "webhook" else None
        if secret:
            headers[SIGNATURE_HEADER] = sign(body, secret)
        try:
            response = httpx.post(str(url), content=body, headers=headers, timeout=config.timeout_seconds)
        except httpx.TransportError as exc:
            # the URL may itself be the secret (Slack): name only the kind of failure
            raise TransientError(f"{config.type} channel {message.channel!r}: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"{config.type} channel {message.channel!r}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise FetchError(f"{config.type} channel {message.channel!r}: HTTP {response.status_code}",
                             status=response.status_code)
        if not 200 <= response.status_code < 300:
            # a redirect is not followed (it would turn the POST into a GET on many servers): nothing arrived
            raise FetchError(f"{config.type} channel {message.channel!r}: HTTP {response.status_code} "
                             f"(Location: {response.headers.get('location', 'none')[:200]}); nothing was "
                             "delivered: configure the URL the receiver redirects to", status=response.status_code)
        return
    password = _secret(config, config.password_env, secrets)
    mail = email_message(message, str(config.sender), config.recipients)
    try:
        with smtplib.SMTP(str(config.host), config.port, timeout=config.timeout_seconds) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, password or "")
            smtp.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise ConfigError(f"email channel {message.channel!r}: the SMTP server refused the login") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientError(f"email channel {message.channel!r}: {type(exc).__name__}: {exc}") from exc
