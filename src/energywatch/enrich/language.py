"""Language identification on a sample of the text (py3langid, restricted to the configured languages)."""

from __future__ import annotations

import copy
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

_MIN_CHARS = 20


@lru_cache(maxsize=1)
def load_model() -> LanguageIdentifier:
    """py3langid's model with all its languages, loaded once per process (~0.7 s of CPU)."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    # a shallow copy shares the full model's arrays: set_languages builds new ones for the subset
    identifier = copy.copy(load_model())
    known = set(identifier.labels)
    wanted = [lang for lang in languages if lang in known]
    if wanted:
        identifier.set_languages(wanted)
    return identifier


def sample_text(title: str, text: str, sample_chars: int) -> str:
    """Title plus the start and the middle of the text: enough to classify, cheap on long articles."""
    if len(text) <= sample_chars:
        return f"{title}\n{text}"
    half = sample_chars // 2
    middle = len(text) // 2
    return f"{title}\n{text[:half]}\n{text[middle:middle + half]}"


def detect_language(title: str, text: str, *, languages: tuple[str, ...], hint: str | None = None,
                    sample_chars: int = 3000) -> tuple[str | None, float | None]:
    """ISO 639-1 code and confidence of the text's language; the hint only when the text is too short."""
    sample = sample_text(title, text, sample_chars)
    if len(sample.strip()) < _MIN_CHARS:
        return (hint, None) if hint else (None, None)
    lang, confidence = _identifier(tuple(languages)).classify(sample)
    confidence = float(confidence)
    if confidence < 0.5 and hint:
        return hint, confidence
    return str(lang), round(confidence, 4)
