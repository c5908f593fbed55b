"""Multilingual phrase matching over normalised, stemmed text: the engine behind relevance and entities."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from energywatch.analysis import has_stemmer, normalize, stem_tokens, tokenize

_SENTENCE = re.compile(r"[^.!?؟。\n]+[.!?؟。]*")
_ARABIC_PROCLITICS = ("و", "ف", "ب", "ل", "ك")
_PREFIX_INDEX = 3
_NONE: list = []  # shared empty default for index look-ups; never mutated


@dataclass(frozen=True)
class Pattern:
    """One term compiled for one language: a sequence of token tests."""

    label: str                    # what it stands for (concept id, entity id)
    term: str                     # the term as written in the profile
    steps: tuple[tuple[str, str, int], ...]  # (kind, value, max token length or 0); kind: stem | prefix | norm
    case_sensitive: bool = False  # first token must start upper-case in the original (Latin names)
    negative: bool = False        # an "except" phrase: masks the label where it matches


@dataclass(frozen=True)
class Hit:
    """Where a pattern matched: sentence index (-1 for the title) and token span inside it."""

    pattern: Pattern
    sentence: int
    start: int
    end: int


@dataclass
class Sentence:
    """One sentence of a document, analysed: normalised tokens, their stems, Arabic variants."""

    text: str
    norm: list[str]
    stems: list[str]
    alt: dict[int, tuple[str, str]]  # position → (norm, stem) without an Arabic proclitic
    _upper: list[bool] | None = None

    def upper(self, pos: int) -> bool:
        """Whether the original token at pos starts with a capital (computed on first need)."""
        if self._upper is None:
            original = tokenize(unicodedata.normalize("NFKC", self.text))
            self._upper = ([t[:1].isupper() for t in original] if len(original) == len(self.norm)
                           else [True] * len(self.norm))
        return self._upper[pos]

    def has(self, pos: int, kind: str, value: str) -> bool:
        """Whether the token at pos has this stem or normalised form (or its Arabic variant has)."""
        if (self.stems[pos] if kind == "stem" else self.norm[pos]) == value:
            return True
        alt = self.alt.get(pos)
        return alt is not None and alt[0 if kind == "norm" else 1] == value


def split_sentences(text: str) -> list[str]:
    """Sentences (or lines) of a text, trimmed, empty ones dropped."""
    return [m.group(0).strip() for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def _arabic_variants(norm_tokens: list[str], lang: str | None) -> dict[int, tuple[str, str]]:
    # Arabic glues "and", "for", "with", "as", "so" to the next word: لأوكرانيا = for Ukraine
    variants: dict[int, str] = {}
    for i, tok in enumerate(norm_tokens):
        if len(tok) >= 5 and tok[0] in _ARABIC_PROCLITICS and not tok.startswith("ال"):
            rest = tok[1:]
            if tok[0] == "ل" and rest.startswith("ل"):
                rest = "ا" + rest  # للطاقة = ل + الطاقة
            variants[i] = rest
    if not variants:
        return {}
    stems = stem_tokens(list(variants.values()), lang)
    return {i: (rest, stem) for (i, rest), stem in zip(variants.items(), stems)}


def analyse_sentence(text: str, lang: str | None) -> Sentence:
    """Tokens of a sentence with every key a pattern step may test."""
    norm = tokenize(normalize(text, lang))
    alt = _arabic_variants(norm, lang) if lang == "ar" else {}
    return Sentence(text=text, norm=norm, stems=stem_tokens(norm, lang), alt=alt)


def compile_term(label: str, term: str, lang: str | None, *, exact: bool = False,
                 case_sensitive: bool = False, negative: bool = False) -> Pattern | None:
    """Compile a profile term for a language; `exact` compares normalised tokens, not stems."""
    is_prefix = term.rstrip().endswith("*")
    words = tokenize(normalize(term.rstrip().rstrip("*"), lang))
    if not words:
        return None
    steps: list[tuple[str, str, int]] = []
    stems = stem_tokens(words, lang)
    stemless = not has_stemmer(lang)
    for i, (word, stem) in enumerate(zip(words, stems)):
        if is_prefix and i == len(words) - 1:
            steps.append(("prefix", word, 0))
        elif exact:
            steps.append(("norm", word, 0))
        elif stemless or len(stem) < 3 <= len(word):
            # a stem of one or two letters matches a whole vocabulary: Turkish ordu (army) stems to
            # "or", as does orta (middle); such a word is matched by its careful prefix instead
            steps.append(_careful_prefix(word))
        else:
            steps.append(("stem", stem, 0))
    return Pattern(label=label, term=term, steps=tuple(steps), case_sensitive=case_sensitive, negative=negative)


def _careful_prefix(word: str) -> tuple[str, str, int]:
    """Where no stemmer exists: the word less its last two letters, and not much longer.

    Ukrainian атака matches атаки, атак and атакували, not атаман; short words barely stretch,
    so газ matches газу and газом, not газета.
    """
    if len(word) <= 4:
        return ("prefix", word, len(word) + 2)
    return ("prefix", word[: max(4, len(word) - 2)], len(word) + 6)


@dataclass
class Matcher:
    """A set of patterns indexed by their first step, matched sentence by sentence."""

    by_stem: dict[str, list[Pattern]] = field(default_factory=lambda: defaultdict(list))
    by_norm: dict[str, list[Pattern]] = field(default_factory=lambda: defaultdict(list))
    by_prefix: dict[str, list[Pattern]] = field(default_factory=lambda: defaultdict(list))
    _seen: set[tuple[str, tuple[tuple[str, str, int], ...], bool, bool]] = field(default_factory=set)

    def add(self, pattern: Pattern | None) -> None:
        """Index one pattern (a second pattern with the same label and steps is dropped)."""
        if pattern is None:
            return
        key = (pattern.label, pattern.steps, pattern.case_sensitive, pattern.negative)
        if key in self._seen:
            return
        self._seen.add(key)
        kind, value, _ = pattern.steps[0]
        index = {"stem": self.by_stem, "norm": self.by_norm}.get(kind)
        if index is None:
            self.by_prefix[value[:_PREFIX_INDEX]].append(pattern)
        else:
            index[value].append(pattern)

    def match(self, sentences: Sequence[Sentence], *, sentence_offset: int = 0) -> list[Hit]:
        """Every non-overlapping hit, longest pattern first at each position; negatives mask their label."""
        hits: list[Hit] = []
        by_stem, by_norm, by_prefix = self.by_stem, self.by_norm, self.by_prefix
        for index, sentence in enumerate(sentences):
            found: list[Hit] = []
            alt = sentence.alt
            for pos, (norm, stem) in enumerate(zip(sentence.norm, sentence.stems)):
                g_stem, g_norm, g_prefix = by_stem.get(stem), by_norm.get(norm), by_prefix.get(norm[:_PREFIX_INDEX])
                # most tokens start no pattern: leave them before building anything
                if g_stem is None and g_norm is None and g_prefix is None and pos not in alt:
                    continue
                groups = [g_stem, g_norm, g_prefix]
                if pos in alt:
                    a_norm, a_stem = alt[pos]
                    groups += [by_stem.get(a_stem), by_norm.get(a_norm), by_prefix.get(a_norm[:_PREFIX_INDEX])]
                for group in groups:
                    if not group:
                        continue
                    for pattern in group:
                        end = _match_at(pattern, sentence, pos)
                        if end is not None:
                            found.append(Hit(pattern, index + sentence_offset, pos, end))
            if found:
                hits.extend(_resolve(found))
        return hits


def _match_at(pattern: Pattern, sentence: Sentence, pos: int) -> int | None:
    if pos + len(pattern.steps) > len(sentence.norm):
        return None
    if pattern.case_sensitive and not sentence.upper(pos):
        return None
    for offset, (kind, value, max_len) in enumerate(pattern.steps):
        i = pos + offset
        if kind == "prefix":
            token = sentence.norm[i]
            if not token.startswith(value) or (max_len and len(token) > max_len):
                alt = sentence.alt.get(i)
                if alt is None or not alt[0].startswith(value):
                    return None
        elif not sentence.has(i, kind, value):
            return None
    return pos + len(pattern.steps)


def _resolve(found: list[Hit]) -> list[Hit]:
    """Drop hits masked by an except-phrase of the same label, overlaps within a label, and concept hits
    inside a longer concept phrase."""
    masks: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for hit in found:
        if hit.pattern.negative:
            masks[hit.pattern.label].append((hit.start, hit.end))
    kept: list[Hit] = []
    taken: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for hit in sorted((h for h in found if not h.pattern.negative), key=lambda h: (h.start, -(h.end - h.start))):
        label = hit.pattern.label
        if any(s < hit.end and hit.start < e for s, e in masks[label]):
            continue
        if any(s < hit.end and hit.start < e for s, e in taken[label]):
            continue
        taken[label].append((hit.start, hit.end))
        kept.append(hit)
    # a concept phrase swallows the concepts of its own words: "energy security" is one piece of
    # (policy) evidence, not also "energy" and "security"; "nuclear power plant" is not a power plant too
    spans = [(h.start, h.end, h.pattern.label) for h in kept if h.pattern.label.startswith("concept:")]
    return [h for h in kept if not h.pattern.label.startswith("concept:") or not any(
        label != h.pattern.label and s <= h.start and h.end <= e and e - s > h.end - h.start for s, e, label in spans)]


def analyse_text(title: str, text: str, lang: str | None) -> tuple[Sentence, list[Sentence]]:
    """The title and the sentences of a text, analysed for matching.

    Normalising and stemming run once over the whole text, not once per sentence: on a
    1,000-word article that halves the cost of enrichment.
    """
    originals = [title.replace("\n", " "), *split_sentences(text)]
    normalized = normalize("\n".join(originals), lang).split("\n")
    if len(normalized) != len(originals):  # normalisation never adds lines; stay safe if it did
        sentences = [analyse_sentence(s, lang) for s in originals]
        return sentences[0], sentences[1:]
    token_lists = [tokenize(n) for n in normalized]
    stems = stem_tokens([t for tokens in token_lists for t in tokens], lang)
    analysed: list[Sentence] = []
    offset = 0
    for original, tokens in zip(originals, token_lists):
        own = stems[offset:offset + len(tokens)]
        offset += len(tokens)
        alt = _arabic_variants(tokens, lang) if lang == "ar" else {}
        analysed.append(Sentence(text=original, norm=tokens, stems=own, alt=alt))
    return analysed[0], analysed[1:]


def labels(hits: Iterable[Hit]) -> list[str]:
    """Distinct labels of hits, in first-seen order."""
    return list(dict.fromkeys(h.pattern.label for h in hits))
