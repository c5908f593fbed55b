"""Small text helpers shared by stages: HTML fragments to text, whitespace, decoding."""

from __future__ import annotations

import codecs
import re

import lxml.html
from charset_normalizer import from_bytes
from lxml import etree

_WS = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u3000]+")
_BLANKS = re.compile(r"\n\s*\n+")

# WHATWG treats these labels as their Windows supersets; decoding by the label alone loses characters
_SUPERSETS = {
    "iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252",
    "iso-8859-9": "cp1254", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "iso-8859-11": "cp874", "tis-620": "cp874", "ks_c_5601-1987": "cp949", "euc-kr": "cp949",
}


def collapse_ws(text: str) -> str:
    """Collapse runs of spaces and blank lines; strip the ends."""
    text = _WS.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (feed summaries, titles with markup)."""
    if not fragment:
        return ""
    if "<" not in fragment and "&" not in fragment:
        return collapse_ws(fragment)
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return collapse_ws(re.sub(r"<[^>]+>", " ", fragment))
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    for br in root.xpath("//br|//p|//div|//li"):
        br.tail = "\n" + (br.tail or "")
    return collapse_ws(root.text_content())


def codec_for(label: str | None) -> str | None:
    """Python codec name for a charset label, widened to its WHATWG superset; None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


REPAIRED = "replaced"  # in the encoding decode_bytes reports: UTF-8 with invalid bytes replaced
GUESSED = "guessed"  # in the encoding decode_bytes reports: no BOM, UTF-8 or label fitted, detection chose


def _nearly_utf8(data: bytes) -> tuple[str, str] | None:
    """UTF-8 spoilt by a few invalid bytes: decoded with U+FFFD for each, rather than guessed as another
    encoding (one stray byte made whole Russian feeds mojibake). None when the bytes are not that."""
    text = data.decode("utf-8", errors="replace")
    errors = text.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - errors
    # another encoding's text decodes as UTF-8 into errors with hardly a valid multi-byte character
    if errors < 1 or non_ascii < 10 * errors:
        return None
    return text, f"utf-8, {errors} invalid byte sequence(s) {REPAIRED}"


_BOMS = (  # UTF-32's before UTF-16's: FF FE 00 00 also starts with UTF-16 LE's FF FE
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


def _wide_unicode(data: bytes) -> str | None:
    """UTF-16 or UTF-32 without a byte-order mark, told by the NULs around the first ASCII character
    (XML, JSON and HTML all start with one: the autodetection of the XML spec, appendix F)."""
    head = data[:4]
    if len(head) < 4 or not any(head):
        return None
    if head[1:] == b"\0\0\0" and head[0]:
        return "utf-32-le"
    if head[:3] == b"\0\0\0" and head[3]:
        return "utf-32-be"
    if head[1] == 0 == head[3] and head[0] and head[2]:
        return "utf-16-le"
    if head[0] == 0 == head[2] and head[1] and head[3]:
        return "utf-16-be"
    return None


def decode_bytes(data: bytes, *, declared: tuple[str | None, ...] = ()) -> tuple[str, str]:
    """Decode bytes: BOM, UTF-16/32 by their NULs, valid UTF-8, the declared labels in order, then detection."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError:
                text = data.decode(name, errors="replace")
                errors = text.count("\ufffd") - data.decode(name, errors="ignore").count("\ufffd")
                return text, f"{name.removesuffix('-sig')}, {errors} invalid byte sequence(s) {REPAIRED}"
    wide = _wide_unicode(data)
    if wide is not None:
        try:
            return data.decode(wide), wide
        except UnicodeDecodeError:
            pass
    try:
        # valid UTF-8 with non-ASCII bytes is almost never another encoding, whatever the label says
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    repaired = _nearly_utf8(data)
    if repaired is not None:
        return repaired
    for label in declared:
        codec = codec_for(label)
        if codec and codec not in {"utf-8", "utf_8"}:
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError:
                continue
    best = from_bytes(_detection_sample(data)).best()
    if best is not None and best.encoding:
        return data.decode(best.encoding, errors="replace"), f"{best.encoding}, {GUESSED}"
    return data.decode("cp1252", errors="replace"), f"cp1252, {GUESSED}"


_SAMPLE = 200_000
_NON_ASCII = re.compile(rb"[\x80-\xff]+")


def _detection_sample(data: bytes) -> bytes:
    """What the detector reads: up to 200 kB of the non-ASCII runs with a little context around each.

    ASCII says nothing about the encoding: a long ASCII stretch (markup, a stylesheet, a comment)
    used to fill a sample of the first 200 kB, the guess was wrong, and the rest turned to mojibake
    or replacement characters."""
    if len(data) <= _SAMPLE:
        return data
    pieces: list[bytes] = []
    size, start, end = 0, -1, -1
    for run in _NON_ASCII.finditer(data):
        # windows end 80 bytes into ASCII, so they never cut a multi-byte character; close ones merge
        left, right = max(0, run.start() - 80), run.end() + 80
        if left <= end:
            end = right
            continue
        if end > start >= 0:
            pieces.append(data[start:end])
            size += end - start
            if size >= _SAMPLE:
                break
        start, end = left, right
    else:
        if end > start >= 0:
            pieces.append(data[start:end])
    return b"\n".join(pieces) if pieces else data[:_SAMPLE]
