"""Query-dependent snippets with highlight offsets, computed on the original (unnormalised) text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from energywatch.analysis import analyze, normalize, stem_tokens, tokenize

_SENTENCE = re.compile(r"[^.!?؟。\n]+[.!?؟。]*", re.S)
_WORD = re.compile(r"[^\W_][\w\u0610-\u061a\u064b-\u065f\u0670\u0640\u0900-\u0dff\u0300-\u036f'’]*")


@dataclass(frozen=True)
class Snippet:
    """A passage of the text and the character ranges inside it that matched the query."""

    text: str
    highlights: tuple[tuple[int, int], ...] = ()


def query_stems(words: list[str], lang: str | None) -> set[str]:
    """Stems of query words in one language, plus the words themselves."""
    return set(stem_tokens(words, lang)) | set(words)


def make_snippet(text: str, words: list[str], lang: str | None, *, width: int = 240, scan_chars: int = 60_000) -> Snippet:
    """The sentence with the most query matches (or the start of the text), with its matches marked."""
    wanted = query_stems(words, lang)
    body = text[:scan_chars]
    best: tuple[int, int, int] | None = None  # (hits, start, end)
    if wanted:
        for match in _SENTENCE.finditer(body):
            sentence = match.group(0)
            hits = sum(1 for stem in analyze(sentence, lang) if stem in wanted)
            if hits and (best is None or hits > best[0]):
                best = (hits, match.start(), match.end())
    start, end = (best[1], best[2]) if best else (0, min(len(body), width))
    while start < end and body[start].isspace():
        start += 1
    if end - start > width:
        end = start + width
    passage = body[start:end].rstrip()
    highlights = []
    for word in _WORD.finditer(passage):
        terms = tokenize(normalize(word.group(0), lang))
        if terms and (set(stem_tokens(terms, lang)) | set(terms)) & wanted:
            highlights.append((word.start(), word.end()))
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix)
    return Snippet(prefix + passage + suffix, tuple((a + shift, b + shift) for a, b in highlights))


def render_marked(snippet: Snippet, before: str, after: str, escape=lambda s: s) -> str:
    """The snippet with each highlight wrapped in before/after; escape() is applied to the text pieces."""
    out, pos = [], 0
    for start, end in snippet.highlights:
        out.append(escape(snippet.text[pos:start]))
        out.append(before + escape(snippet.text[start:end]) + after)
        pos = end
    out.append(escape(snippet.text[pos:]))
    return "".join(out)
