"""What can be checked of the Elasticsearch store without a server: mapping, template, actions, queries.

The bodies are checked against the documented APIs (index templates, bulk, search with collapse,
highlight and aggregations); the behaviour against a real server is the contract suite's job.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from energywatch.errors import StoreError
from energywatch.models import Document, Entities, Evidence, Relevance, SearchQuery
from energywatch.store.elasticsearch import client_options, from_source, parse_response, search_body, to_source
from energywatch.store.es_mapping import ANALYZERS, document_mappings, template_body, text_suffix

DOC = Document(
    id="abc", url="https://x.example/a", canonical_url="https://x.example/a", domain="x.example", feed_id="f",
    source="S", title="Атака на газопровод", text="Газопровод повреждён.", language="ru",
    fetched_at=datetime(2026, 11, 1, tzinfo=timezone.utc), story_id="abc",
    relevance=Relevance(score=0.9, label="core", themes=("pipelines",),
                        evidence=(Evidence(concept="pipeline", axis="energy", term="газопровод", sentence="…"),)),
    entities=Entities(countries=("RU",), organizations=("NATO",)), lsh_bands=("0:aa",),
)


def test_mapping_is_strict_with_per_language_analyzers() -> None:
    mapping = document_mappings()
    props = mapping["properties"]
    assert mapping["dynamic"] == "strict"
    assert props["text_ru"] == {"analyzer": "russian", "index_options": "offsets", "type": "text"}
    assert props["title_ar"]["analyzer"] == "arabic" and props["text_en"]["analyzer"] == "english"
    assert props["text_std"]["analyzer"] == "standard"  # Ukrainian, Azerbaijani, Polish: no built-in analyzer
    for keyword in ("language", "feed_id", "source", "story_id", "lsh_bands", "content_hash"):
        assert props[keyword]["type"] == "keyword"
    assert props["published_at"]["type"] == "date"
    relevance = props["relevance"]["properties"]
    assert relevance["label"]["type"] == "keyword" and relevance["score"]["type"] == "float"
    assert relevance["evidence"] == {"enabled": False, "type": "object"}  # stored, not indexed
    assert props["entities"]["properties"]["countries"]["type"] == "keyword"


@pytest.mark.parametrize("lang,suffix", [("ru", "ru"), ("ar", "ar"), ("tr", "tr"), ("uk", "std"), ("az", "std"),
                                         ("pl", "std"), (None, "std")])
def test_language_fields(lang: str | None, suffix: str) -> None:
    assert text_suffix(lang) == suffix
    assert {"en", "ru", "ar", "tr", "de", "fr", "es"} <= set(ANALYZERS)


def test_template_targets_versioned_indices() -> None:
    body = template_body("energywatch-documents-v*", shards=3, replicas=1, refresh_interval="30s")
    assert body["index_patterns"] == ["energywatch-documents-v*"]
    settings = body["template"]["settings"]
    assert settings == {"number_of_shards": 3, "number_of_replicas": 1, "refresh_interval": "30s"}
    assert body["template"]["mappings"]["dynamic"] == "strict"


def test_source_roundtrip_puts_text_under_its_language() -> None:
    source = to_source(DOC)
    assert source["text_ru"] == DOC.text and source["title_ru"] == DOC.title
    assert "text" not in source and "title" not in source
    assert set(source) <= set(document_mappings()["properties"])  # nothing a strict mapping would refuse
    assert from_source(source) == DOC


def test_query_body_filters_collapse_and_facets() -> None:
    body = search_body(SearchQuery(text='газопровод "круглый стол" -спорт', languages=("ru",), labels=("core",),
                                   min_score=0.5, countries=("AZ",), organizations=("NATO",), sources=("tass",)))
    assert body is not None
    must = body["query"]["bool"]["must"][0]["bool"]
    assert must["must"][0]["multi_match"]["fields"] == ["title_ru^4", "text_ru"]
    assert must["must"][1]["multi_match"]["type"] == "phrase"
    assert must["must_not"][0]["multi_match"]["query"] == "спорт"
    filters = body["query"]["bool"]["filter"]
    assert {"terms": {"relevance.label": ["core"]}} in filters
    assert {"range": {"relevance.score": {"gte": 0.5}}} in filters
    assert {"terms": {"entities.countries": ["AZ"]}} in filters
    assert body["collapse"]["field"] == "story_id" and body["aggs"]["stories"]["cardinality"]["field"] == "story_id"
    assert body["aggs"]["themes"] == {"terms": {"field": "relevance.themes", "size": 25}}
    flat = search_body(SearchQuery(group_stories=False, facets=False, sort="date"))
    assert "collapse" not in flat and "aggs" not in flat and "must" not in flat["query"]["bool"]
    assert flat["sort"][0] == {"published_at": {"order": "desc", "missing": "_last"}}
    all_languages = search_body(SearchQuery(text="gas"))["query"]["bool"]["must"][0]  # one word: one clause
    assert "text_std" in all_languages["multi_match"]["fields"] and "text_ar" in all_languages["multi_match"]["fields"]
    # only exclusions: every document but those (match_all and must_not)
    excluded = search_body(SearchQuery(text="-only -excluded"))["query"]["bool"]["must"][0]["bool"]
    assert excluded["must"] == [{"match_all": {}}]
    assert [c["multi_match"]["query"] for c in excluded["must_not"]] == ["only", "excluded"]
    # OR, groups and fields: a bool tree, title: on the title fields only
    tree = search_body(SearchQuery(text='title:(gas OR газ) "Nord Stream"', languages=("en", "ru")))
    assert tree is not None
    either, phrase = tree["query"]["bool"]["must"][0]["bool"]["must"]
    assert either["bool"]["minimum_should_match"] == 1
    assert [c["multi_match"]["fields"] for c in either["bool"]["should"]] == [["title_en", "title_ru"]] * 2
    assert phrase["multi_match"] == {"query": "Nord Stream", "fields": ["title_en^4", "title_ru^4", "text_en", "text_ru"],
                                     "type": "phrase"}


def test_parse_response_with_collapse_highlight_and_aggs() -> None:
    response = {
        "hits": {"total": {"value": 3, "relation": "eq"}, "hits": [{
            "_id": "abc", "_score": 2.5, "_source": to_source(DOC),
            "highlight": {"text_ru": ["\u0002Газопровод\u0003 повреждён."]},
            "inner_hits": {"copies": {"hits": {"total": {"value": 2, "relation": "eq"}, "hits": []}}},
        }]},
        "aggregations": {"stories": {"value": 1},
                         "language": {"buckets": [{"key": "ru", "doc_count": 3}]},
                         "label": {"buckets": [{"key": "core", "doc_count": 3}]}},
    }
    result = parse_response(response, SearchQuery(text="газопровод"))
    assert result.total == 1 and result.hits[0].copies == 2 and result.hits[0].document == DOC
    hit = result.hits[0]
    assert hit.snippet == "Газопровод повреждён." and hit.highlights == ((0, 10),)
    assert result.facets["language"][0].value == "ru" and result.facets["label"][0].count == 3


def test_client_options_from_url() -> None:
    options = client_options("https://elastic:p%40ss@es.example:9243", environ={"ENERGYWATCH_ES_CA_CERTS": "/ca.pem"})
    assert options["hosts"] == ["https://es.example:9243"] and options["basic_auth"] == ("elastic", "p@ss")
    assert options["ca_certs"] == "/ca.pem"
    keyed = client_options("http://es.example", environ={"ENERGYWATCH_ES_API_KEY": "k"})
    assert keyed["hosts"] == ["http://es.example:9200"] and keyed["api_key"] == "k"
    with pytest.raises(StoreError):
        client_options("sqlite:///x.db", environ={})


def test_a_cluster_s_nodes_in_one_store_url() -> None:
    from energywatch.store import redact

    url = "http://writer:p%40ss@es1:9201,es2,[::1]:9203/?index_prefix=ew-prod"
    options = client_options(url, environ={})
    assert options["hosts"] == ["http://es1:9201", "http://es2:9200", "http://[::1]:9203"]
    assert options["basic_auth"] == ("writer", "p@ss")
    assert redact(url) == "http://writer:***@es1:9201,es2,[::1]:9203/?index_prefix=ew-prod"
    assert redact("sqlite:///x.db") == "sqlite:///x.db" and redact("http://es:9200") == "http://es:9200"
    twice = client_options("http://es1:9200,es1,es2:9200", environ={})["hosts"]
    assert twice == ["http://es1:9200", "http://es2:9200"]  # the client refuses a node named twice
    with pytest.raises(StoreError, match="node 'es2:nine'"):
        client_options("http://es1:9200,es2:nine", environ={})
    with pytest.raises(StoreError, match="several nodes"):
        client_options("http://u:p@,/", environ={})


def test_language_analyzers_detected_on_the_live_server(elasticsearch_url: str) -> None:
    """The template names only analyzers the server has; the choice is in the index's _meta."""
    import uuid

    from energywatch.store.elasticsearch import ElasticsearchStore, available_analyzers, client_from_url

    client = client_from_url(elasticsearch_url)
    detected = available_analyzers(client)
    store = ElasticsearchStore.from_url(elasticsearch_url, prefix=f"ew-an-{uuid.uuid4().hex[:8]}", replicas=0)
    try:
        recorded = store.analyzers()
        assert {k: recorded[k] for k in detected} == detected
        assert recorded["std"] == "standard"
        for analyzer in detected.values():  # each one recorded really analyses on this server
            assert client.indices.analyze(analyzer=analyzer, text="energy")["tokens"]
    finally:
        store.drop_all()
        store.close()
        client.close()


def test_index_prefix_from_the_store_url() -> None:
    import pytest

    from energywatch.errors import StoreError
    from energywatch.store.elasticsearch import client_options, index_prefix

    assert index_prefix("http://u:p@es:9200") == "energywatch"
    assert index_prefix("http://u:p@es:9200/?index_prefix=ew-staging") == "ew-staging"
    assert client_options("http://u:p@es:9200/?index_prefix=ew-staging")["hosts"] == ["http://es:9200"]
    with pytest.raises(StoreError, match="index_prefix 'Bad/Name'"):
        index_prefix("http://es:9200/?index_prefix=Bad/Name")


def test_index_layout_from_the_store_url() -> None:
    from energywatch.store.elasticsearch import index_layout

    assert index_layout("http://es:9200") == {}
    assert index_layout("http://es:9200/?index_prefix=x&shards=3&replicas=0") == {"shards": 3, "replicas": 0}
    for bad in ("shards=0", "replicas=-1", "replicas=two"):
        with pytest.raises(StoreError, match="whole number"):
            index_layout(f"http://es:9200/?{bad}")
