"""One contract for every Store: the same tests run unchanged against SQLite and Elasticsearch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from energywatch.models import Document, Entities, FeedItem, FeedState, Relevance, SearchQuery
from energywatch.store.base import Store
from energywatch.urls import canonical_url, document_id

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def doc(n: int, *, title: str, text: str, lang: str, feed: str = "f1", story: str | None = None,
        days: int = 0, label: str = "none", score: float = 0.0, themes: tuple[str, ...] = (),
        countries: tuple[str, ...] = (), orgs: tuple[str, ...] = (), guid: str | None = None) -> Document:
    url = canonical_url(f"https://news.example/{lang}/{n}")
    did = document_id(url)
    return Document(
        id=did, url=url, canonical_url=url, domain="news.example", feed_id=feed, source=f"Source {feed}",
        guid=guid, title=title, text=text, language=lang, published_at=T0 + timedelta(days=days), fetched_at=T0,
        relevance=Relevance(score=score, label=label, themes=themes),  # type: ignore[arg-type]
        entities=Entities(countries=countries, organizations=orgs), story_id=story or did,
    )


RU = doc(1, title="Азербайджан и НАТО обменялись мнениями по энергетическому взаимодействию",
         text="В Баку прошел круглый стол, посвященный вопросам энергетической безопасности и изменения климата.",
         lang="ru", label="core", score=0.9, themes=("nato", "energy-security"), countries=("AZ",), orgs=("NATO",))
AR = doc(2, title="أمين عام الناتو: الطاقة محور رئيسي للأمن بعد أوكرانيا",
         text="شدد أمين عام الناتو على الدور الحيوي للطاقة في دعم أمن الدول وقدرات الدفاع.", lang="ar",
         feed="f2", days=1, label="core", score=0.85, themes=("nato",), countries=("UA", "RU"), orgs=("NATO",))
EN = doc(3, title="Solar output hits record in Spain", text="Solar panels produced more power than ever this spring.",
         lang="en", days=2, label="related", score=0.3, themes=("electricity-grid",), countries=("ES",))
EN_COPY = doc(4, title="Solar output hits a record in Spain", text="Solar panels produced more power than ever this spring.",
              lang="en", feed="f2", days=3, story=EN.id, label="related", score=0.3, countries=("ES",))
ALL = [RU, AR, EN, EN_COPY]


def fill(store: Store) -> None:
    assert sorted(store.put_documents(ALL)) == sorted(d.id for d in ALL)


def test_put_get_and_upsert(backend: Store) -> None:
    fill(backend)
    assert backend.get_document(RU.id).title == RU.title
    changed = RU.model_copy(update={"title": "Новый заголовок"})
    backend.put_documents([changed])
    assert backend.get_document(RU.id).title == "Новый заголовок"
    assert backend.stats().documents == 4
    assert [d.id for d in backend.get_documents([AR.id, "missing", RU.id])] == [AR.id, RU.id]
    assert backend.get_document("missing") is None
    assert {d.id for d in backend.iter_documents(batch_size=3)} == {d.id for d in ALL}


def test_feed_fields_are_kept(backend: Store) -> None:
    tagged = RU.model_copy(update={"categories": ("Энергетика", "НАТО"), "image_url": "https://news.example/lead.jpg",
                                   "declared_language": "ru"})
    backend.put_documents([tagged])
    backend.prepare_lookups()
    stored = backend.get_document(RU.id)
    assert (stored.categories, stored.image_url, stored.declared_language) == (
        ("Энергетика", "НАТО"), "https://news.example/lead.jpg", "ru")
    assert backend.search(SearchQuery(text="баку")).hits[0].document.categories == ("Энергетика", "НАТО")


def test_feed_leases(backend: Store) -> None:
    now = T0
    first = backend.claim_feeds(["a", "b"], "run-1", now + timedelta(minutes=20), now)
    assert first == {"a", "b"}
    # a second run gets only what is free, and the first one may renew its own
    assert backend.claim_feeds(["b", "c"], "run-2", now + timedelta(minutes=20), now) == {"c"}
    assert backend.claim_feeds(["a"], "run-1", now + timedelta(minutes=30), now) == {"a"}
    backend.release_feeds(["a", "b", "c"], "run-1")  # gives back a and b, not run-2's c
    later = now + timedelta(minutes=1)
    assert backend.claim_feeds(["a", "b", "c"], "run-3", later + timedelta(minutes=20), later) == {"a", "b"}
    # a lease whose run died lapses at its end time
    after = now + timedelta(minutes=21)
    assert backend.claim_feeds(["c"], "run-3", after + timedelta(minutes=20), after) == {"c"}
    leases = backend.feed_leases(["a", "c", "z"])
    assert {k: v[0] for k, v in leases.items()} == {"a": "run-3", "c": "run-3"}
    assert leases["c"][1] == after + timedelta(minutes=20)
    # or at once, when its run is known to be dead
    assert backend.claim_feeds(["a", "c"], "run-4", after + timedelta(minutes=20), after, ["run-3"]) == {"a", "c"}


def test_unseen_by_id_and_guid(backend: Store) -> None:
    with_guid = doc(9, title="t", text="x", lang="en", guid="guid-9")
    backend.put_documents([RU, with_guid])

    def item(url: str, guid: str | None, feed: str = "f1") -> FeedItem:
        canon = canonical_url(url)
        return FeedItem(feed_id=feed, source="s", guid=guid, url=url, canonical_url=canon, doc_id=document_id(canon))

    stored = item(RU.url + "?utm_source=x", None)
    same_guid = item("https://news.example/moved/9", "guid-9")
    other_feed_guid = item("https://news.example/other", "guid-9", feed="f9")
    new = item("https://news.example/new", "new")
    assert backend.unseen([stored, same_guid, other_feed_guid, new]) == [other_feed_guid, new]


def test_feed_state_roundtrip(backend: Store) -> None:
    state = FeedState(feed_id="f1", url="https://x.example/feed", etag='"a"', last_polled_at=T0, consecutive_failures=2)
    backend.save_feed_states([state])
    backend.save_feed_states([state.model_copy(update={"etag": '"b"'})])
    assert backend.get_feed_states()["f1"].etag == '"b"'
    assert backend.get_feed_states()["f1"].consecutive_failures == 2


def _without_stemmer(backend: Store, language: str) -> bool:
    """Whether this backend indexes the language with the standard analyzer (no stemming): a server
    without Elasticsearch's analysis-common module. The fallback is then asserted instead."""
    analyzers = getattr(backend, "analyzers", None)
    return analyzers is not None and analyzers().get(language) == "standard"


def test_search_russian_inflection(backend: Store) -> None:
    fill(backend)
    if _without_stemmer(backend, "ru"):
        # exact word forms still match, inflected ones do not, and the choice is on record
        assert backend.search(SearchQuery(text="энергетической")).hits[0].document.id == RU.id
        assert backend.search(SearchQuery(text="энергетическая")).hits == ()
        return
    result = backend.search(SearchQuery(text="энергетическая"))
    assert result.hits and result.hits[0].document.id == RU.id
    assert any(RU.text[a:b].lower().startswith("энергетическ") for a, b in
               [(x - 1, y - 1) for x, y in result.hits[0].highlights]) or result.hits[0].highlights


def test_search_arabic_article_forms(backend: Store) -> None:
    fill(backend)
    if _without_stemmer(backend, "ar"):
        assert backend.search(SearchQuery(text="الطاقة")).hits[0].document.id == AR.id
        assert backend.search(SearchQuery(text="طاقة")).hits == ()
        return
    assert backend.search(SearchQuery(text="طاقة")).hits[0].document.id == AR.id
    assert backend.search(SearchQuery(text="الطاقة", languages=("ar",))).hits[0].document.id == AR.id


def test_search_filters(backend: Store) -> None:
    fill(backend)
    ids = lambda q: {h.document.id for h in backend.search(q).hits}  # noqa: E731
    assert ids(SearchQuery(languages=("ar",))) == {AR.id}
    assert ids(SearchQuery(sources=("f2",), group_stories=False)) == {AR.id, EN_COPY.id}
    assert ids(SearchQuery(since=T0 + timedelta(days=1), until=T0 + timedelta(days=2))) == {AR.id, EN.id}
    assert ids(SearchQuery(labels=("core",))) == {RU.id, AR.id}
    assert ids(SearchQuery(min_score=0.88)) == {RU.id}
    assert ids(SearchQuery(themes=("nato",))) == {RU.id, AR.id}
    assert ids(SearchQuery(countries=("AZ",))) == {RU.id}
    assert ids(SearchQuery(organizations=("NATO",), languages=("ru",))) == {RU.id}
    assert ids(SearchQuery(text="solar", countries=("UA",))) == set()


def test_one_line_per_story_with_copies(backend: Store) -> None:
    fill(backend)
    grouped = backend.search(SearchQuery(text="solar"))
    assert grouped.total == 1 and grouped.hits[0].copies == 2
    flat = backend.search(SearchQuery(text="solar", group_stories=False))
    assert flat.total == 2 and {h.document.id for h in flat.hits} == {EN.id, EN_COPY.id}
    assert backend.search(SearchQuery(story_id=EN.id, group_stories=False)).total == 2


def test_facets(backend: Store) -> None:
    fill(backend)
    facets = backend.search(SearchQuery(group_stories=False)).facets
    as_dict = lambda name: {v.value: v.count for v in facets[name]}  # noqa: E731
    assert as_dict("language") == {"en": 2, "ru": 1, "ar": 1}
    assert as_dict("label") == {"core": 2, "related": 2}
    assert as_dict("organizations") == {"NATO": 2}
    assert as_dict("countries")["ES"] == 2


def test_sort_by_date_and_paging(backend: Store) -> None:
    fill(backend)
    page1 = backend.search(SearchQuery(sort="date", limit=2, group_stories=False))
    page2 = backend.search(SearchQuery(sort="date", limit=2, offset=2, group_stories=False))
    assert [h.document.id for h in page1.hits + page2.hits] == [EN_COPY.id, EN.id, AR.id, RU.id]


def test_query_syntax(backend: Store) -> None:
    fill(backend)
    assert backend.search(SearchQuery(text='"круглый стол"')).total == 1
    assert backend.search(SearchQuery(text='"стол круглый"')).total == 0
    assert backend.search(SearchQuery(text="solar -spain")).total == 0
    assert backend.search(SearchQuery(text="азербайдж*")).total == 1
    assert backend.search(SearchQuery(text='"unbalanced OR ( quote')).total == 0  # no syntax error reaches the user


def test_near_duplicate_lookups(backend: Store) -> None:
    a = doc(20, title="a", text="x", lang="en").model_copy(update={"content_hash": "h1", "lsh_bands": ("b1", "b2")})
    b = doc(21, title="b", text="y", lang="en").model_copy(update={"content_hash": "h2", "lsh_bands": ("b3",)})
    backend.put_documents([a, b])
    assert backend.find_by_content_hash("h1").id == a.id and backend.find_by_content_hash("zz") is None
    assert [d.id for d in backend.find_by_bands(["b2", "b9"])] == [a.id]
    assert {d.id for d in backend.find_by_bands(["b1", "b3"])} == {a.id, b.id}
    # the document sharing the most keys comes first, whichever is older
    c = doc(22, title="c", text="z", lang="en").model_copy(update={"content_hash": "h3", "lsh_bands": ("b3", "b4")})
    backend.put_documents([c])
    found = [d.id for d in backend.find_by_bands(["b1", "b3", "b4"])]
    assert found[0] == c.id and set(found) == {a.id, b.id, c.id}
    assert [d.id for d in backend.find_by_bands(["b1", "b2", "b3"], limit=1)] == [a.id]


def test_alert_outbox_exactly_once_and_due(backend: Store) -> None:
    from energywatch.models import Alert

    def alert(aid: str, story: str, due_minutes: int = 0) -> Alert:
        return Alert(id=aid, rule="r", channel="hook", story_id=story, doc_id=story, title=f"t {story}",
                     url="https://x.example/", source="S", created_at=T0, due_at=T0 + timedelta(minutes=due_minutes))

    backend.put_documents([RU], [alert("a1", RU.id)])
    # every outbox entry comes with its document, as the pipeline writes them
    backend.put_documents([RU, EN], [alert("a1", RU.id).model_copy(update={"title": "changed"}),
                                     alert("a2", EN.id, 30)])
    due = backend.due_alerts(T0 + timedelta(minutes=1))
    assert [a.id for a in due] == ["a1"] and due[0].title == f"t {RU.id}"  # the first entry stays as it was
    assert [a.id for a in backend.due_alerts(T0 + timedelta(minutes=31))] == ["a1", "a2"]
    backend.update_alerts([due[0].model_copy(update={"attempts": 1, "next_attempt_at": T0 + timedelta(minutes=10)})])
    assert backend.due_alerts(T0 + timedelta(minutes=5)) == []
    backend.update_alerts([due[0].model_copy(update={"status": "sent", "sent_at": T0 + timedelta(minutes=11)})])
    assert backend.last_sent_at("r", "hook") == T0 + timedelta(minutes=11)
    assert backend.last_sent_at("r", "other") is None
    assert [a.id for a in backend.due_alerts(T0 + timedelta(hours=1))] == ["a2"]
    assert {a.id for a in backend.alert_history(10)} == {"a1", "a2"}


def test_timeline_counts_stories_per_day_and_label(backend: Store) -> None:
    fill(backend)
    points = {(p.day, p.label): p.stories for p in backend.timeline(SearchQuery())}
    assert points == {("2026-11-01", "core"): 1, ("2026-11-02", "core"): 1, ("2026-11-03", "related"): 1,
                      ("2026-11-04", "related"): 1}
    assert [(p.day, p.label) for p in backend.timeline(SearchQuery(text="solar"))] == [
        ("2026-11-03", "related"), ("2026-11-04", "related")]


def test_precomputed_index_terms_match_the_stores_own_analysis() -> None:
    from energywatch.enrich import enrich
    from energywatch.store.sqlite import index_terms

    for d in (RU, AR, EN):
        terms = enrich(d.title, d.text, d.language).index_terms
        assert terms == index_terms(d), d.language
    assert "index_terms" not in RU.model_copy(update={"index_terms": ("a", "b")}).model_dump_json()


def test_pipeline_lookups_see_every_process_writes_at_once(opener) -> None:
    """What decides storing and sending sees writes completed a moment ago by another process."""
    from energywatch.models import Alert

    writer, reader = opener(), opener()
    # syndicated copies written a second apart by two workers must join one story
    first = doc(30, title="a", text="x", lang="en").model_copy(update={"content_hash": "h30", "lsh_bands": ("k1",)})
    writer.put_documents([first])
    reader.prepare_lookups()
    assert [d.id for d in reader.find_by_bands(["k1"])] == [first.id]
    assert reader.find_by_content_hash("h30").id == first.id
    # seen items, feed state and the outbox
    item = FeedItem(feed_id="f1", guid="g-30", url=first.url, canonical_url=first.canonical_url, doc_id=first.id,
                    source="S", title="a")
    assert reader.unseen([item]) == []
    writer.save_feed_states([FeedState(feed_id="f9", url="https://x.example/f9", etag='"e"')])
    assert reader.get_feed_states()["f9"].etag == '"e"'
    alert = Alert(id="a30", rule="r", channel="hook", story_id=first.id, doc_id=first.id, title="t",
                  url="https://x.example/", source="S", created_at=T0, due_at=T0)
    second = doc(31, title="b", text="y", lang="en")
    writer.put_documents([second], [alert])
    assert [a.id for a in reader.due_alerts(T0 + timedelta(minutes=1))] == ["a30"]
    # and a store object reads its own writes in searches at once
    assert writer.search(SearchQuery(text="y")).total >= 1


def test_long_keyword_values_and_documents_of_no_story(backend: Store) -> None:
    # a 40 kB GUID (feeds do such things) must not make the document unstorable
    long_guid = "g" * 40_000
    odd = doc(40, title="Long guid", text="pipeline report", lang="en", guid=long_guid)
    loners = [doc(41 + i, title=f"Loner {i}", text="pipeline report", lang="en").model_copy(update={"story_id": None})
              for i in range(2)]
    assert sorted(backend.put_documents([odd, *loners])) == sorted(d.id for d in (odd, *loners))
    assert backend.get_document(odd.id).guid == long_guid
    # a document of no story is its own story: one line each, not one line for all of them
    hits = backend.search(SearchQuery(text="pipeline report")).hits
    assert len(hits) == 3 and all(h.copies == 1 for h in hits)


def test_alert_claims_let_one_deliverer_win(opener) -> None:
    from energywatch.models import Alert

    first, second = opener(), opener()
    story = doc(50, title="t", text="x", lang="en")
    alerts = [Alert(id=f"c{i}", rule="r", channel="hook", story_id=story.id, doc_id=story.id, title="t",
                    url="https://x.example/", source="S", created_at=T0, due_at=T0) for i in range(3)]
    first.put_documents([story], alerts)
    now, lease = T0 + timedelta(minutes=1), timedelta(minutes=5)
    due = second.due_alerts(now)
    assert sorted(a.id for a in first.claim_alerts(due, now, lease)) == ["c0", "c1", "c2"]
    assert second.claim_alerts(due, now, lease) == []  # the other deliverer gets nothing to send
    assert second.due_alerts(now) == []
    # a deliverer that died: its alerts are due again when the lease ends, and can be claimed then
    later = now + lease + timedelta(seconds=1)
    assert sorted(a.id for a in second.claim_alerts(second.due_alerts(later), later, lease)) == ["c0", "c1", "c2"]


def test_two_deliverers_at_once_send_each_alert_once(opener, tmp_path) -> None:
    import threading
    import time

    from energywatch.alerts.outbox import deliver
    from energywatch.alerts.rules import load_rules
    from energywatch.models import Alert

    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text("channels:\n  hook: {type: webhook, url: 'https://hooks.example.org/x'}\n"
                          "rules:\n  - {name: r, labels: [core], channels: [hook]}\n", encoding="utf-8")
    rules = load_rules(rules_file)
    writer = opener()
    stories = [doc(70 + i, title=f"t{i}", text="x", lang="en") for i in range(4)]
    writer.put_documents(stories, [Alert(id=f"d{i}", rule="r", channel="hook", story_id=s.id, doc_id=s.id,
                                         title=s.title, url=s.url, source="S", created_at=T0, due_at=T0)
                                   for i, s in enumerate(stories)])
    sent: list[str] = []
    lock = threading.Lock()

    def slow_sender(message, channel, secrets) -> None:
        time.sleep(0.2)  # a real webhook takes a while: the other deliverer runs meanwhile
        with lock:
            sent.extend(a.id for a in message.alerts)

    stores = [opener(), opener()]
    threads = [threading.Thread(target=deliver, args=(s, rules, T0 + timedelta(minutes=1)),
                                kwargs={"sender": slow_sender}) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(sent) == ["d0", "d1", "d2", "d3"]
    assert {a.status for a in writer.alert_history()} == {"sent"}


def test_phrases_with_apostrophes_and_quotes(backend: Store) -> None:
    # Elasticsearch analyses the phrase as it indexed the text ("Jupiter's" is one token there, two
    # in our tokenizer): the same query finds the same page in both stores
    page = doc(80, title="Juno", text="Clouds of water vapor above the surface of Jupiter's atmosphere. "
                                       "Il “venerdì nero” è l’ennesima consuetudine.", lang="en")
    backend.put_documents([page, EN])
    for phrase in ("vapor above the surface of Jupiter's", "il “venerdì nero” è l’ennesima consuetudine"):
        hits = backend.search(SearchQuery(text=f'"{phrase}"')).hits
        assert [h.document.id for h in hits] == [page.id], phrase


def test_stats_follow_upserts_story_moves_and_prunes(backend: Store) -> None:
    fill(backend)
    stats = backend.stats()
    assert (stats.documents, stats.stories) == (4, 3)
    assert stats.by_label == {"core": 2, "related": 2} and stats.by_language == {"ru": 1, "ar": 1, "en": 2}
    # a copy leaves its story and a document changes label: the counts follow
    backend.put_documents([EN_COPY.model_copy(update={"story_id": EN_COPY.id}),
                           RU.model_copy(update={"relevance": Relevance(score=0.2, label="related")})])
    stats = backend.stats()
    assert (stats.documents, stats.stories) == (4, 4) and stats.by_label == {"core": 1, "related": 3}


def test_prune_keeps_the_outbox_and_story_links_consistent(backend: Store) -> None:
    from energywatch.models import Alert

    def alert(aid: str, target: Document, status: str = "pending") -> Alert:
        return Alert(id=aid, rule="r", channel="hook", story_id=target.story_id or target.id, doc_id=target.id,
                     title=target.title, url=target.url, source="S", created_at=T0, due_at=T0,
                     status=status)  # type: ignore[arg-type]

    copy = EN_COPY.model_copy(update={"duplicate_of": EN.id})
    backend.put_documents([RU, AR, EN, copy], [alert("old-pending", RU), alert("old-sent", AR, "sent"),
                                               alert("new", copy)])
    progress: list[int] = []
    # RU (day 0) and AR (day 1) are older than day 2; EN is day 2, its copy day 3
    assert backend.prune(T0 + timedelta(days=1, hours=12), batch_size=1, progress=progress.append) == 2
    assert progress == [1, 2]
    assert backend.get_documents([RU.id, AR.id]) == [] and backend.stats().documents == 2
    assert {a.id for a in backend.alert_history(10)} == {"old-sent", "new"}
    assert backend.search(SearchQuery(text="НАТО")).total == 0
    assert backend.search(SearchQuery(text="solar")).total == 1  # the story is kept
    assert backend.prune(T0 + timedelta(days=2, hours=12)) == 1  # EN: its copy stays, unlinked
    kept = backend.get_document(copy.id)
    assert kept is not None and kept.duplicate_of is None and kept.story_id == EN.id
    assert backend.search(SearchQuery(text="solar")).total == 1
    stats = backend.stats()
    assert (stats.documents, stats.stories, stats.by_language) == (1, 1, {"en": 1})
    # pruning again finds nothing, and the copy is stored again unchanged
    assert backend.prune(T0 + timedelta(days=2, hours=12)) == 0
    backend.put_documents([kept])
    assert backend.search(SearchQuery(text="solar")).total == 1


def test_exclusions_alone_prefixes_of_inflected_words_and_empty_queries(backend: Store) -> None:
    import pytest

    from energywatch.errors import ConfigError

    fill(backend)
    # only exclusions: everything but what they match (not nothing)
    assert {h.document.id for h in backend.search(SearchQuery(text="-solar", group_stories=False)).hits} == {
        RU.id, AR.id}
    assert {p.day for p in backend.timeline(SearchQuery(text="-solar"))} == {"2026-11-01", "2026-11-02"}
    # a prefix written from an inflected form finds the stem's every form ("panels*" → panel, panels)
    assert backend.search(SearchQuery(text="panels*")).total == 1
    assert backend.search(SearchQuery(text="sol*")).total == 1
    # a query whose every part is dropped is an error, not the whole archive
    for text in ('"', "*", "🔥"):
        with pytest.raises(ConfigError, match="nothing to search for"):
            backend.search(SearchQuery(text=text))


BOOLEAN_QUERIES = {
    "НАТО OR solar": {RU, EN, EN_COPY},
    "газ OR solar OR الناتو": {AR, EN, EN_COPY},
    "(solar OR НАТО) -spain": {RU},
    "title:solar": {EN, EN_COPY},
    "title:panels": set(),
    "text:panels": {EN, EN_COPY},
    'title:(НАТО OR record) -"круглый стол"': {EN, EN_COPY},
    "solar NOT record": set(),
    "spring OR (нато круглый)": {EN, EN_COPY, RU},
    # OR binds looser than AND: (solar AND baku) OR безопасности
    "solar baku OR безопасности": {RU},
    "solar or spain": set(),  # a lower-case "or" is a word to find, not the operator
}


def test_or_groups_and_fields_mean_the_same_in_every_store_and_in_alert_rules(backend: Store) -> None:
    from energywatch.store.query import matches_text, parse_query

    fill(backend)
    for text, expected in BOOLEAN_QUERIES.items():
        found = {h.document.id for h in backend.search(SearchQuery(text=text, group_stories=False)).hits}
        assert found == {d.id for d in expected}, text
        # an alert rule with this query picks the same documents as the search
        assert {d.id for d in ALL if matches_text(parse_query(text), d.title, d.text, d.language)} == found, text


def test_unreadable_searches_are_clear_errors(backend: Store) -> None:
    import pytest

    from energywatch.errors import ConfigError

    fill(backend)
    for text, says in (("(gas", "never closed"), ("gas)", "closes no"), ("gas OR", "each side"),
                       ("gas OR -oil", "cannot be one side of an OR"), ("NOT", "needs something after it")):
        with pytest.raises(ConfigError, match=says):
            backend.search(SearchQuery(text=text))
    assert backend.stats().documents == len(ALL)  # nothing stored was touched


def test_saved_searches_are_kept_replaced_and_deleted(backend: Store) -> None:
    from energywatch.models import SavedSearch

    nato = SavedSearch(name="nato-energy", text="НАТО OR الناتو", labels=("core",), countries=("AZ",), created_at=T0)
    backend.save_search(nato)
    backend.save_search(SavedSearch(name="a-solar", text="solar", channels=("hook",), created_at=T0))
    assert [s.name for s in backend.saved_searches()] == ["a-solar", "nato-energy"]
    backend.save_search(nato.model_copy(update={"channels": ("hook",)}))  # same name: replaced
    assert backend.saved_searches()[1] == nato.model_copy(update={"channels": ("hook",)})
    fill(backend)
    assert {h.document.id for h in backend.search(backend.saved_searches()[1].query()).hits} == {RU.id}
    assert backend.delete_search("a-solar") and not backend.delete_search("a-solar")
    assert [s.name for s in backend.saved_searches()] == ["nato-energy"]


def test_added_since_alert_filters_and_documents_per_feed(backend: Store) -> None:
    from energywatch.models import Alert

    early, late = T0 + timedelta(days=30), T0 + timedelta(days=31)
    backend.put_documents([RU.model_copy(update={"indexed_at": early}), AR.model_copy(update={"indexed_at": late}),
                           EN.model_copy(update={"indexed_at": late})])
    found = backend.search(SearchQuery(added_since=late, group_stories=False))
    assert {h.document.id for h in found.hits} == {AR.id, EN.id}
    assert backend.documents_per_feed() == {"f1": 2, "f2": 1}

    def alert(aid: str, rule: str, minutes: int) -> Alert:
        return Alert(id=aid, rule=rule, channel="hook", story_id=RU.id, doc_id=RU.id, title="t",
                     url="https://x.example/", source="S", created_at=T0 + timedelta(minutes=minutes), due_at=T0)

    backend.put_documents([RU], [alert(f"r{i}", "r" if i % 2 else "s", i) for i in range(6)])
    assert [a.id for a in backend.alert_history(2, 1)] == ["r4", "r3"]
    assert [a.id for a in backend.alert_history(10, rule="r")] == ["r5", "r3", "r1"]
    assert backend.alert_history(10, status="sent") == []
