"""Elasticsearch mappings as elasticsearch.dsl classes, the index template and per-language fields."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from elasticsearch.dsl import Date, Float, InnerDoc, Keyword, MetaField, Object, Text
from elasticsearch.dsl import Document as DslDocument

# ISO 639-1 → Elasticsearch's built-in language analyzer. Languages without one (Ukrainian,
# Azerbaijani, Polish and others need plugins) share the "std" fields with the standard analyzer.
ANALYZERS = {
    "ar": "arabic", "bg": "bulgarian", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german",
    "el": "greek", "en": "english", "es": "spanish", "eu": "basque", "fa": "persian", "fi": "finnish",
    "fr": "french", "ga": "irish", "hi": "hindi", "hu": "hungarian", "hy": "armenian", "id": "indonesian",
    "it": "italian", "lt": "lithuanian", "lv": "latvian", "nl": "dutch", "no": "norwegian", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sv": "swedish", "th": "thai", "tr": "turkish",
}
STANDARD = "std"
# Lucene refuses a term over 32,766 bytes, and with it the whole document; longer keyword values (a
# 40 kB GUID, a feed's run-away author list) are kept in _source and left out of the index instead
MAX_KEYWORD = 8191


def _keyword() -> Keyword:
    """Every keyword field of energywatch's indices: one too long to index is kept, not refused."""
    return Keyword(ignore_above=MAX_KEYWORD)
TEXT_SUFFIXES = (*sorted(set(ANALYZERS)), STANDARD)


def text_suffix(language: str | None) -> str:
    """The suffix of the title_*/text_* fields that hold a document in this language."""
    return language if language in ANALYZERS else STANDARD


class RelevanceDoc(InnerDoc):
    score = Float()
    label = _keyword()
    themes = _keyword()
    # evidence is kept for display and `explain`, never searched: stored in _source, not indexed
    evidence = Object(enabled=False)


class EntitiesDoc(InnerDoc):
    countries = _keyword()
    organizations = _keyword()
    infrastructure = _keyword()
    people = _keyword()


def _language_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for suffix in TEXT_SUFFIXES:
        analyzer = ANALYZERS.get(suffix, "standard")
        fields[f"title_{suffix}"] = Text(analyzer=analyzer)
        # offsets in the postings serve the (default) unified highlighter as term vectors did, cheaper:
        # with term vectors the index was 29% larger and bulk writes 15-20% slower (store_compare.py)
        fields[f"text_{suffix}"] = Text(analyzer=analyzer, index_options="offsets")
    return fields


class _DocumentBase(DslDocument):
    id = _keyword()
    url = Keyword(index=False)
    canonical_url = _keyword()
    domain = _keyword()
    feed_id = _keyword()
    source = _keyword()
    source_country = _keyword()
    guid = _keyword()
    summary = Text(index=False)
    authors = _keyword()
    published_at = Date()
    # published_at, else fetched_at: a date every document has, for Kibana's time field
    dated_at = Date()
    date_source = _keyword()
    fetched_at = Date()
    indexed_at = Date()
    language = _keyword()
    language_confidence = Float()
    extraction = _keyword()
    warnings = Keyword(index=False)
    relevance = Object(RelevanceDoc)
    entities = Object(EntitiesDoc)
    story_id = _keyword()
    duplicate_of = _keyword()
    content_hash = _keyword()
    lsh_bands = _keyword()
    categories = _keyword()
    image_url = Keyword(index=False)
    declared_language = _keyword()

    class Meta:
        # a typo in a field name must fail loudly, not create a new unmapped field
        dynamic = MetaField("strict")


# one text field pair per analyzer; a document fills only the pair of its language
DocumentMapping = type("DocumentMapping", (_DocumentBase,), _language_fields())


class FeedStateMapping(DslDocument):
    feed_id = _keyword()
    updated_at = Date()
    state = Object(enabled=False)


class AlertMapping(DslDocument):
    # a sort key: Elasticsearch 8+ refuses to sort on _id (no fielddata for it by default)
    id = _keyword()
    rule = _keyword()
    channel = _keyword()
    status = _keyword()
    story_id = _keyword()
    created_at = Date()
    due_at = Date()
    next_attempt_at = Date()
    sent_at = Date()

    class Meta:
        # the rest of an alert (title, evidence, …) is kept in _source for delivery, not indexed
        dynamic = MetaField(False)


class SavedSearchMapping(DslDocument):
    name = _keyword()
    created_at = Date()
    data = Object(enabled=False)  # read back whole, never searched on


class LeaseMapping(DslDocument):
    owner = _keyword()
    until = Date()


class SeenMapping(DslDocument):
    feed_id = _keyword()
    guid = _keyword()
    doc_id = _keyword()


def document_mappings(analyzers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The documents mapping body; `analyzers` (field suffix → analyzer) replaces the built-in choice."""
    # a deep copy: to_dict() hands out dicts that the next call writes over
    mapping = copy.deepcopy(DocumentMapping._doc_type.mapping.to_dict())  # type: ignore[attr-defined]
    for suffix, analyzer in (analyzers or {}).items():
        for field in (f"title_{suffix}", f"text_{suffix}"):
            mapping["properties"][field]["analyzer"] = analyzer
    return mapping


def analyzer_summary(analyzers: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(languages with their own analyzer, languages falling back to standard) of a recorded choice;
    the shared `std` fields, standard by design, are in neither."""
    languages = sorted(k for k in analyzers if k != STANDARD)
    return ([k for k in languages if analyzers[k] != "standard"], [k for k in languages if analyzers[k] == "standard"])


def state_mappings() -> dict[str, dict[str, Any]]:
    """The mappings of the state indices, by index suffix."""
    return {"feeds": FeedStateMapping._doc_type.mapping.to_dict(), "seen": SeenMapping._doc_type.mapping.to_dict(),
            "alerts": AlertMapping._doc_type.mapping.to_dict(), "leases": LeaseMapping._doc_type.mapping.to_dict(),
            "saved": SavedSearchMapping._doc_type.mapping.to_dict()}


def mapping_version() -> str:
    """A digest of the mappings this code writes: an index template with another one is out of date."""
    every = {"documents": document_mappings(), **state_mappings()}
    return hashlib.blake2b(json.dumps(every, sort_keys=True).encode(), digest_size=8).hexdigest()


def template_body(index_pattern: str, *, shards: int, replicas: int, refresh_interval: str,
                  analyzers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for indices.put_index_template for the versioned document indices.

    `analyzers` are the language analyzers the server has (see ElasticsearchStore.ensure_indices);
    the choice is kept in the mapping's `_meta`, where `energywatch stats` shows it.
    """
    chosen = {suffix: ANALYZERS.get(suffix, "standard") for suffix in TEXT_SUFFIXES}
    chosen.update(analyzers or {})
    mappings = document_mappings(chosen)
    mappings["_meta"] = {"analyzers": chosen, "mapping_version": mapping_version(),
                         "fallback": sorted(s for s, a in chosen.items() if a != ANALYZERS.get(s, "standard"))}
    return {
        "index_patterns": [index_pattern],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": shards, "number_of_replicas": replicas,
                         "refresh_interval": refresh_interval},
            "mappings": mappings,
        },
        "_meta": {"managed_by": "energywatch", "mapping_version": mapping_version()},
    }
