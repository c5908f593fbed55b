"""FastAPI application: server-rendered pages and a JSON API over the configured store.

Everything shown comes from the web and is untrusted: Jinja2 escapes it, only http(s) URLs become
links, and a strict Content-Security-Policy forbids inline scripts and foreign resources.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from importlib.resources import files
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from energywatch.config import Settings
from energywatch.errors import ConfigError, EnergywatchError
from energywatch.models import Alert, Document, FeedState, SearchQuery, SearchResult, StoreStats, TimelinePoint
from energywatch.snippets import Snippet, render_marked
from energywatch.store import open_store
from energywatch.store.base import Store
from energywatch.timeparse import parse_since

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
LABEL_COLOURS = {"core": "#b3261e", "related": "#e8a33d", "none": "#9aa0a6"}
_RTL = {"ar", "fa", "ur", "he", "yi", "ps"}


def safe_href(url: str | None) -> str | None:
    """The URL when it is http(s), else None: javascript:, data: and the like never become links."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in {"http", "https"} and parts.netloc else None


def text_dir(language: str | None) -> str:
    """rtl for right-to-left languages, auto otherwise (the browser decides from the text)."""
    return "rtl" if language in _RTL else "auto"


def marked(snippet: str, highlights: list[tuple[int, int]] | tuple) -> Markup:
    """A snippet with its matches in <mark>, every piece escaped."""
    return Markup(render_marked(Snippet(snippet, tuple(tuple(h) for h in highlights)), "<mark>", "</mark>",
                                lambda s: str(escape(s))))


def highlight_evidence(text: str, sentences: list[str]) -> Markup:
    """The article text, escaped, with each evidence sentence wrapped in <mark class="evidence">."""
    spans = []
    for sentence in sentences:
        start = text.find(sentence.strip()[:120]) if sentence.strip() else -1
        if start >= 0:
            spans.append((start, start + len(sentence.strip())))
    spans.sort()
    out, pos = [], 0
    for start, end in spans:
        if start < pos:
            continue
        out.append(str(escape(text[pos:start])))
        out.append(f'<mark class="evidence">{escape(text[start:end])}</mark>')
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


def timeline_svg(points: list[TimelinePoint], width: int = 720, height: int = 160) -> Markup:
    """Stories per day by label as stacked bars, drawn server-side (no chart library, no CDN)."""
    if not points:
        return Markup('<p class="muted">No dated stories match.</p>')
    by_day: dict[str, dict[str, int]] = defaultdict(dict)
    for p in points:
        by_day[p.day][p.label] = p.stories
    days = sorted(by_day)
    first, last = datetime.fromisoformat(days[0]), datetime.fromisoformat(days[-1])
    span = max(1, (last - first).days + 1)
    peak = max(sum(v.values()) for v in by_day.values())
    bar = max(2.0, (width - 40) / span)
    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height + 24}" role="img" '
             f'aria-label="Stories per day by label, {escape(days[0])} to {escape(days[-1])}">']
    for day, labels in by_day.items():
        x = 30 + (datetime.fromisoformat(day) - first).days * bar
        y = float(height)
        for label in ("none", "related", "core"):
            count = labels.get(label, 0)
            if not count:
                continue
            h = count / peak * (height - 10)
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, bar - 1):.1f}" height="{h:.1f}" '
                         f'fill="{LABEL_COLOURS[label]}"><title>{escape(day)}: {count} {escape(label)}</title></rect>')
    parts.append(f'<text x="30" y="{height + 16}" class="axis">{escape(days[0])}</text>')
    parts.append(f'<text x="{width - 10}" y="{height + 16}" class="axis" text-anchor="end">{escape(days[-1])}</text>')
    parts.append(f'<text x="0" y="12" class="axis">{peak}</text></svg>')
    return Markup("".join(parts))


class SearchParams:
    """The query parameters shared by the search page and /api/search."""

    def __init__(
        self,
        q: Annotated[str, Query(max_length=500, description='words, "phrase", -excluded, prefix*')] = "",
        lang: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006  (FastAPI copies defaults)
        source: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
        label: Annotated[list[Literal["core", "related", "none"]], Query()] = [],  # noqa: B006
        theme: Annotated[list[str], Query(max_length=30)] = [],  # noqa: B006
        country: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
        org: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
        min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
        since: Annotated[str | None, Query(max_length=40, description="7d, 12h or an ISO date")] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
        story: Annotated[str | None, Query(max_length=64)] = None,
        sort: Literal["relevance", "date"] = "relevance",
        all_copies: bool = False,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    ) -> None:
        self.raw: dict[str, Any] = {
            "q": q, "lang": lang, "source": source, "label": label, "theme": theme, "country": country,
            "org": org, "min_score": min_score, "since": since, "until": until, "story": story,
            "sort": sort, "all_copies": all_copies}
        try:
            self.query = SearchQuery(
                text=q, languages=tuple(lang), sources=tuple(source), labels=tuple(label), themes=tuple(theme),
                countries=tuple(c.upper() for c in country), organizations=tuple(org), min_score=min_score,
                since=parse_since(since), until=parse_since(until), story_id=story,
                group_stories=not all_copies and story is None, sort=sort, limit=limit, offset=offset,
            )
        except ConfigError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    def link(self, **changes: Any) -> str:
        """The search URL with some parameters changed (a facet toggled, a page turned)."""
        params = {**self.raw, **changes}
        pairs = []
        for key, value in params.items():
            if value in (None, "", False, []):
                continue
            for item in value if isinstance(value, list) else [value]:
                pairs.append((key, str(item).lower() if isinstance(item, bool) else item))
        return "/?" + urlencode(pairs)

    def toggle(self, key: str, value: str) -> str:
        """The link that adds or removes one facet value."""
        current = list(self.raw[key])
        return self.link(**{key: [v for v in current if v != value] if value in current else current + [value]})


def create_app(settings: Settings, store_factory: Callable[[], Store] | None = None) -> FastAPI:
    """The web application over the store the settings name."""
    store = (store_factory or (lambda: open_store(settings.store)))()
    token = settings.web_token.get_secret_value() if settings.web_token else None
    app = FastAPI(title="energywatch", version="1", description="Search and monitor energy-security news.",
                  docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json")
    templates = Jinja2Templates(directory=str(files("energywatch.web") / "templates"))
    templates.env.filters.update(href=safe_href, dir=text_dir, marked=marked)
    templates.env.globals.update(colours=LABEL_COLOURS)
    app.mount("/static", StaticFiles(directory=str(files("energywatch.web") / "static")), name="static")

    @app.middleware("http")
    async def security(request: Request, call_next: Callable) -> Response:
        if token and request.url.path not in {"/static/style.css"}:
            supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip() \
                or request.query_params.get("token", "") or request.cookies.get("energywatch_token", "")
            if not hmac.compare_digest(supplied.encode(), token.encode()):
                return JSONResponse({"detail": "an access token is required (Authorization: Bearer …)"},
                                    status_code=401)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if token and request.query_params.get("token"):
            response.set_cookie("energywatch_token", token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(EnergywatchError)
    async def store_error(request: Request, exc: EnergywatchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503 if "unavailable" in type(exc).__name__.lower() else 400)

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context)

    # JSON API ----------------------------------------------------------------------------------------
    @app.get("/api/search", response_model=SearchResult, tags=["api"])
    def api_search(params: Annotated[SearchParams, Depends()]) -> SearchResult:
        """Search: the same parameters and results as the search page."""
        return store.search(params.query)

    @app.get("/api/documents/{doc_id}", response_model=Document, tags=["api"])
    def api_document(doc_id: Annotated[str, Path(max_length=64)]) -> Document:
        """One stored document."""
        doc = store.get_document(doc_id)
        if doc is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id}")
        return doc

    @app.get("/api/feeds", response_model=list[FeedState], tags=["api"])
    def api_feeds() -> list[FeedState]:
        """Every feed's last known state."""
        return sorted(store.get_feed_states().values(), key=lambda s: s.feed_id)

    @app.get("/api/stats", response_model=StoreStats, tags=["api"])
    def api_stats() -> StoreStats:
        """Counts of documents, stories and feeds."""
        return store.stats()

    @app.get("/api/alerts", response_model=list[Alert], tags=["api"])
    def api_alerts(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[Alert]:
        """Recent alerts, newest first."""
        return store.alert_history(limit)

    # pages -------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, params: Annotated[SearchParams, Depends()]) -> HTMLResponse:
        result = store.search(params.query)
        chart = timeline_svg(store.timeline(params.query.model_copy(update={"limit": 1})))
        return page(request, "search.html", result=result, params=params, chart=chart, stats=store.stats())

    @app.get("/doc/{doc_id}", response_class=HTMLResponse, include_in_schema=False)
    def document_page(request: Request, doc_id: str) -> HTMLResponse:
        doc = store.get_document(doc_id)
        if doc is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id}")
        copies = store.search(SearchQuery(story_id=doc.story_id, group_stories=False, limit=50, facets=False)).hits
        body = highlight_evidence(doc.text, [e.sentence for e in doc.relevance.evidence if not e.in_title])
        others = [c.document for c in copies if c.document.id != doc.id]
        return page(request, "document.html", doc=doc, body=body, copies=others)

    @app.get("/feeds", response_class=HTMLResponse, include_in_schema=False)
    def feeds_page(request: Request) -> HTMLResponse:
        states = sorted(store.get_feed_states().values(), key=lambda s: (not s.last_error, s.feed_id))
        return page(request, "feeds.html", states=states)

    @app.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
    def alerts_page(request: Request) -> HTMLResponse:
        return page(request, "alerts.html", alerts=store.alert_history(100))

    app.state.store = store
    return app



__all__ = ["create_app", "safe_href", "text_dir", "timeline_svg"]
