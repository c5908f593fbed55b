"""One configured HTTP client: timeouts, size caps, concurrency limits, Retry-After, address guard."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

from energywatch.config import Settings
from energywatch.errors import BlockedAddressError, FeedGone, FetchError, TransientError

_GZIP_MAGIC = b"\x1f\x8b"
# hand bodies on in pieces of up to 256 kB rather than 16 kB: each piece passes through aiohttp, httpx
# and our size check, and at 16 kB that was a fifth of the main process's CPU (the cap still applies)
AiohttpResponseStream.CHUNK_SIZE = 256 * 1024


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # one per process: loading the CA bundle takes ~40 ms, and every run (every Airflow task) made
    # two of them before its first request; an SSLContext may be shared by connections and threads
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class HttpResponse:
    """A fully read, size-checked response."""

    url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The charset parameter of Content-Type, if any."""
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def is_public_address(address: str) -> bool:
    """True when an IP address is globally routable (not private, loopback, link-local, reserved...)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class HttpClient:
    """Async HTTP fetching shared by feed polling and page fetching; use as an async context manager."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._global = asyncio.Semaphore(settings.global_concurrency)
        self._per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host_concurrency)
        )
        # httpx's API (redirects, decoding, hooks) over aiohttp's connections: the default httpcore
        # transport cost ~2.6 ms of CPU per 150 kB page, aiohttp's ~1 ms, CPU the extraction workers need
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=True,
            max_redirects=settings.max_redirects,
            headers={"User-Agent": settings.user_agent},
            event_hooks={"request": [self._guard_literal]},
            transport=AiohttpTransport(client=self._session, verify=_ssl_context()),
        )

    def _session(self) -> aiohttp.ClientSession:
        # called by the transport on first use, inside the running event loop, as aiohttp requires
        resolver = None if self._settings.allow_private_addresses else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(limit=self._settings.global_concurrency, resolver=resolver,
                                         ttl_dns_cache=300, ssl=_ssl_context())
        # cookies are httpx's job; real sites send header lines longer than aiohttp's 8 kB default
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     max_line_size=65536, max_field_size=65536)

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def _guard_literal(self, request: httpx.Request) -> None:
        # runs for every hop, redirects included, so a public URL cannot bounce us inward; host names
        # are checked by PublicOnlyResolver on the very addresses the connection then uses
        if self._settings.allow_private_addresses:
            return
        host = request.url.host
        if _is_ip(host) and not is_public_address(host):
            raise BlockedAddressError(f"{host} is {_BLOCKED_HINT}")

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        """GET a URL and read at most max_bytes; raise TransientError or FetchError on failure."""
        for attempt in range(2):
            try:
                return await self._get_once(url, max_bytes=max_bytes, headers=headers or {})
            except TransientError as exc:
                wait = exc.retry_after
                if attempt == 0 and wait is not None and wait <= self._settings.max_inline_retry_after:
                    await asyncio.sleep(wait)
                    continue
                raise
        raise AssertionError("unreachable")

    async def _get_once(self, url: str, *, max_bytes: int, headers: dict[str, str]) -> HttpResponse:
        host = urlsplit(url).hostname or ""
        total = self._settings.read_timeout * 3 + self._settings.connect_timeout
        async with self._global, self._per_host[host]:
            try:
                async with asyncio.timeout(total):
                    return await self._read(url, max_bytes=max_bytes, headers=headers)
            except TimeoutError as exc:
                raise TransientError(f"{url}: no complete answer within {total:.0f} s") from exc
            except httpx.TooManyRedirects as exc:
                raise FetchError(f"{url}: more than {self._settings.max_redirects} redirects") from exc
            except httpx.UnsupportedProtocol as exc:
                raise FetchError(f"{url}: unsupported URL scheme ({exc})") from exc
            except (httpx.InvalidURL, httpx.LocalProtocolError) as exc:
                raise FetchError(f"{url}: invalid URL or request ({exc})") from exc
            except httpx.DecodingError as exc:
                raise FetchError(f"{url}: the body could not be decoded ({exc})") from exc
            except BlockedAddressError as exc:
                raise BlockedAddressError(f"{url}: {exc}") from exc
            except httpx.TransportError as exc:
                # the transport maps aiohttp's errors loosely (a refused connection becomes ConnectTimeout):
                # describe what really happened
                cause = exc.__cause__ or exc
                if isinstance(cause, TimeoutError) or (cause is exc and isinstance(exc, httpx.TimeoutException)):
                    raise TransientError(f"{url}: timed out ({type(cause).__name__})") from exc
                raise TransientError(f"{url}: connection failed ({type(cause).__name__}: {cause})") from exc
            except aiohttp.ClientResponseError as exc:
                detail = " ".join(str(exc.message).split())
                raise FetchError(f"{url}: the server sent an invalid HTTP response ({detail})") from exc
            except aiohttp.ClientError as exc:
                raise TransientError(f"{url}: connection failed ({type(exc).__name__}: {exc})") from exc

    async def _read(self, url: str, *, max_bytes: int, headers: dict[str, str]) -> HttpResponse:
        async with self._client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            plain_headers = {k.lower(): v for k, v in response.headers.items()}
            final_url = str(response.url)
            if status == 304:
                return HttpResponse(final_url, status, plain_headers)
            if status == 410:
                raise FeedGone(f"{url}: 410 Gone", status=status)
            if status in (429, 503) or status >= 500:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                hint = f", Retry-After {retry_after:.0f} s" if retry_after is not None else ""
                raise TransientError(f"{url}: HTTP {status}{hint}", retry_after=retry_after)
            if status >= 400:
                raise FetchError(f"{url}: HTTP {status}", status=status)
            if status >= 300:
                raise FetchError(f"{url}: HTTP {status} without a usable Location", status=status)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"{url}: {int(declared)} bytes is over the limit of {max_bytes}", status=status)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"{url}: body over the limit of {max_bytes} bytes", status=status)
                chunks.append(chunk)
        body = b"".join(chunks)
        if body[:2] == _GZIP_MAGIC:
            # a .gz file served as-is (no Content-Encoding): feeds are sometimes published so
            body = _gunzip_capped(body, max_bytes, url)
        return HttpResponse(final_url, status, plain_headers, body)


def _gunzip_capped(body: bytes, max_bytes: int, url: str) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise FetchError(f"{url}: gzip body is corrupt ({exc})") from exc
    if len(out) > max_bytes:
        raise FetchError(f"{url}: gzip body inflates past the limit of {max_bytes} bytes")
    return out


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_BLOCKED_HINT = ("a private, loopback or link-local address; set ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES=true "
                 "if this source is meant to be internal")


class PublicOnlyResolver(AbstractResolver):
    """DNS resolution that refuses names with any non-public address.

    Checking here, on the addresses the connection is then made to, leaves no window for a name
    to resolve to a public address when checked and a private one when connected (DNS rebinding).
    """

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        """Resolve like aiohttp's default resolver; raise BlockedAddressError on a non-public address."""
        results = await self._inner.resolve(host, port, family)
        blocked = sorted({r["host"] for r in results if not is_public_address(r["host"])})
        if blocked:
            raise BlockedAddressError(f"{host} resolves to {', '.join(blocked)}, {_BLOCKED_HINT}")
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


__all__ = ["HttpClient", "HttpResponse", "is_public_address", "parse_retry_after"]
