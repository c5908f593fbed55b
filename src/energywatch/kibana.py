"""Kibana saved objects for energywatch (data view, saved searches, dashboard) and their import.

The objects are built here from one definition and written to docker/kibana/energywatch.ndjson
(`energywatch kibana export`); `energywatch kibana setup` imports that file through Kibana's
saved-objects API (POST /api/saved_objects/_import?overwrite=true).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from energywatch.errors import ConfigError, FetchError, TransientError

DATA_VIEW_ID = "energywatch-documents"
_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def _search_source(query: str) -> str:
    return json.dumps({"query": {"query": query, "language": "kuery"}, "filter": [], "indexRefName": _INDEX_REF})


# every document has it (published_at, else when it was fetched): with published_at as the time
# field, an undated article would fall outside every Kibana time filter and never be seen
TIME_FIELD = "dated_at"


def _ref() -> list[dict[str, str]]:
    return [{"name": _INDEX_REF, "type": "index-pattern", "id": DATA_VIEW_ID}]


def _saved_search(object_id: str, title: str, query: str) -> dict[str, Any]:
    return {
        "type": "search", "id": object_id,
        "attributes": {
            "title": title, "description": f"KQL: {query}",
            "columns": ["source", "language", "relevance.label", "relevance.score", "relevance.themes",
                        "entities.organizations", "url"],
            "sort": [[TIME_FIELD, "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(query)},
        },
        "references": _ref(),
    }


def _terms_chart(object_id: str, title: str, field: str, size: int = 10) -> dict[str, Any]:
    vis = {
        "title": title, "type": "horizontal_bar",
        "aggs": [
            {"id": "1", "enabled": True, "type": "cardinality", "schema": "metric", "params": {"field": "story_id"}},
            {"id": "2", "enabled": True, "type": "terms", "schema": "segment",
             "params": {"field": field, "size": size, "order": "desc", "orderBy": "1"}},
        ],
        "params": {"addTooltip": True, "addLegend": False, "type": "histogram"},
    }
    return _visualization(object_id, title, vis)


def _timeline(object_id: str, title: str, split_field: str) -> dict[str, Any]:
    vis = {
        "title": title, "type": "histogram",
        "aggs": [
            {"id": "1", "enabled": True, "type": "cardinality", "schema": "metric", "params": {"field": "story_id"}},
            {"id": "2", "enabled": True, "type": "date_histogram", "schema": "segment",
             "params": {"field": TIME_FIELD, "interval": "auto", "min_doc_count": 1}},
            {"id": "3", "enabled": True, "type": "terms", "schema": "group",
             "params": {"field": split_field, "size": 10, "order": "desc", "orderBy": "1"}},
        ],
        "params": {"addTooltip": True, "addLegend": True, "legendPosition": "right", "type": "histogram"},
    }
    return _visualization(object_id, title, vis)


def _visualization(object_id: str, title: str, vis: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "visualization", "id": object_id,
        "attributes": {"title": title, "description": "", "visState": json.dumps(vis), "uiStateJSON": "{}",
                       "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source("")}},
        "references": _ref(),
    }


PANELS = [
    ("energywatch-stories-by-label", 0, 0, 24, 15),
    ("energywatch-stories-by-language", 24, 0, 24, 15),
    ("energywatch-top-sources", 0, 15, 16, 15),
    ("energywatch-top-countries", 16, 15, 16, 15),
    ("energywatch-top-organizations", 32, 15, 16, 15),
    ("energywatch-top-themes", 0, 30, 24, 15),
]


def saved_objects() -> list[dict[str, Any]]:
    """Every saved object energywatch ships, in import order (referenced objects first)."""
    objects: list[dict[str, Any]] = [
        {"type": "index-pattern", "id": DATA_VIEW_ID,
         "attributes": {"title": "energywatch-documents", "name": "energywatch documents",
                        "timeFieldName": TIME_FIELD},
         "references": []},
        _saved_search("energywatch-core-stories", "Core energy-security stories", "relevance.label : \"core\""),
        _saved_search("energywatch-nato-energy", "NATO energy",
                      "entities.organizations : \"NATO\" and relevance.label : (\"core\" or \"related\") "
                      "and relevance.themes : *"),
        _timeline("energywatch-stories-by-label", "Stories over time by label", "relevance.label"),
        _timeline("energywatch-stories-by-language", "Stories over time by language", "language"),
        _terms_chart("energywatch-top-sources", "Top sources", "source"),
        _terms_chart("energywatch-top-countries", "Top countries", "entities.countries"),
        _terms_chart("energywatch-top-organizations", "Top organisations", "entities.organizations"),
        _terms_chart("energywatch-top-themes", "Top themes", "relevance.themes", size=15),
    ]
    panels, references = [], []
    for n, (vis_id, x, y, w, h) in enumerate(PANELS, start=1):
        panels.append({"panelIndex": str(n), "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(n)},
                       "type": "visualization", "panelRefName": f"panel_{n}", "embeddableConfig": {}})
        references.append({"name": f"panel_{n}", "type": "visualization", "id": vis_id})
    objects.append({
        "type": "dashboard", "id": "energywatch-overview",
        "attributes": {"title": "energywatch — energy-security overview", "description": "Stories over time by "
                       "label and language, top sources, countries, organisations and themes",
                       "panelsJSON": json.dumps(panels), "optionsJSON": json.dumps({"useMargins": True}),
                       "timeRestore": False,
                       "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
                           {"query": {"query": "", "language": "kuery"}, "filter": []})}},
        "references": references,
    })
    return objects


def to_ndjson(objects: list[dict[str, Any]]) -> str:
    """One JSON object per line, as Kibana exports and imports them."""
    return "".join(json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n" for o in objects)


@dataclass(frozen=True)
class ImportReport:
    """What Kibana said about an import."""

    success: bool
    imported: list[str]
    errors: list[str]


def import_objects(kibana_url: str, ndjson: bytes, *, username: str | None = None, password: str | None = None,
                   space: str | None = None, timeout: float = 60.0) -> ImportReport:
    """Import saved objects through Kibana's API, overwriting earlier versions of them."""
    base = kibana_url.rstrip("/") + (f"/s/{space}" if space else "")
    auth = (username, password or "") if username else None
    try:
        response = httpx.post(
            f"{base}/api/saved_objects/_import", params={"overwrite": "true"},
            headers={"kbn-xsrf": "energywatch"}, files={"file": ("energywatch.ndjson", ndjson, "application/ndjson")},
            auth=auth, timeout=timeout,
        )
    except httpx.TransportError as exc:
        raise TransientError(f"cannot reach Kibana at {kibana_url}: {exc}") from exc
    if response.status_code in (401, 403):
        raise ConfigError(f"Kibana at {kibana_url} refused the credentials (HTTP {response.status_code}): "
                          "pass --username/--password or set ENERGYWATCH_KIBANA_USERNAME/_PASSWORD")
    if response.status_code >= 400:
        raise FetchError(f"Kibana import failed: HTTP {response.status_code}: {response.text[:300]}",
                         status=response.status_code)
    body = response.json()
    imported = [f"{r.get('type')} {r.get('meta', {}).get('title') or r.get('id')}" for r in body.get("successResults", [])]
    errors = [f"{e.get('type')} {e.get('id')}: {e.get('error', {}).get('type', 'error')}"
              f" {e.get('error', {}).get('message', '')}".strip() for e in body.get("errors", [])]
    return ImportReport(success=bool(body.get("success")), imported=imported, errors=errors)


def default_objects_file() -> Path:
    """docker/kibana/energywatch.ndjson of this checkout."""
    return Path(__file__).resolve().parents[2] / "docker" / "kibana" / "energywatch.ndjson"
