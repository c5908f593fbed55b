"""Canonical article URLs and the stable document id derived from them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit


def canonical_url(url: str, base: str | None = None) -> str:
    """Resolve, lower-case the host, drop fragments and tracking parameters (utm_*, fbclid, ...)."""
    from courlan import normalize_url  # here: the CLI and the stores need redact_url, not courlan's 80 ms

    absolute = urljoin(base, url.strip()) if base else url.strip()
    try:
        # non-strict: drop known trackers only; strict mode also drops unknown parameters,
        # which would merge distinct articles addressed as ?p=123 or ?story=...
        normalized = normalize_url(absolute, strict=False)
    except ValueError:
        normalized = absolute
    parts = urlsplit(normalized)
    netloc = parts.netloc.lower()
    if parts.scheme == "http" and netloc.endswith(":80"):
        netloc = netloc[:-3]
    elif parts.scheme == "https" and netloc.endswith(":443"):
        netloc = netloc[:-4]
    query = "&".join(sorted(p for p in parts.query.split("&") if p))
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """The URL without its user:password@, and the user and password as written (percent-encoded);
    None for what it does not have. The host part may list several hosts (es1:9200,es2:9200)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at:
        return url, None, None
    user, colon, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hosts)), user, password if colon else None


# query parameters that carry a secret in feed URLs seen in the wild (?apikey=, ?access_token=, …)
_SECRET_PARAMS = re.compile(r"(?i)^(api[-_]?key|key|token|access[-_]?token|auth|secret|client[-_]?secret|"
                            r"password|passwd|pass|pwd|sig|signature|session|sid)$")


def redact_url(url: str) -> str:
    """A URL with any password, and the values of query parameters that carry secrets, hidden."""
    bare, user, password = split_credentials(url)
    parts = urlsplit(bare)
    query = "&".join(f"{name}=***" if value and _SECRET_PARAMS.match(unquote(name)) else f"{name}{eq}{value}"
                     for name, eq, value in (p.partition("=") for p in parts.query.split("&"))) if parts.query else ""
    if password is None and query == parts.query:
        return url
    if password is not None:
        parts = parts._replace(netloc=f"{user}:***@{parts.netloc}")
    return urlunsplit(parts._replace(query=query))


def redact_text(text: str, urls: Sequence[str]) -> str:
    """A message with each of these URLs replaced by its redacted form."""
    for url in urls:
        shown = redact_url(url)
        if shown != url:
            text = text.replace(url, shown)
    return text


def document_id(canonical: str) -> str:
    """Stable id of a document: a hash of its canonical URL, so that writes are upserts."""
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


def domain_of(url: str) -> str:
    """Host of a URL without a leading www."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def absolute_http(url: str | None, base: str) -> str | None:
    """An http(s) URL made absolute, or None (a data: or javascript: image is no image)."""
    if not url or not isinstance(url, str):
        return None
    try:
        absolute = urljoin(base, url.strip())
    except ValueError:
        return None
    return absolute[:2000] if absolute.startswith(("http://", "https://")) else None
