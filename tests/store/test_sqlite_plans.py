"""Query plans that keep search fast as the archive grows: no search scans a temporary table inside a loop.

A structural test, not a timed one: at a few thousand documents every statement a search runs is
explained (EXPLAIN QUERY PLAN), and a full scan of the matches' temporary table as the inner side of
a join, which is quadratic in the archive, fails it (issue "A year of news on the embedded default")."""

from __future__ import annotations

from pathlib import Path

from energywatch.models import SearchQuery
from energywatch.store.sqlite import SQLiteStore
from store.test_contract import doc

THEMES = ("nato", "pipelines", "nuclear", "lng", "electricity-grid")
COUNTRIES = ("UA", "RU", "DE", "TR", "AZ", "NO", "PL")


def _filled(path: Path, n: int = 3000) -> SQLiteStore:
    store = SQLiteStore(path)
    batch = [doc(i, title=f"Gas pipeline story {i}", text=f"Energy security report {i} on gas and the grid.",
                 lang="en", label=("core", "related", "none")[i % 3], score=(i % 10) / 10,
                 themes=(THEMES[i % 5], THEMES[(i + 2) % 5]), countries=(COUNTRIES[i % 7],),
                 orgs=("NATO",) if i % 4 == 0 else ()) for i in range(n)]
    for start in range(0, n, 500):
        store.put_documents(batch[start:start + 500])
    return store


def _nested_temp_scans(plan: list[tuple[int, int, int, str]]) -> list[str]:
    """Rows that scan the temp table `m`/`matched` after another table of the same join (an inner loop)."""
    by_parent: dict[int, list[str]] = {}
    for _, parent, _, detail in plan:
        if detail.startswith(("SCAN", "SEARCH")):
            by_parent.setdefault(parent, []).append(detail)
    bad = []
    for details in by_parent.values():
        for position, detail in enumerate(details):
            if position and detail.split()[:2] in (["SCAN", "m"], ["SCAN", "matched"]):
                bad.append(" → ".join(details))
    return bad


def test_no_search_scans_the_matches_inside_a_loop(tmp_path: Path) -> None:
    store = _filled(tmp_path / "plans.db")
    statements: list[str] = []
    reader = store._reader  # this thread's connection: the one the searches below run on
    reader.set_trace_callback(statements.append)
    for query in (SearchQuery(), SearchQuery(text="gas"), SearchQuery(text="energy security", labels=("core",)),
                  SearchQuery(text='"gas pipeline"', countries=("UA",)), SearchQuery(text="pipe*", sort="date"),
                  SearchQuery(themes=("nato",)), SearchQuery(text="gas", group_stories=False)):
        store.search(query)
    reader.set_trace_callback(None)
    explained = 0
    problems = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT") and "matched" in sql:
            plan = reader.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            explained += 1
            problems += [f"{p}\n    in {sql[:160]}" for p in _nested_temp_scans(plan)]
        elif sql.lstrip().upper().startswith("CREATE TEMP TABLE MATCHED"):
            reader.execute("DROP TABLE IF EXISTS temp.matched")
            reader.execute(sql)  # the table the following statements are explained against
    assert explained >= 7 * 5, f"only {explained} statements on the matches were explained"
    assert not problems, "\n".join(problems)
    store.close()
