"""Normalisation, tokenising and stemming per language."""

import pytest
import Stemmer

from energywatch import analysis
from energywatch.analysis import analyze, candidate_languages, normalize, stem_tokens, tokenize


@pytest.mark.parametrize("lang,a,b", [
    ("ru", "энергетической", "энергетическая"),
    ("ru", "Азербайджана", "Азербайджан"),
    ("ar", "الطاقة", "طاقة"),
    ("ar", "الطّاقــة", "الطاقة"),          # shadda and tatweel
    ("ar", "أمن", "امن"),                   # alef with hamza
    ("en", "pipelines", "pipeline"),
    ("de", "Energieversorgung", "energieversorgungen"),
    ("tr", "güvenliği", "güvenlik"),
    ("fr", "énergétiques", "énergétique"),
    ("es", "energéticas", "energética"),
    ("pl", "energetycznego", "energetyczny"),
    ("uk", "газопроводу", "газопровід"),    # no Snowball stemmer: same 6-letter prefix
    ("az", "enerjisi", "enerji"),
])
def test_inflected_forms_meet(lang: str, a: str, b: str) -> None:
    assert analyze(a, lang) == analyze(b, lang)


def test_normalisation() -> None:
    assert normalize("Ёлка", "ru") == "елка"
    assert normalize("ISPARTA İzmir", "tr") == "ısparta izmir"
    assert normalize("ISTANBUL", "en") == "istanbul"
    assert tokenize(normalize("soft\u00adhyphen l'énergie Türkiye'nin Nord-Stream")) == [
        "softhyphen", "l", "énergie", "türkiye", "nin", "nord", "stream"]


def test_candidate_languages_by_script() -> None:
    assert candidate_languages("газ")[0] == "ru" and "uk" in candidate_languages("газ")
    assert candidate_languages("طاقة")[0] == "ar"
    assert "en" in candidate_languages("gas") and "ru" not in candidate_languages("gas")


def test_stem_memo_agrees_with_snowball_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    words = "pipelines attacked the pipeline attacks on grids and gas pipelines".split()
    expected = Stemmer.Stemmer("english").stemWords(words)
    assert stem_tokens(words, "en") == expected
    assert stem_tokens(words, "en") == expected  # second time from the memo
    monkeypatch.setattr(analysis, "_STEM_MEMO_LIMIT", 3)
    stem_tokens(["refineries", "terminals", "substations", "reactors"], "en")
    assert stem_tokens(["terminals"], "en") == ["termin"] and len(analysis._stem_memo["en"]) <= 4
