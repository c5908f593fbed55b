"""Enrichment: language, relevance, entities, near-duplicates. `enrich()` runs the text-only part."""

from __future__ import annotations

from dataclasses import dataclass

from energywatch.enrich.dedup import Signature, signature_from_tokens
from energywatch.enrich.entities import collect_entities
from energywatch.enrich.matcher import analyse_text
from energywatch.enrich.profile import build_matcher, load_profile, term_languages
from energywatch.enrich.relevance import Assessment, assess
from energywatch.models import Entities, Relevance


@dataclass(frozen=True)
class Enrichment:
    """What enrichment adds to a document."""

    relevance: Relevance
    entities: Entities
    assessment: Assessment
    signature: Signature
    index_terms: tuple[str, str] | None = None  # (title, text) stems, when analysed in the text's own language


def enrich(title: str, text: str, language: str | None, *, profile_path: str | None = None) -> Enrichment:
    """Relevance, entities and the near-duplicate signature of one text (language detection excluded)."""
    profile = load_profile(profile_path)
    analysis_lang, term_langs = term_languages(profile, language, title + " " + text[:2000])
    matcher = build_matcher(profile_path, analysis_lang, term_langs)
    title_sentence, sentences = analyse_text(title, text, analysis_lang)
    hits = matcher.match([title_sentence], sentence_offset=-1) + matcher.match(sentences)
    assessment = assess(profile, title_sentence, sentences, hits)
    body = [token for sentence in sentences for token in sentence.norm]
    terms = None
    if analysis_lang == language:
        terms = (" ".join(title_sentence.stems), " ".join(s for sentence in sentences for s in sentence.stems))
    return Enrichment(relevance=assessment.relevance, entities=collect_entities(hits), assessment=assessment,
                      signature=signature_from_tokens(title_sentence.norm, body), index_terms=terms)
