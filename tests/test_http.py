"""The HTTP client against a real local server: status handling, caps, redirects, guard, concurrency."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from energywatch.config import Settings
from energywatch.errors import BlockedAddressError, FeedGone, FetchError, TransientError
from energywatch.http import HttpClient, PublicOnlyResolver, is_public_address, parse_retry_after


def get(settings: Settings, url: str, max_bytes: int = 1_000_000, **kw):
    async def go():
        async with HttpClient(settings) as http:
            return await http.get(url, max_bytes=max_bytes, **kw)
    return asyncio.run(go())


def test_ok_and_headers(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("hello", content_type="text/plain; charset=windows-1251")
    r = get(settings, httpserver.url_for("/x"))
    assert r.status == 200 and r.content == b"hello"
    assert r.content_type == "text/plain" and r.charset == "windows-1251"


def test_304_and_conditional_headers_sent(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/f", headers={"If-None-Match": '"v1"'}).respond_with_data("", status=304)
    r = get(settings, httpserver.url_for("/f"), headers={"If-None-Match": '"v1"'})
    assert r.status == 304 and r.content == b""


def test_410_is_feed_gone(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    with pytest.raises(FeedGone):
        get(settings, httpserver.url_for("/gone"))


def test_404_is_terminal(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/missing").respond_with_data("no", status=404)
    with pytest.raises(FetchError) as info:
        get(settings, httpserver.url_for("/missing"))
    assert info.value.status == 404 and "/missing" in str(info.value)


def test_5xx_is_transient(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/boom").respond_with_data("x", status=502)
    with pytest.raises(TransientError):
        get(settings, httpserver.url_for("/boom"))


def test_429_short_retry_after_is_waited_for_in_run(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/busy").respond_with_data("", status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request("/busy").respond_with_data("finally")
    started = time.monotonic()
    r = get(settings, httpserver.url_for("/busy"))
    assert r.content == b"finally" and time.monotonic() - started >= 0.9


def test_429_long_retry_after_is_reported(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/busy").respond_with_data("", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(TransientError) as info:
        get(settings, httpserver.url_for("/busy"))
    assert info.value.retry_after == 3600


def test_retry_after_http_date() -> None:
    from datetime import datetime, timezone
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("Thu, 01 Jan 2026 12:02:00 GMT", now) == 120
    assert parse_retry_after("garbage") is None and parse_retry_after("30") == 30


def test_read_timeout_is_transient(settings, httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(3)
        return Response("late")
    httpserver.expect_request("/slow").respond_with_handler(slow)
    with pytest.raises(TransientError, match="timed out|no complete answer"):
        get(settings.model_copy(update={"read_timeout": 0.5}), httpserver.url_for("/slow"))


def test_redirects_followed_and_bounded(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/r1").respond_with_data("", status=301, headers={"Location": "/r2"})
    httpserver.expect_request("/r2").respond_with_data("", status=302, headers={"Location": "/end"})
    httpserver.expect_request("/end").respond_with_data("here")
    r = get(settings, httpserver.url_for("/r1"))
    assert r.content == b"here" and r.url.endswith("/end")
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="redirects"):
        get(settings, httpserver.url_for("/loop"))


def test_size_cap_declared_and_streamed(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    with pytest.raises(FetchError, match="limit"):
        get(settings, httpserver.url_for("/big"), max_bytes=1000)

    def chunked(request: Request) -> Response:
        return Response((b"y" * 1000 for _ in range(10)), direct_passthrough=True)  # no Content-Length
    httpserver.expect_request("/stream").respond_with_handler(chunked)
    with pytest.raises(FetchError, match="limit"):
        get(settings, httpserver.url_for("/stream"), max_bytes=3000)


def test_gzip_file_body_is_inflated_with_cap(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/f.gz").respond_with_data(gzip.compress(b"<rss/>"), content_type="application/x-gzip")
    assert get(settings, httpserver.url_for("/f.gz")).content == b"<rss/>"
    httpserver.expect_request("/bomb.gz").respond_with_data(gzip.compress(b"0" * 100_000), content_type="application/x-gzip")
    with pytest.raises(FetchError, match="inflates"):
        get(settings, httpserver.url_for("/bomb.gz"), max_bytes=10_000)


def test_stacked_content_encodings_are_decoded_within_the_cap(settings, httpserver: HTTPServer) -> None:
    import resource
    import zlib

    page = b"<html><body>" + "Газопровод ".encode() * 2000 + b"</body></html>"
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for path, body, coding in (
        ("/gz", gzip.compress(page), "gzip"),
        ("/gzgz", gzip.compress(gzip.compress(page)), "gzip, gzip"),
        ("/deflate", zlib.compress(page), "deflate"),
        ("/rawdeflate", raw_deflate.compress(page) + raw_deflate.flush(), "deflate"),
        ("/mixed", gzip.compress(zlib.compress(page)), "deflate, gzip"),
    ):
        httpserver.expect_request(path).respond_with_data(body, headers={"Content-Encoding": coding},
                                                          content_type="text/html")
        assert get(settings, httpserver.url_for(path)).content == page, path
    # 1 GB of zeros, gzipped twice: a few kB on the wire. Refused at the cap, without inflating it
    zeros = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    inner = b"".join(zeros.compress(b"\0" * (1 << 24)) for _ in range(64)) + zeros.flush()
    bomb = gzip.compress(inner, 9)
    assert len(bomb) < 100_000
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip, gzip"},
                                                         content_type="text/html")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(FetchError, match="inflates past the limit of 1000000 bytes"):
        get(settings, httpserver.url_for("/bomb"))
    assert time.perf_counter() - t0 < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: no 1 GB in memory
    httpserver.expect_request("/br").respond_with_data(b"x", headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError, match="unsupported Content-Encoding br"):
        get(settings, httpserver.url_for("/br"))
    httpserver.expect_request("/bad").respond_with_data(b"not gzip", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="gzip body is corrupt"):
        get(settings, httpserver.url_for("/bad"))


def test_private_address_guard(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/secret").respond_with_data("internal")
    guarded = settings.model_copy(update={"allow_private_addresses": False})
    with pytest.raises(BlockedAddressError, match="private"):
        get(guarded, httpserver.url_for("/secret"))
    with pytest.raises(BlockedAddressError, match="localhost resolves to 127.0.0.1"):
        get(guarded, "http://localhost:%d/secret" % httpserver.port)
    assert get(settings, httpserver.url_for("/secret")).content == b"internal"


def test_resolver_refuses_names_with_private_addresses() -> None:
    # the check runs on the addresses the connection is made to, so DNS rebinding has no window
    async def resolve() -> None:
        await PublicOnlyResolver().resolve("localhost", 80)
    with pytest.raises(BlockedAddressError, match="127.0.0.1"):
        asyncio.run(resolve())


def _raw_server(payload: bytes) -> str:
    """A server that answers every connection with these exact bytes, then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(payload)
    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/page"


@pytest.mark.parametrize("payload", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_invalid_http_response_is_a_clear_fetch_error(settings, payload: bytes) -> None:
    url = _raw_server(payload)
    with pytest.raises(FetchError, match=f"{url}: the server sent an invalid HTTP response"):
        get(settings, url)


def test_truncated_body_is_transient(settings) -> None:
    url = _raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
    with pytest.raises(TransientError, match="connection failed .*ClientPayloadError"):
        get(settings, url)


def test_public_address_classification() -> None:
    assert is_public_address("93.184.216.34")
    for private in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "::1", "fe80::1",
                    "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1",
                    # IPv4 inside IPv6: NAT64 (well-known and local-use prefixes), 6to4, IPv4-compatible
                    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "2002:7f00:1::1", "2002:a00:1::",
                    "::127.0.0.1", "::10.0.0.1",
                    # IETF protocol assignments, including the two Python calls global
                    "192.0.0.1", "192.0.0.9", "192.0.0.10", "192.0.0.170"):
        assert not is_public_address(private), private
    for public in ("64:ff9b::5db8:d822", "2002:5db8:d822::1", "2606:4700::1111", "8.8.8.8"):
        assert is_public_address(public), public


def test_per_host_concurrency_limit(settings) -> None:
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def handler(request: Request) -> Response:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.2)
        with lock:
            active["now"] -= 1
        return Response("ok")

    server = HTTPServer(threaded=True)
    server.expect_request("/p").respond_with_handler(handler)
    server.start()
    try:
        limited = settings.model_copy(update={"per_host_concurrency": 2})

        async def go():
            async with HttpClient(limited) as http:
                await asyncio.gather(*(http.get(server.url_for("/p"), max_bytes=100) for _ in range(8)))
        asyncio.run(go())
    finally:
        server.clear()
        server.stop()
    assert active["max"] == 2
