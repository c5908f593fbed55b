"""Parse a user's search text into words, phrases, exclusions and prefixes, shared by every backend."""

from __future__ import annotations

import re
from dataclasses import dataclass

from energywatch.analysis import normalize, tokenize
from energywatch.errors import ConfigError

_PARTS = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')


@dataclass(frozen=True)
class ParsedQuery:
    """A search text split into parts; words are normalised tokens, not yet stemmed."""

    words: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()
    excluded: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    # each phrase as the user wrote it: a backend that analyses text itself (Elasticsearch) must see
    # "Jupiter's" as its analyzer indexed it, not as our tokenizer splits it
    phrase_texts: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing positive is asked for."""
        return not (self.words or self.phrases or self.prefixes)


def parse_query(text: str) -> ParsedQuery:
    """Split search text: plain words (all required), "quoted phrases", -excluded words, prefix*."""
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    excluded: list[str] = []
    prefixes: list[str] = []
    phrase_texts: list[str] = []
    for match in _PARTS.finditer(text or ""):
        negated_phrase, phrase, negated, word = match.groups()
        if phrase is not None:
            tokens = tuple(tokenize(normalize(phrase)))
            if negated_phrase:
                excluded.extend(tokens)
            elif len(tokens) == 1:
                words.append(tokens[0])
            elif tokens:
                phrases.append(tokens)
                phrase_texts.append(phrase)
            continue
        is_prefix = word.endswith("*")
        word_tokens = tokenize(normalize(word))
        if not word_tokens:
            continue
        if negated:
            excluded.extend(word_tokens)
        elif is_prefix:
            words.extend(word_tokens[:-1])
            prefixes.append(word_tokens[-1])
        else:
            if len(word_tokens) > 1:
                phrases.append(tuple(word_tokens))  # "Nord-Stream" is one phrase, not two loose words
                phrase_texts.append(word)
            else:
                words.extend(word_tokens)
    return ParsedQuery(tuple(words), tuple(phrases), tuple(excluded), tuple(prefixes), tuple(phrase_texts))


def searchable(text: str) -> ParsedQuery:
    """parse_query, refusing a text whose every part was dropped (`"`, `*`, an emoji): it would
    otherwise read as the empty query and list the whole archive."""
    parsed = parse_query(text)
    if parsed.empty and not parsed.excluded and (text or "").strip():
        raise ConfigError(f"nothing to search for in {text.strip()[:80]!r}: a query needs words with letters or "
                          'digits ("phrase", -excluded, prefix*)')
    return parsed
