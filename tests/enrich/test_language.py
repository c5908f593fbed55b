"""Language identification on the labelled dev set (quality gate) and on short or mixed input."""

from __future__ import annotations

import pytest

from conftest import BASELINE, shared_path
from energywatch.config import Settings
from energywatch.enrich.language import detect_language
from energywatch.evaluation import read_labelled


@pytest.mark.corpus
def test_dev_set_language_gate() -> None:
    # the pipeline reads only a sample of each text (Settings.language_sample_chars): it must not cost accuracy
    settings = Settings()
    items = read_labelled(shared_path("eval", "relevance_dev.jsonl"))
    wrong = [(i.id, i.lang, got) for i in items
             if (got := detect_language(i.title, i.text, languages=settings.languages,
                                        sample_chars=settings.language_sample_chars)[0]) != i.lang]
    accuracy = 1 - len(wrong) / len(items)
    print(f"\nlanguage accuracy {accuracy:.3f} on {len(items)} texts; wrong: {wrong}")
    assert accuracy >= BASELINE["language_dev"]["accuracy"], wrong


def test_short_text_falls_back_to_the_hint() -> None:
    assert detect_language("", "Газ", languages=("ru", "uk"), hint="uk") == ("uk", None)
    lang, confidence = detect_language("Газопровод", "Атака на газопровод в Азербайджане. " * 3,
                                       languages=("ru", "uk", "en"))
    assert lang == "ru" and confidence and confidence > 0.5
