"""Load the concept profile (YAML, package data or a user's file) and compile it into matchers."""

from __future__ import annotations

import gettext
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from energywatch.analysis import SCRIPT_LANGUAGES, script_of
from energywatch.config import read_yaml
from energywatch.enrich.matcher import Matcher, compile_term
from energywatch.errors import ConfigError

Terms = dict[str, list[str]]
# names in these scripts must be capitalised to count: «Того» is Togo, «того» is "of that"
_CASED = {"latin", "cyrillic", "greek"}
# language-neutral names shorter than this match only as written: stemmed, "Gaza" would become "gaz"
_MIN_STEMMED_NAME = 6
# language-neutral concept terms shorter than this are matched only as written (acronyms: сво, бпла)
_MIN_STEMMED_TERM = 5


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Concept(_Model):
    id: str
    # energy | security | both: the two axes of relevance; policy: energy talk in a policy frame
    # ("energy security" as a buzzword), energy evidence that is no security evidence; context: a
    # domain that makes energy and security words mean something else (sport, health, culture);
    # market: prices and trading, where a conflict is often named only as a cause in passing
    axis: Literal["energy", "security", "both", "policy", "context", "market"]
    weight: float = Field(gt=0, le=5)
    # a threat, attack, coercion or conflict cue: with energy evidence in the same or the next sentence
    # it makes the security frame that "energy security" as a policy word lacks
    threat: bool = False
    themes: list[str] = []
    terms: Terms
    # "except" is a Python keyword, so the field is aliased
    exceptions: Terms = Field(default_factory=dict, alias="except")


class Named(_Model):
    id: str
    names: Terms
    themes: list[str] = []


class Scoring(_Model):
    bias: float
    weights: dict[str, float]
    core_threshold: float = Field(gt=0, lt=1)
    related_min_energy: float = Field(ge=0)
    related_min_security: float = Field(ge=0)


class Profile(_Model):
    """The whole profile file, validated."""

    version: int
    languages: list[str]
    scoring: Scoring
    concepts: list[Concept]
    organizations: list[Named] = []
    infrastructure: list[Named] = []
    people: list[Named] = []
    country_aliases: dict[str, Terms] = {}

    def concept(self, concept_id: str) -> Concept:
        """A concept by id."""
        return next(c for c in self.concepts if c.id == concept_id)


DEFAULT_PROFILE = files("energywatch.enrich") / "data" / "profile.yaml"


@lru_cache(maxsize=4)
def load_profile(path: str | None = None) -> Profile:
    """Read and validate a profile; the packaged one when path is None."""
    source = Path(path) if path else DEFAULT_PROFILE
    raw = read_yaml(source, "concept profile")
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"concept profile {source} is invalid: {exc}") from exc


def term_languages(profile: Profile, lang: str | None, sample: str) -> tuple[str | None, tuple[str, ...]]:
    """(analysis language, profile languages whose terms apply) for a document.

    A profile language is matched with its own stemmer. Another language degrades gracefully:
    the terms of the profile languages written in the same script, all cut to prefixes.
    """
    if lang in profile.languages:
        return lang, (lang,)
    scripts = {script_of(tok) for tok in sample.split()[:200]} - {None}
    fallback = tuple(lang for lang in profile.languages
                     if any(lang in SCRIPT_LANGUAGES.get(s or "", ()) for s in scripts))
    return None, fallback


@lru_cache(maxsize=64)
def _localized_country_names(lang: str) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    try:
        translate = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang]).gettext
    except OSError:
        translate = None
    for country in pycountry.countries:
        english = {country.name, getattr(country, "common_name", country.name)}
        found = set(english) if lang == "en" else {translate(n) for n in english} if translate else set()
        names[country.alpha_2] = [n for n in found if n and "," not in n and len(n) >= 4]
    return names


@lru_cache(maxsize=32)
def build_matcher(path: str | None, analysis_lang: str | None, term_langs: tuple[str, ...]) -> Matcher:
    """All patterns of a profile (concepts, countries, organisations, infrastructure, people) for one language."""
    profile = load_profile(path)
    matcher = Matcher()
    for concept in profile.concepts:
        for lang in ("any", *term_langs):
            for term in concept.terms.get(lang, []):
                # a capitalised term is a name (a club, a company): matched as written, never stemmed
                # into its word family (Neftçi is a club; its stem neft- is oil)
                proper = term[:1].isupper()
                matcher.add(compile_term(f"concept:{concept.id}", term, analysis_lang, exact=lang == "any" or proper,
                                         case_sensitive=proper and script_of(term) in _CASED))
                # a short acronym stemmed or cut to a prefix matches whole word families in languages
                # without a stemmer: Ukrainian сво- is "own" (своїх), not the war's СВО
                if lang == "any" and not proper and len(term) >= _MIN_STEMMED_TERM:
                    matcher.add(compile_term(f"concept:{concept.id}", term, analysis_lang))
            for term in concept.exceptions.get(lang, []):
                matcher.add(compile_term(f"concept:{concept.id}", term, analysis_lang, negative=True,
                                         exact=term[:1].isupper()))
    for kind, entries in (("org", profile.organizations), ("infra", profile.infrastructure), ("person", profile.people)):
        for entry in entries:
            for lang in ("any", *term_langs):
                for name in entry.names.get(lang, []):
                    # a name starts upper-case where the script has case: the Italian `nato` ("born")
                    # is not NATO, which Italian writes `Nato` or `NATO`
                    cased = script_of(name) in _CASED
                    matcher.add(compile_term(f"{kind}:{entry.id}", name, analysis_lang, exact=lang == "any",
                                             case_sensitive=cased))
                    if lang == "any" and not name.isupper() and len(name) >= _MIN_STEMMED_NAME:
                        matcher.add(compile_term(f"{kind}:{entry.id}", name, analysis_lang, case_sensitive=cased))
    for lang in term_langs:
        for code, names in _localized_country_names(lang).items():
            for name in names:
                matcher.add(compile_term(f"country:{code}", name, analysis_lang,
                                         case_sensitive=script_of(name) in _CASED))
    for code, terms in profile.country_aliases.items():
        for lang in ("any", *term_langs):
            for name in terms.get(lang, []):
                latin = script_of(name) in _CASED
                matcher.add(compile_term(f"country:{code}", name, analysis_lang, exact=name.isupper(), case_sensitive=latin))
                if lang == "any" and not name.isupper() and len(name) >= _MIN_STEMMED_NAME:
                    matcher.add(compile_term(f"country:{code}", name, analysis_lang, case_sensitive=latin))
    return matcher
