"""Canonical article URLs and the stable document id derived from them."""

from __future__ import annotations

import hashlib
from urllib.parse import urljoin, urlsplit, urlunsplit


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


def redact_url(url: str) -> str:
    """A URL with any password in it hidden, for messages and logs."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}"))
    return url


def document_id(canonical: str) -> str:
    """Stable id of a document: a hash of its canonical URL, so that writes are upserts."""
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


def domain_of(url: str) -> str:
    """Host of a URL without a leading www."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host
