"""Decoding as good as feedparser's own: its test corpus (tests/encoding/ in its sdist, which `make test`
downloads into .venv/sdist) through our path and through plain feedparser.

Each file states its expectation (`Expect:`) about feedparser's result; for every file plain feedparser
passes, our path must give the same text: the feed's title, and each entry's title and description.
The `http_*` files carry the HTTP headers they are served with (`Header:` lines), as our poller
passes them on (the Content-Type's charset)."""

from __future__ import annotations

import re
import tarfile
from importlib.metadata import version
from pathlib import Path

import feedparser
import pytest

from energywatch.errors import FeedParseError
from energywatch.feeds import parse_feed
from energywatch.models import Feed

ROOT = Path(__file__).resolve().parents[1]
SDIST = ROOT / ".venv" / "sdist" / f"feedparser-{version('feedparser')}.tar.gz"
_FIELD = re.compile(rb"^(Description|Expect|SkipUnless|Header):\s*(.*?)\s*$", re.M)


def _cases(folder: str) -> list[tuple[str, bytes]]:
    if not SDIST.exists():
        return []
    with tarfile.open(SDIST) as sdist:
        return sorted((Path(m.name).name, sdist.extractfile(m).read()) for m in sdist.getmembers()
                      if f"/tests/{folder}/" in m.name and m.name.endswith(".xml") and m.isfile())


CASES = _cases("encoding")


_EBCDIC = ("cp037", "cp500", "cp875", "cp1140")


def _fields(data: bytes) -> tuple[dict[str, list[str]], str]:
    """The test's fields from its comment, and the codec the comment was read in (as feedparser's runner
    reads it, whatever the file's encoding: it is written in that encoding too)."""
    for codec in ("utf-8-sig", "utf-32", "utf-16", "utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be", *_EBCDIC):
        try:
            text = data.decode(codec, errors="replace")
        except UnicodeError:
            continue
        if "Expect:" in text:
            break
    else:
        return {}, ""
    found: dict[str, list[str]] = {}
    for key, value in _FIELD.findall(text.encode("utf-8")):
        found.setdefault(key.decode(), []).append(value.decode("utf-8", "replace"))
    return found, codec


def _texts(title: str | None, entries: list[tuple[str, str]]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (title or "").strip(), tuple((t.strip(), d.strip()) for t, d in entries)


@pytest.mark.skipif(not CASES, reason=f"{SDIST} is missing: `make test` downloads feedparser's sdist there")
@pytest.mark.parametrize("folder", ["encoding", "illformed"])
def test_every_case_plain_feedparser_passes_decodes_the_same(folder: str) -> None:
    feed = Feed(id="suite", name="Suite", url="http://127.0.0.1:8097/feed")
    passed_plain, same, ebcdic, different = 0, 0, 0, []
    cases = _cases(folder)
    for name, data in cases:
        fields, codec = _fields(data)
        try:
            if not eval(fields.get("SkipUnless", ["1"])[0], {"feedparser": feedparser}):  # noqa: S307 - its own expressions
                continue
        except (ImportError, LookupError, AttributeError):  # a codec this Python lacks: feedparser skips it too
            continue
        if codec in _EBCDIC:  # no feed in the wild is EBCDIC, and no byte pattern tells it apart
            ebcdic += 1
            continue
        headers = dict(h.split(":", 1) for h in fields.get("Header", []))
        headers = {k.strip().lower(): v.strip() for k, v in headers.items()} if "http" in name else {}
        plain = feedparser.parse(data, response_headers=headers)
        try:
            if not eval(fields["Expect"][0], {"feedparser": feedparser}, plain):  # noqa: S307
                continue
        except Exception:  # noqa: BLE001 - an expectation that does not even evaluate counts as failed
            continue
        passed_plain += 1
        expected = _texts(plain.feed.get("title"), [(e.get("title", ""), e.get("description", ""))
                                                   for e in plain.entries])
        content_type = headers.get("content-type", "")
        charset = next((p.split("=", 1)[1].strip().strip("\"'") for p in content_type.split(";")[1:]
                        if p.strip().lower().startswith("charset=")), None)
        try:
            ours = parse_feed(feed, data, url=feed.url, content_type=content_type.split(";")[0].strip().lower(),
                              charset=charset)
        except FeedParseError as exc:
            if plain.bozo and not plain.entries and not plain.feed.get("title"):
                same += 1  # nothing to read, and said so (an empty document: feedparser's bozo)
            else:
                different.append(f"{name}: {exc}")
            continue
        got = _texts(ours.title, [(i.title, i.summary) for i in ours.items])
        # our items need a link; compare the feed title always, entries where both have them
        if got[0] == expected[0] and all(g == e for g, e in zip(got[1], expected[1])):
            same += 1
        elif plain.bozo and ours.error:
            # feedparser's text after an error is a guess (a BOM's encoding broken by invalid bytes,
            # read as windows-1252 instead); ours may differ, but must say something is wrong too
            same += 1
        else:
            different.append(f"{name}: {got!r} != {expected!r}" + (" (and no warning)" if plain.bozo else ""))
    print(f"feedparser {version('feedparser')} {folder}/ ({len(cases)} files, {ebcdic} EBCDIC left aside): "
          f"plain feedparser passes {passed_plain}; our path gives the same text for {same}")
    assert not different, "\n".join(different)
