"""Text analysis shared by search and relevance: normalise, tokenise, stem per language."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import cast

import Stemmer

# ISO 639-1 → Snowball algorithm (PyStemmer). Languages missing here fall back to prefix stems.
SNOWBALL = {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german", "el": "greek",
    "en": "english", "es": "spanish", "et": "estonian", "eu": "basque", "fa": "persian", "fi": "finnish",
    "fr": "french", "ga": "irish", "hi": "hindi", "hu": "hungarian", "hy": "armenian", "id": "indonesian",
    "it": "italian", "lt": "lithuanian", "ne": "nepali", "nl": "dutch", "no": "norwegian", "nb": "norwegian",
    "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian", "sv": "swedish",
    "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}
# Without a stemmer, words are cut to this many characters: crude, but the same cut is applied to
# the index and to queries, so inflected forms of one stem meet (газопровід / газопроводу → газопр).
PREFIX_CHARS = 6

SCRIPT_LANGUAGES = {
    "cyrillic": ("ru", "uk", "bg", "sr", "kk", "be", "mk"),
    "arabic": ("ar", "fa", "ur"),
    "latin": ("en", "de", "fr", "es", "tr", "az", "pl", "it", "pt", "nl", "ro", "cs", "sk", "sv", "fi",
              "no", "da", "hu", "lt", "lv", "et", "hr", "id"),
    "greek": ("el",),
    "devanagari": ("hi", "ne"),
    "georgian": ("ka",),
    "hebrew": ("he", "yi"),
    "armenian": ("hy",),
}

_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_UNIFY = {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ё": "е", "Ё": "Е"}
# a regex scan costs nothing where none of these occur; str.translate with a dict is per-character Python
_UNIFY_RE = re.compile("[" + "".join(_UNIFY) + "]")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")
# word characters plus the combining marks of Indic scripts, which \w alone would split on.
# Apostrophes split words: French/Italian elision (l'énergie → l, énergie) and Turkish suffixes
# after proper nouns (Türkiye'nin → türkiye, nin) both want that.
_TOKEN = re.compile(r"[^\W_][\w\u0900-\u0dff\u0300-\u036f]*")


def normalize(text: str, lang: str | None = None) -> str:
    """Case-fold and unify spelling variants that should match (Arabic alef/harakat, ё, Turkish I)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        text = _INVISIBLE.sub("", text)
    text = _UNIFY_RE.sub(lambda m: _UNIFY[m.group(0)], _ARABIC_MARKS.sub("", text))
    if lang in {"tr", "az"}:
        text = text.replace("I", "ı")
    text = text.replace("İ", "i")
    return text.casefold()


def tokenize(normalized: str) -> list[str]:
    """Word tokens of already-normalised text."""
    return _TOKEN.findall(normalized)


# Stems already computed, per language. PyStemmer's own cache costs more than it saves (a hit still
# crosses into C and back; past its size it purges), while a dict look-up per token through map() is
# about a third of a Snowball call, and news vocabulary repeats: 100k distinct words in 824k tokens.
_STEM_MEMO_LIMIT = 200_000  # entries per language, ~30 MB at most; cleared, not evicted, when full
_stem_memo: dict[str, dict[str, str]] = {}


@lru_cache(maxsize=64)
def _stemmer(lang: str) -> Stemmer.Stemmer | None:
    algorithm = SNOWBALL.get(lang)
    return Stemmer.Stemmer(algorithm, 0) if algorithm else None


def stem_tokens(tokens: list[str], lang: str | None) -> list[str]:
    """Stems of tokens in one language (Snowball, or a fixed-length prefix where none exists)."""
    stemmer = _stemmer(lang) if lang else None
    if stemmer is None:
        return [t[:PREFIX_CHARS] for t in tokens]
    memo = _stem_memo.get(lang)  # type: ignore[arg-type]
    if memo is None or len(memo) > _STEM_MEMO_LIMIT:
        memo = _stem_memo[lang] = {}  # type: ignore[index]
    found = list(map(memo.get, tokens))
    if None not in found:
        return cast(list[str], found)  # the common case: every stem memoised already
    missing = list({t for t, s in zip(tokens, found) if s is None})
    memo.update(zip(missing, stemmer.stemWords(missing)))
    return list(map(memo.__getitem__, tokens))


def analyze(text: str, lang: str | None) -> list[str]:
    """normalize → tokenize → stem: the terms stored in the index and matched by relevance."""
    return stem_tokens(tokenize(normalize(text, lang)), lang)


def has_stemmer(lang: str | None) -> bool:
    """Whether Snowball covers a language."""
    return bool(lang) and lang in SNOWBALL


def script_of(token: str) -> str | None:
    """The script of a token's first letter, by Unicode character name."""
    for char in token:
        if char.isalpha():
            name = unicodedata.name(char, "")
            for script in SCRIPT_LANGUAGES:
                if name.startswith(script.upper()):
                    return script
            return None
    return None


def candidate_languages(text: str) -> tuple[str, ...]:
    """Languages a query could be in, judged by the scripts of its words."""
    langs: list[str] = []
    for token in tokenize(normalize(text)):
        for lang in SCRIPT_LANGUAGES.get(script_of(token) or "", ()):
            if lang not in langs:
                langs.append(lang)
    return tuple(langs)


def unique(values: Iterable[str]) -> list[str]:
    """Values in first-seen order without repeats."""
    return list(dict.fromkeys(values))
