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
from urllib.parse import unquote, urlsplit

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

from energywatch.config import Settings
from energywatch.errors import BlockedAddressError, FeedGone, FetchError, TransientError
from energywatch.urls import split_credentials

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


# IPv6 prefixes whose last 32 bits are an IPv4 address that a gateway or the host itself talks to:
# NAT64 (well-known and local-use) and the deprecated IPv4-compatible form
_V4_IN_LAST_32 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96"))
# IETF protocol assignments: Python calls 192.0.0.9 and .10 global, none of it is a news site
_NEVER_PUBLIC = (ipaddress.ip_network("192.0.0.0/24"),)


def is_public_address(address: str) -> bool:
    """True when an IP address is globally routable (not private, loopback, link-local, reserved...).

    An IPv6 address that carries an IPv4 address (mapped, 6to4, NAT64, IPv4-compatible) is judged by
    that IPv4 address: 64:ff9b::7f00:1 reaches 127.0.0.1 through a NAT64 gateway."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and any(ip in network for network in _V4_IN_LAST_32):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    if any(ip in network for network in _NEVER_PUBLIC):
        return False
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
        """GET a URL and read at most max_bytes; raise TransientError or FetchError on failure.

        Credentials in the URL (https://user:pass@host/feed, a private feed) are sent as Basic auth,
        only to that origin, and never appear in an error message."""
        url, user, password = split_credentials(url)
        auth = httpx.BasicAuth(unquote(user), unquote(password or "")) if user is not None else None
        for attempt in range(2):
            try:
                return await self._get_once(url, max_bytes=max_bytes, headers=headers or {}, auth=auth)
            except TransientError as exc:
                wait = exc.retry_after
                if attempt == 0 and wait is not None and wait <= self._settings.max_inline_retry_after:
                    await asyncio.sleep(wait)
                    continue
                raise
        raise AssertionError("unreachable")

    async def _get_once(self, url: str, *, max_bytes: int, headers: dict[str, str],
                        auth: httpx.BasicAuth | None = None) -> HttpResponse:
        host = urlsplit(url).hostname or ""
        total = self._settings.read_timeout * 3 + self._settings.connect_timeout
        async with self._global, self._per_host[host]:
            try:
                async with asyncio.timeout(total):
                    return await self._read(url, max_bytes=max_bytes, headers=headers, auth=auth)
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

    async def _read(self, url: str, *, max_bytes: int, headers: dict[str, str],
                    auth: httpx.BasicAuth | None = None) -> HttpResponse:
        async with self._client.stream("GET", url, headers=headers, auth=auth or httpx.USE_CLIENT_DEFAULT) as response:
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
            decoder = BoundedDecoder(response.headers.get("content-encoding", ""), max_bytes, url)
            chunks: list[bytes] = []
            raw_size = 0
            # raw bytes, decoded here piece by piece: httpx inflates each piece in one call, however
            # large the result (3.5 kB of gzip inside gzip became 4.3 GB on the event loop)
            async for chunk in response.aiter_raw():
                raw_size += len(chunk)
                if raw_size > max_bytes:
                    raise FetchError(f"{url}: body over the limit of {max_bytes} bytes", status=status)
                chunks.append(decoder.decode(chunk))
            chunks.append(decoder.flush())
        body = b"".join(chunks)
        if body[:2] == _GZIP_MAGIC:
            # a .gz file served as-is (no Content-Encoding): feeds are sometimes published so
            gunzip = BoundedDecoder("gzip", max_bytes, url)
            body = gunzip.decode(body) + gunzip.flush()
        return HttpResponse(final_url, status, plain_headers, body)


class BoundedDecoder:
    """Content-Encoding decoding (gzip, deflate, stacked in any order) that never inflates past a limit.

    Every inflation step is asked for at most limit + 1 bytes, so a bomb costs at most that much
    memory and time before it is refused, whatever its ratio.
    """

    def __init__(self, content_encoding: str, limit: int, url: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        unknown = [c for c in codings if c not in {"gzip", "x-gzip", "deflate", "identity"}]
        if unknown:
            raise FetchError(f"{url}: unsupported Content-Encoding {', '.join(unknown)} (gzip and deflate were asked for)")
        # the header lists codings in the order they were applied: undo them last first. Each layer
        # bounds its own output, the last one the body's (the raw body is bounded by the caller)
        self._stages = [_Inflater(c, limit, url) for c in reversed(codings) if c != "identity"]

    def decode(self, data: bytes) -> bytes:
        """Decode the next piece of the body."""
        for stage in self._stages:
            data = stage.decode(data)
        return data

    def flush(self) -> bytes:
        """Whatever the stages still hold once the body has ended."""
        data = b""
        for index, stage in enumerate(self._stages):
            data = stage.decode(data) + stage.flush()
            for later in self._stages[index + 1:]:
                data = later.decode(data)
        return data


class _Inflater:
    """One gzip or deflate layer, bounded."""

    def __init__(self, coding: str, limit: int, url: str) -> None:
        self._coding, self._limit, self._url = coding, limit, url
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS if coding in {"gzip", "x-gzip"} else zlib.MAX_WBITS)
        self._first = True
        self._size = 0

    def decode(self, data: bytes) -> bytes:
        if not data:
            return b""
        try:
            out = self._zlib.decompress(data, self._limit + 1 - self._size)
        except zlib.error as exc:
            if self._first and self._coding == "deflate":
                # "deflate" is often sent raw, without the zlib wrapper the standard asks for
                self._first = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(data)
            raise FetchError(f"{self._url}: {self._coding} body is corrupt ({exc})") from exc
        self._first = False
        return self._counted(out)

    def flush(self) -> bytes:
        try:
            return self._counted(self._zlib.flush())
        except zlib.error as exc:
            raise FetchError(f"{self._url}: {self._coding} body is corrupt ({exc})") from exc

    def _counted(self, out: bytes) -> bytes:
        self._size += len(out)
        if self._size > self._limit or self._zlib.unconsumed_tail:
            raise FetchError(f"{self._url}: the {self._coding} body inflates past the limit of {self._limit} bytes")
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
