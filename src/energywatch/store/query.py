"""The search language, parsed once into a tree that every backend and the alert rules read alike.

    gas pipeline            both words (AND is implied; writing AND changes nothing)
    газ OR gas OR غاز       any of them (OR in capitals; a lower-case "or" is a word)
    "Nord Stream"           the phrase; Nord-Stream is the same phrase
    pipeline*               any word that starts so (matched against stems, so pipelines counts)
    -oil  NOT oil           leaves out what matches (beside something positive, or alone: all but those)
    (LNG OR gas) -price     parentheses group
    title:NATO  text:"..."  only in the title, only in the body; title:(gas OR oil) too

OR binds looser than AND: `a b OR c` means `(a AND b) OR c`, as in Lucene and SQLite FTS5.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from energywatch.analysis import analyze, normalize, stem_tokens, tokenize
from energywatch.errors import ConfigError

FIELDS = ("title", "text")
_FIELD = re.compile(r"(title|text):(?=[^\s)])", re.IGNORECASE)
_WORD = re.compile(r'[^\s()"]+')


@dataclass(frozen=True)
class Term:
    """A word (one token), a phrase (several) or a prefix, normalised but not stemmed."""

    tokens: tuple[str, ...]
    text: str  # as written: Elasticsearch analyses phrases itself ("Jupiter's" as its analyzer indexed it)
    prefix: bool = False
    field: str | None = None  # "title", "text" or None for both


@dataclass(frozen=True)
class All:
    """Every part matches (the Not parts must not)."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part matches."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The part must not match."""

    part: Node


Node = Term | All | AnyOf | Not


@dataclass(frozen=True)
class ParsedQuery:
    """A search text as a tree; None for the empty query."""

    node: Node | None = None

    @property
    def empty(self) -> bool:
        """True when nothing positive is asked for (the empty query, or exclusions only)."""
        return self.node is None or not list(_terms(self.node, positive=True))

    @property
    def exclusions_only(self) -> bool:
        """True for a query of exclusions alone (-gas): every document but those."""
        return self.node is not None and self.empty

    @property
    def exclusions(self) -> tuple[Node, ...]:
        """The excluded parts of an exclusions-only query."""
        node = self.node
        if isinstance(node, Not):
            return (node.part,)
        if isinstance(node, All) and self.exclusions_only:
            return tuple(p.part for p in node.parts if isinstance(p, Not))
        return ()

    def terms(self) -> list[Term]:
        """The positive terms, for highlighting."""
        return list(_terms(self.node, positive=True)) if self.node else []

    def words(self) -> list[str]:
        """Every token of the positive terms (highlighting, language guessing)."""
        return [t for term in self.terms() for t in term.tokens]

    def all_words(self) -> list[str]:
        """Every token, excluded ones too (language guessing for exclusions)."""
        return [t for term in _terms(self.node, positive=None) for t in term.tokens] if self.node else []


def _terms(node: Node, positive: bool | None, negated: bool = False) -> Iterator[Term]:
    if isinstance(node, Term):
        if positive is None or positive != negated:
            yield node
    elif isinstance(node, Not):
        yield from _terms(node.part, positive, not negated)
    else:
        for part in node.parts:
            yield from _terms(part, positive, negated)


def prefix_forms(prefix: str, lang: str | None) -> tuple[str, ...]:
    """What an indexed stem may start with to match `prefix*`: the prefix, or its stem.

    The index holds stems: `pipelines` is `pipelin`, which the prefix `pipeline` does not begin, but
    its stem does."""
    stem = (stem_tokens([prefix], lang) or [prefix])[0]
    if stem == prefix:
        return (prefix,)
    if prefix.startswith(stem):
        return (stem,)  # the stem only cut an ending: its prefix finds every form
    return (prefix, stem)


# ---------------------------------------------------------------------------------------------- lexer

@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "phrase", "open", "close", "or", "and", "not"
    text: str = ""
    negated: bool = False
    field: str | None = None
    at: int = 0


def _lex(text: str) -> Iterator[_Token]:
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if char == ")":
            yield _Token("close", at=i)
            i += 1
            continue
        start = i
        negated = char == "-" and i + 1 < n and not text[i + 1].isspace()
        if negated:
            i += 1
        field = None
        found = _FIELD.match(text, i)
        if found:
            field = found.group(1).lower()
            i = found.end()
        if i < n and text[i] == "(":
            yield _Token("open", negated=negated, field=field, at=start)
            i += 1
        elif i < n and text[i] == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end  # an unclosed quote runs to the end, as users mean it
            yield _Token("phrase", text[i + 1:end], negated, field, start)
            i = end + 1
        else:
            word = _WORD.match(text, i)
            if word is None:  # a lone "-" before ")" or a quote: nothing to search for
                i += 1
                continue
            value = word.group(0)
            i = word.end()
            if value in ("OR", "AND", "NOT") and not negated and field is None:
                yield _Token(value.lower(), at=start)
            else:
                yield _Token("word", value, negated, field, start)


# --------------------------------------------------------------------------------------------- parser

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(_lex(text))
        self.i = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def fail(self, what: str) -> ConfigError:
        return ConfigError(f"cannot read the search {self.text.strip()[:120]!r}: {what}")

    def parse(self) -> Node | None:
        node = self.any_of(None)
        extra = self.peek()
        if extra is not None:  # only a ")" stops any_of early
            raise self.fail(f"a ')' at character {extra.at + 1} closes no '(': remove it or add the '('")
        return node

    def any_of(self, field: str | None) -> Node | None:
        parts: list[Node | None] = []
        while True:
            written, node = self.all_of(field)
            token = self.peek()
            more = token is not None and token.kind == "or"
            if not written and (more or parts):  # nothing before this OR, or after the last one
                raise self.fail("OR needs something on each side, as in gas OR oil")
            parts.append(node)
            if not more:
                break
            self.i += 1
        kept = [p for p in parts if p is not None]  # a side of only dropped characters (an emoji) counts for nothing
        for part in kept if len(kept) > 1 else ():
            if _negative(part):
                raise self.fail("an exclusion cannot be one side of an OR (it would match nearly everything): "
                                "put it beside the group, as in (gas OR oil) -price")
        return _join(AnyOf, kept)

    def all_of(self, field: str | None) -> tuple[bool, Node | None]:
        parts: list[Node] = []
        written = False
        while (token := self.peek()) is not None and token.kind not in ("or", "close"):
            self.i += 1
            written = True
            if token.kind == "and":
                continue
            negated = False
            if token.kind == "not":
                token = self.peek()
                if token is None or token.kind in ("or", "close", "and", "not"):
                    raise self.fail("NOT needs something after it, as in gas NOT oil")
                self.i += 1
                negated = True
            node = self.unit(token, field)
            if node is None:
                continue
            if negated != token.negated:
                if _negative(node):
                    raise self.fail("an exclusion inside an exclusion: write what you want found instead")
                node = Not(node)
            parts.append(node)
        return written, _join(All, parts)

    def unit(self, token: _Token, field: str | None) -> Node | None:
        field = token.field or field
        if token.kind == "open":
            node = self.any_of(field)
            close = self.peek()
            if close is None or close.kind != "close":
                raise self.fail(f"the '(' at character {token.at + 1} is never closed: add a ')'")
            self.i += 1
            return node
        if token.kind == "phrase":
            tokens = tuple(tokenize(normalize(token.text)))
            return Term(tokens, token.text, field=field) if tokens else None
        prefix = token.text.endswith("*")
        tokens = tuple(tokenize(normalize(token.text)))
        if not tokens:
            return None
        if prefix:
            head = [Term((t,), t, field=field) for t in tokens[:-1]]
            return _join(All, [*head, Term((tokens[-1],), tokens[-1], prefix=True, field=field)])
        # Nord-Stream is one phrase, not two loose words
        return Term(tokens, token.text, field=field)


def _negative(node: Node) -> bool:
    return isinstance(node, Not) or isinstance(node, All) and all(isinstance(p, Not) for p in node.parts)


def _join(kind: type[All] | type[AnyOf], parts: list[Node]) -> Node | None:
    """One node of the parts: nested groups of the same kind flattened, a single part as itself."""
    flat: list[Node] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, kind) else (part,))
    flat = list(dict.fromkeys(flat))
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


def parse_query(text: str) -> ParsedQuery:
    """Parse search text into its tree (see the module's docstring for the language)."""
    return ParsedQuery(_Parser(text or "").parse())


def searchable(text: str) -> ParsedQuery:
    """parse_query, refusing a text whose every part was dropped (`"`, `*`, an emoji): it would
    otherwise read as the empty query and list the whole archive."""
    parsed = parse_query(text)
    if parsed.node is None and (text or "").strip():
        raise ConfigError(f"nothing to search for in {text.strip()[:80]!r}: a query needs words with letters or "
                          'digits ("phrase", -excluded, prefix*, a OR b)')
    return parsed


def matches_text(parsed: ParsedQuery, title: str, text: str, lang: str | None) -> bool:
    """Whether a document's title and text satisfy the query, with the stores' meaning (alert rules use it)."""
    if parsed.node is None:
        return True
    title_terms = analyze(title, lang)
    text_terms = analyze(text, lang)
    fields = {"title": _Field(title_terms), "text": _Field(text_terms), None: _Field(title_terms + ["\n"] + text_terms)}
    return _holds(parsed.node, fields, lang)


class _Field:
    """One field's stems, as a set for words and a joined string for phrases."""

    def __init__(self, terms: list[str]) -> None:
        self.present = set(terms)
        self.joined = f" {' '.join(terms)} "


def _holds(node: Node, fields: dict[str | None, _Field], lang: str | None) -> bool:
    if isinstance(node, Term):
        field = fields[node.field]
        if node.prefix:
            forms = prefix_forms(node.tokens[0], lang)
            return any(t.startswith(forms) for t in field.present)
        stems = stem_tokens(list(node.tokens), lang)
        return stems[0] in field.present if len(stems) == 1 else f" {' '.join(stems)} " in field.joined
    if isinstance(node, Not):
        return not _holds(node.part, fields, lang)
    if isinstance(node, AnyOf):
        return any(_holds(p, fields, lang) for p in node.parts)
    return all(_holds(p, fields, lang) for p in node.parts)
