"""Near-duplicate grouping: a story and its syndicated copy share a story; exact re-posts are marked."""

from __future__ import annotations

from datetime import datetime, timezone

from pytest_httpserver import HTTPServer

from conftest import article_html, rss
from energywatch.enrich.dedup import group, signature, similarity
from energywatch.models import Document, Feed, SearchQuery
from energywatch.pipeline import run

STORY = (
    "Finnish police and the Border Guard launched an investigation on Thursday into damage to the EstLink 2 "
    "underwater electricity cable connecting the power grids of Finland and Estonia. Investigators boarded a "
    "tanker suspected of dragging its anchor across the seabed, and the government said the incident showed "
    "how exposed the Baltic Sea's critical energy infrastructure has become. The grid operator said supplies "
    "were secure but that repairs could take months, and NATO said it would step up patrols in the region."
)
REWRITE = STORY.replace("on Thursday", "on Thursday evening").replace("could take months", "may take several months") \
    + " Estonia's prime minister called for an emergency meeting."
OTHER = ("The city council approved a new budget for public libraries, adding weekend opening hours and funds "
         "for children's reading programmes in every district, officials said on Monday evening after a vote.")


def doc(i: int, text: str) -> Document:
    sig = signature("Cable damaged", text)
    return Document(id=f"d{i}", url=f"https://n{i}.example/a", canonical_url=f"https://n{i}.example/a",
                    domain=f"n{i}.example", feed_id="f", source="s", title="Cable damaged", text=text,
                    fetched_at=datetime.now(timezone.utc), story_id=f"d{i}", content_hash=sig.content_hash,
                    lsh_bands=sig.bands)


def test_light_rewrite_is_similar_and_shares_bands() -> None:
    a, b, c = doc(1, STORY), doc(2, REWRITE), doc(3, OTHER)
    assert similarity(a, b) >= 0.5 and similarity(a, c) < 0.2
    assert set(a.lsh_bands) & set(b.lsh_bands)
    assert group(b, None, [a, c]).story_id == "d1"
    assert group(c, None, [a, b]).story_id == "d3"


def test_exact_repost_is_a_duplicate() -> None:
    a, copy = doc(1, STORY), doc(2, STORY)
    assert a.content_hash == copy.content_hash
    grouping = group(copy, a, [a])
    assert grouping.duplicate_of == "d1" and grouping.story_id == "d1"
    assert group(a, a, [a]).duplicate_of is None  # a document is never its own duplicate


def test_short_texts_get_no_bands() -> None:
    assert signature("t", "Too short to compare.").bands == ()


def test_pipeline_groups_syndicated_copies(settings, store, httpserver: HTTPServer) -> None:
    pages = {"/orig": article_html("EstLink 2 cable damaged", [STORY]),
             "/synd": article_html("EstLink 2 cable damaged, police investigate", [REWRITE]),
             "/repost": article_html("EstLink 2 cable damaged", [STORY]),  # the same page at another address
             "/other": article_html("Library budget", [OTHER])}
    for path, html in pages.items():
        httpserver.expect_request(path).respond_with_data(html, content_type="text/html")
    first = [{"title": "orig", "link": httpserver.url_for("/orig")}, {"title": "other", "link": httpserver.url_for("/other")}]
    second = [{"title": "synd", "link": httpserver.url_for("/synd")}, {"title": "repost", "link": httpserver.url_for("/repost")}]
    httpserver.expect_request("/a.rss").respond_with_data(rss(first), content_type="application/rss+xml")
    httpserver.expect_request("/b.rss").respond_with_data(rss(second), content_type="application/rss+xml")
    run(settings, [Feed(id="a", name="A", url=httpserver.url_for("/a.rss"))], store)
    run(settings, [Feed(id="b", name="B", url=httpserver.url_for("/b.rss"))], store)
    docs = {d.url.rsplit("/", 1)[-1]: d for d in store.iter_documents()}
    assert docs["synd"].story_id == docs["orig"].id == docs["repost"].story_id
    assert docs["repost"].duplicate_of == docs["orig"].id and docs["synd"].duplicate_of is None
    assert docs["other"].story_id == docs["other"].id
    grouped = store.search(SearchQuery(text="EstLink"))
    assert grouped.total == 1 and grouped.hits[0].copies == 3
    assert docs["orig"].relevance.label == "core" and "Estlink" in docs["orig"].entities.infrastructure
    core = store.search(SearchQuery(labels=("core",), organizations=("NATO",)))
    assert core.total == 1 and core.facets["themes"]
