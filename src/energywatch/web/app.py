"""FastAPI application: server-rendered pages and a JSON API over the configured store.

Everything shown comes from the web and is untrusted: Jinja2 escapes it, only http(s) URLs become
links, and a strict Content-Security-Policy forbids inline scripts and foreign resources.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from importlib.resources import files
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from energywatch import export
from energywatch.alerts.rules import load_rules
from energywatch.config import Settings, load_feeds
from energywatch.errors import ConfigError, EnergywatchError
from energywatch.models import (
    Alert,
    Document,
    FeedState,
    SavedSearch,
    SearchQuery,
    SearchResult,
    StoreStats,
    TimelinePoint,
)
from energywatch.schedule import poll_interval
from energywatch.snippets import Snippet, render_marked
from energywatch.store import open_store
from energywatch.store.base import Store
from energywatch.store.query import searchable
from energywatch.timeparse import parse_since, parse_until
from energywatch.urls import redact_text, redact_url

log = logging.getLogger(__name__)
SESSION_COOKIE = "energywatch_session"
STORY_COPIES = 200  # copies listed on a story page
MIN_TOKEN_LENGTH = 16
MAX_GUESSES, GUESS_WINDOW = 10, 60.0  # wrong tokens per client address per minute before 429
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# lead images come from the publishers' servers: allowed only as images, and only when the settings say so
CSP_WITH_IMAGES = CSP.replace("img-src 'self' data:", "img-src 'self' data: https: http:")
VISIT_COOKIE = "energywatch_visit"
VISIT_GAP = timedelta(minutes=30)  # a page view after this long a pause starts a new visit
ENTITY_KINDS = {"org": ("organizations", "organisation"), "country": ("countries", "country"),
                "infra": ("infrastructure", "infrastructure"), "person": ("people", "person"),
                "theme": ("themes", "theme")}
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


def _bin_of(day: date, unit: str) -> date:
    if unit == "month":
        return day.replace(day=1)
    if unit == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    return day


def _next_bin(start: date, unit: str) -> date:
    if unit == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=7 if unit == "week" else 1)


def timeline_svg(points: list[TimelinePoint], width: int = 720, height: int = 160) -> Markup:
    """Stories by label as stacked bars per day, week or month (by the span), drawn server-side."""
    if not points:
        return Markup('<p class="muted">No dated stories match.</p>')
    first = min(date.fromisoformat(p.day) for p in points)
    last = max(date.fromisoformat(p.day) for p in points)
    span = (last - first).days + 1
    unit = "month" if span > 180 else "week" if span > 45 else "day"
    bins: list[date] = []
    cursor = _bin_of(first, unit)
    while cursor <= last:
        bins.append(cursor)
        cursor = _next_bin(cursor, unit)
    counts: dict[date, dict[str, int]] = {b: {} for b in bins}
    for p in points:
        key = _bin_of(date.fromisoformat(p.day), unit)
        counts[key][p.label] = counts[key].get(p.label, 0) + p.stories
    peak = max(sum(v.values()) for v in counts.values()) or 1
    slot = (width - 40) / len(bins)
    bar = min(slot, 24.0)  # one day alone is a bar, not the whole width
    estimated = any(p.estimated for p in points)
    per = {"day": "day", "week": "week", "month": "month"}[unit]
    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height + 24}" role="img" '
             f'aria-label="Stories per {per} by label, {first} to {last}">']
    for index, start in enumerate(bins):
        x = 30 + index * slot + (slot - bar) / 2
        y = float(height)
        for label in ("none", "related", "core"):
            count = counts[start].get(label, 0)
            if not count:
                continue
            h = count / peak * (height - 10)
            y -= h
            shown = f"{'about ' if estimated else ''}{count}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, bar - 1):.1f}" height="{h:.1f}" '
                         f'fill="{LABEL_COLOURS[label]}"><title>{per} of {start}: {shown} {escape(label)}</title></rect>')
    ticks = sorted({0, len(bins) - 1, *range(0, len(bins), max(1, len(bins) // 5))})
    for index in ticks:
        if index and index != len(bins) - 1 and index > len(bins) - 1 - max(1, len(bins) // 10):
            continue  # too close to the last tick to be read
        label = bins[index].strftime("%b %Y" if unit == "month" else "%d %b %Y" if index in (0, len(bins) - 1)
                                     else "%d %b")
        x = 30 + index * slot + slot / 2
        anchor = "start" if index == 0 else "end" if index == len(bins) - 1 and len(bins) > 1 else "middle"
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{height}" y2="{height + 4}" class="tick"/>')
        parts.append(f'<text x="{x:.1f}" y="{height + 16}" class="axis" text-anchor="{anchor}">{label}</text>')
    parts.append(f'<text x="0" y="12" class="axis">{"≈" if estimated else ""}{peak}</text>')
    parts.append(f'<text x="{width}" y="12" class="axis" text-anchor="end">stories per {per}</text></svg>')
    return Markup("".join(parts))


@lru_cache(maxsize=4096)
def name_of(code: str, facet: str) -> str:
    """A language or country code with its English name ("ar" → "ar · Arabic"); other values as they are."""
    import pycountry

    found = None
    if facet == "language" and len(code) in (2, 3):
        found = pycountry.languages.get(alpha_2=code) if len(code) == 2 else pycountry.languages.get(alpha_3=code)
    elif facet == "countries" and len(code) == 2:
        found = pycountry.countries.get(alpha_2=code.upper())
    name = getattr(found, "common_name", None) or getattr(found, "name", None) if found else None
    return f"{code} · {name}" if name else code


def _host_name(header: str) -> str:
    """The host name of a Host header, without its port ("[::1]:8000" → "::1")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _same(offered: str, expected: str) -> bool:
    return bool(offered) and bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())


def when(value: datetime | None, seconds: bool = False) -> Markup:
    """A time as <time>, always with its zone (stored times are UTC; the title gives the ISO form)."""
    if value is None:
        return Markup('<span class="muted">never</span>')
    utc = value.astimezone(timezone.utc)
    shown = utc.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return Markup(f'<time datetime="{utc.isoformat()}">{shown} UTC</time>')


def visit_times(cookie: str | None, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(the start of the previous visit's "new since" baseline, the last page view) from the visit cookie."""

    def moment(part: str) -> datetime | None:
        try:
            parsed = datetime.fromisoformat(part)
        except ValueError:
            return None
        # a time from the future or without a zone is no baseline
        return parsed if parsed.tzinfo is not None and parsed <= now + timedelta(minutes=5) else None

    baseline, _, last = (cookie or "").partition("|")
    return moment(baseline), moment(last.partition("|")[0])


def _secured(response: Response, *, no_store: bool, csp: str = CSP) -> Response:
    """The security headers every answer carries (401s and redirects included)."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if no_store:
        # pages behind a token must not stay in a shared browser's cache or a proxy's
        response.headers["Cache-Control"] = "no-store"
    return response


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
        infra: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
        person: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
        min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
        since: Annotated[str | None, Query(max_length=40, description="7d, 12h or an ISO date")] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
        story: Annotated[str | None, Query(max_length=64)] = None,
        added_since: Annotated[datetime | None, Query(description="stored at or after this time (ISO 8601)")] = None,
        sort: Literal["relevance", "date"] = "relevance",
        all_copies: bool = False,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    ) -> None:
        self.raw: dict[str, Any] = {
            "q": q, "lang": lang, "source": source, "label": label, "theme": theme, "country": country,
            "org": org, "infra": infra, "person": person, "min_score": min_score, "since": since, "until": until,
            "story": story, "added_since": added_since.isoformat() if added_since else None,
            "sort": sort, "all_copies": all_copies}
        if added_since is not None:
            try:
                added_since = (added_since if added_since.tzinfo else added_since.replace(tzinfo=timezone.utc)
                               ).astimezone(timezone.utc)
            except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before the first representable UTC time
                raise HTTPException(status_code=422, detail=f"added_since {added_since.isoformat()} is out of "
                                                            "range: give a time after year 1") from exc
        try:
            # read the query now: an export streams its answer, too late to turn an error into a 4xx
            searchable(q)
            self.query = SearchQuery(
                text=q, languages=tuple(lang), sources=tuple(source), labels=tuple(label), themes=tuple(theme),
                countries=tuple(c.upper() for c in country), organizations=tuple(org), infrastructure=tuple(infra),
                people=tuple(person), min_score=min_score, added_since=added_since,
                since=parse_since(since), until=parse_until(until), story_id=story,
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

    @property
    def effective_sort(self) -> str:
        """The order results come in: by date when there are no words to rank by."""
        return self.raw["sort"] if self.raw["q"].strip() else "date"

    def chips(self) -> list[tuple[str, str, str]]:
        """Each active filter as (name, value, the link that removes it)."""
        names = {"lang": "language", "source": "source", "label": "label", "theme": "theme", "country": "country",
                 "org": "organisation", "infra": "infrastructure", "person": "person"}
        out = [(names[key], str(value), self.toggle(key, value)) for key in names for value in self.raw[key]]
        for key, name in (("since", "since"), ("until", "until"), ("min_score", "min score"), ("story", "story"),
                          ("added_since", "added since")):
            if self.raw[key] not in (None, ""):
                out.append((name, str(self.raw[key]), self.link(**{key: None, "offset": None})))
        return out

    def cleared(self) -> str:
        """The search without any filter (the words and the order kept)."""
        return self.link(**{key: [] if isinstance(self.raw[key], list) else None
                            for key in ("lang", "source", "label", "theme", "country", "org", "infra", "person",
                                        "since", "until", "min_score", "story", "added_since")})

    def export_link(self, format: str) -> str:
        """This search as a CSV or JSON Lines download."""
        return "/api/export" + self.link(format=format)[1:]

    def toggle(self, key: str, value: str) -> str:
        """The link that adds or removes one facet value."""
        current = list(self.raw[key])
        return self.link(**{key: [v for v in current if v != value] if value in current else current + [value]})


@dataclass(frozen=True)
class FeedRow:
    """One line of the feeds page: the configured feed, its state and what it has stored."""

    feed_id: str
    name: str | None
    url: str | None
    language: str | None
    state: FeedState | None
    next_poll: datetime | None
    documents: int
    configured: bool


def search_link(saved: SavedSearch) -> str:
    """The search page URL that runs a saved search."""
    pairs: list[tuple[str, Any]] = [("q", saved.text)] if saved.text else []
    for key, values in (("lang", saved.languages), ("source", saved.sources), ("label", saved.labels),
                        ("theme", saved.themes), ("country", saved.countries), ("org", saved.organizations)):
        pairs.extend((key, v) for v in values)
    if saved.min_score is not None:
        pairs.append(("min_score", saved.min_score))
    return "/?" + urlencode(pairs)


def create_app(settings: Settings, store_factory: Callable[[], Store] | None = None,
               allowed_hosts: Sequence[str] = ()) -> FastAPI:
    """The web application over the store the settings name (answering to `allowed_hosts` too)."""
    token = settings.web_token.get_secret_value() if settings.web_token else None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"ENERGYWATCH_WEB_TOKEN has {len(token)} characters: use at least {MIN_TOKEN_LENGTH} random "
                          "ones, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(24))'`")
    store = (store_factory or (lambda: open_store(settings.store)))()
    allowed_hosts = (*settings.web_allowed_hosts, *allowed_hosts)
    app = FastAPI(title="energywatch", version="1", description="Search and monitor energy-security news.",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    templates = Jinja2Templates(directory=str(files("energywatch.web") / "templates"))
    templates.env.filters.update(href=safe_href, dir=text_dir, marked=marked, name_of=name_of, when=when,
                                 part=lambda value: quote(str(value), safe=""))
    templates.env.globals.update(colours=LABEL_COLOURS, images=settings.web_remote_images, kinds=ENTITY_KINDS)
    csp = CSP_WITH_IMAGES if settings.web_remote_images else CSP
    app.mount("/static", StaticFiles(directory=str(files("energywatch.web") / "static")), name="static")
    # Swagger UI 5 (OpenAPI 3.1) from the fastapi-offline package, not a CDN, started by a script file of
    # ours: FastAPI's own docs page loads it from jsDelivr with an inline script, which this UI's CSP blocks
    app.mount("/api/docs/assets", StaticFiles(directory=str(files("fastapi_offline") / "static")), name="swagger-ui")

    hosts = {h.lower().strip("[]") for h in allowed_hosts}
    # the cookie carries a value derived from the token, never the token itself
    session = hmac.new(token.encode(), b"energywatch web session", hashlib.sha256).hexdigest() if token else ""
    guesses: dict[str, deque[float]] = defaultdict(deque)

    def refuse(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            response: Response = JSONResponse({"detail": message}, status_code=status, headers=headers)
        else:
            response = HTMLResponse(f"<!doctype html><title>energywatch</title><p>{escape(message)}</p>",
                                    status_code=status, headers=headers)
        return _secured(response, no_store=True, csp=csp)

    @app.middleware("http")
    async def security(request: Request, call_next: Callable) -> Response:
        host = _host_name(request.headers.get("host", ""))
        if host not in hosts:
            # a page elsewhere can point its own name at 127.0.0.1 (DNS rebinding) and read this UI
            # through the analyst's browser: only the names this UI is served under are answered
            return refuse(request, 400, f"this UI does not answer to the host name {host!r}; add it to "
                                        "ENERGYWATCH_WEB_ALLOWED_HOSTS (or serve --allowed-host) if it is yours")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # a page elsewhere may post a form here through the analyst's browser (cross-site request
            # forgery): browsers say where a request comes from, and only this UI's own pages may change things
            # (Sec-Fetch-Site first: under this UI's Referrer-Policy: no-referrer, Chromium sends even a
            # same-origin form's Origin as "null")
            site, origin = request.headers.get("sec-fetch-site"), request.headers.get("origin")
            if site is not None:
                same = site in ("same-origin", "none")
            elif origin is not None:
                same = origin != "null" and _host_name(urlsplit(origin).netloc) == host
            else:
                same = True  # not a browser (curl, a script): browsers send one of the two with every POST
            if not same:
                return refuse(request, 403, f"a request from {(origin or site or '?')[:100]!r} may not change "
                                            "this UI's data: only its own pages may")
        if token and request.url.path != "/static/style.css":
            client = request.client.host if request.client else "?"
            now = time.monotonic()
            recent = guesses[client]
            while recent and now - recent[0] > GUESS_WINDOW:
                recent.popleft()
            if len(recent) >= MAX_GUESSES:
                wait = int(GUESS_WINDOW - (now - recent[0])) + 1
                return refuse(request, 429, f"too many wrong tokens from {client}: try again in {wait} s",
                              {"Retry-After": str(wait)})
            scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
            offered = request.query_params.get("token")
            good = (scheme.lower() == "bearer" and _same(credentials.strip(), token)) \
                or (offered is not None and _same(offered, token)) \
                or _same(request.cookies.get(SESSION_COOKIE, ""), session)
            if not good:
                recent.append(now)
                return refuse(request, 401, "an access token is required: send Authorization: Bearer TOKEN, "
                                            "or open the UI once with ?token=TOKEN",
                              {"WWW-Authenticate": 'Bearer realm="energywatch"'})
            recent.clear()
            if offered is not None:
                # the token leaves the address bar and the history at once: a cookie carries the session
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + ("?" + urlencode(rest) if rest else "")
                redirect: Response = RedirectResponse(target, status_code=303)
                redirect.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict",
                                    secure=request.url.scheme == "https", path="/")
                return _secured(redirect, no_store=True, csp=csp)
        response = await call_next(request)
        return _secured(response, no_store=bool(token), csp=csp)

    @app.exception_handler(EnergywatchError)
    async def store_error(request: Request, exc: EnergywatchError) -> Response:
        status = 503 if "unavailable" in type(exc).__name__.lower() else 400
        return error_page(request, status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_page(request, exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
                             for e in exc.errors())
        return error_page(request, 422, f"the request is not valid: {problems}", json_detail=exc.errors())

    def error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None,
                   json_detail: Any = None) -> Response:
        """JSON for the API; for a page, a page that keeps the search form and says what to fix."""
        if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
            return JSONResponse({"detail": jsonable_encoder(json_detail) if json_detail is not None else message},
                                status_code=status, headers=headers)
        raw = {k: request.query_params.get(k, "") for k in ("q", "since", "until")}
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": message, "raw": raw},
                                          status_code=status, headers=headers)

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context)

    # JSON API ----------------------------------------------------------------------------------------
    @app.get("/api/search", response_model=SearchResult, tags=["api"])
    def api_search(params: Annotated[SearchParams, Depends()]) -> SearchResult:
        """Search: the same parameters and results as the search page."""
        return store.search(params.query)

    @app.get("/api/export", tags=["api"], response_class=StreamingResponse,
             responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}})
    def api_export(
        params: Annotated[SearchParams, Depends()],
        format: Annotated[Literal["csv", "jsonl"], Query(description="csv or jsonl (JSON Lines)")] = "csv",
        fields: Annotated[list[str], Query(max_length=20, description=f"of: {', '.join(export.FIELDS)}")] = [],  # noqa: B006
        rows: Annotated[int, Query(ge=1, le=export.MAX_ROWS)] = export.MAX_ROWS,
    ) -> StreamingResponse:
        """The search as a file, streamed: chosen fields (no full text unless `fields=text`), up to 10,000 rows."""
        try:
            chosen = export.check_fields(fields)
        except ConfigError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        found = export.hits(store, params.query, rows)
        body = export.as_csv(found, chosen) if format == "csv" else export.as_jsonl(found, chosen)
        media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
        name = f"energywatch-{datetime.now(timezone.utc):%Y%m%d-%H%M}.{format}"
        return StreamingResponse(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/api/documents/{doc_id}", response_model=Document, tags=["api"])
    def api_document(doc_id: Annotated[str, Path(max_length=64)]) -> Document:
        """One stored document."""
        doc = store.get_document(doc_id)
        if doc is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id}")
        return doc

    def feed_states() -> list[FeedState]:
        # a private feed's URL carries its password or API key: no UI user sees it
        states = []
        for state in store.get_feed_states().values():
            urls = [u for u in (state.url, state.discovered_url) if u]
            states.append(state.model_copy(update={
                "url": redact_url(state.url),
                "discovered_url": redact_url(state.discovered_url) if state.discovered_url else None,
                "last_error": redact_text(state.last_error, urls) if state.last_error else None,
                "disabled_reason": redact_text(state.disabled_reason, urls) if state.disabled_reason else None}))
        return states

    @app.get("/api/feeds", response_model=list[FeedState], tags=["api"])
    def api_feeds() -> list[FeedState]:
        """Every feed's last known state (credentials in feed URLs hidden)."""
        return sorted(feed_states(), key=lambda s: s.feed_id)

    @app.get("/api/stats", response_model=StoreStats, tags=["api"])
    def api_stats() -> StoreStats:
        """Counts of documents, stories and feeds."""
        return store.stats()

    @app.get("/api/alerts", response_model=list[Alert], tags=["api"])
    def api_alerts(limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                   rule: Annotated[str | None, Query(max_length=70)] = None,
                   status: Literal["pending", "sent"] | None = None,
                   channel: Annotated[str | None, Query(max_length=64)] = None) -> list[Alert]:
        """Alerts, newest first, optionally of one rule, status or channel."""
        return store.alert_history(limit, offset, rule=rule, status=status, channel=channel)

    def alert_channels() -> list[str]:
        """The channels a saved search may alert on: those of the rules file."""
        if not settings.alerts_file.exists():
            return []
        try:
            return sorted(load_rules(settings.alerts_file).channels)
        except ConfigError as exc:  # a broken rules file must not take the search page down with it
            log.warning("saved searches cannot alert: %s", exc)
            return []

    def keep_search(name: str, params: SearchParams, channels: Sequence[str]) -> SavedSearch:
        known = alert_channels()
        unknown = [c for c in channels if c not in known]
        if unknown:
            raise HTTPException(status_code=422, detail=f"unknown alert channel(s) {', '.join(unknown)}: the rules file "
                                f"{settings.alerts_file} defines {', '.join(known) or 'none'}")
        q = params.query  # read already: an unreadable query never reaches the store
        try:
            saved = SavedSearch(name=name, text=q.text, languages=q.languages, sources=q.sources,
                                labels=q.labels, themes=q.themes, countries=q.countries,  # type: ignore[arg-type]
                                organizations=q.organizations, min_score=q.min_score, channels=tuple(channels),
                                created_at=datetime.now(timezone.utc))
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=f"a saved search's name is 1–58 letters, digits, '.', '_' or "
                                f"'-', starting with a letter or digit: {name[:80]!r} is not") from exc
        store.save_search(saved)
        return saved

    @app.get("/api/saved", response_model=list[SavedSearch], tags=["api"])
    def api_saved() -> list[SavedSearch]:
        """Every saved search."""
        return store.saved_searches()

    @app.put("/api/saved/{name}", response_model=SavedSearch, tags=["api"])
    def api_save(name: Annotated[str, Path(max_length=58)], params: Annotated[SearchParams, Depends()],
                 channel: Annotated[list[str], Query(max_length=10, description="alert on these channels")] = []  # noqa: B006
                 ) -> SavedSearch:
        """Save the search these parameters describe under a name (replacing one of that name); with
        `channel`, every new story it matches raises an alert there."""
        return keep_search(name, params, channel)

    @app.delete("/api/saved/{name}", tags=["api"])
    def api_unsave(name: Annotated[str, Path(max_length=58)]) -> dict[str, str]:
        """Forget a saved search (and stop its alerts)."""
        if not store.delete_search(name):
            raise HTTPException(status_code=404, detail=f"no saved search {name!r}")
        return {"deleted": name}

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>energywatch API</title>'
            '<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head><body><div id="swagger-ui"></div>'
            '<script src="/api/docs/assets/swagger-ui-bundle.js"></script>'
            '<script src="/static/api-docs.js"></script></body></html>')

    # pages -------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, params: Annotated[SearchParams, Depends()]) -> HTMLResponse:
        result = store.search(params.query)
        chart = timeline_svg(store.timeline(params.query.model_copy(update={"limit": 1})))
        now = datetime.now(timezone.utc)
        baseline, last = visit_times(request.cookies.get(VISIT_COOKIE), now)
        if last is not None and now - last > VISIT_GAP:
            baseline = last  # a new visit: "new" is what came since the previous one's last page
        new_count = 0
        if baseline is not None:
            new_count = store.search(params.query.model_copy(update={"added_since": baseline, "limit": 1, "offset": 0,
                                                                     "facets": False})).total
        response = page(request, "search.html", result=result, params=params, chart=chart, stats=store.stats(),
                        baseline=baseline, new_count=new_count, channels=alert_channels())
        # first visit: everything is new from now on; the cookie holds no more than two times
        response.set_cookie(VISIT_COOKIE, f"{(baseline or now).isoformat()}|{now.isoformat()}",
                            max_age=400 * 24 * 3600, httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https")
        return response

    @app.post("/saved", include_in_schema=False)
    def save_page(params: Annotated[SearchParams, Depends()], name: Annotated[str, Form(max_length=58)],
                  channel: Annotated[list[str], Form()] = []) -> Response:  # noqa: B006
        keep_search(name.strip(), params, channel)
        return RedirectResponse(f"/saved?kept={quote(name.strip())}", status_code=303)

    @app.post("/saved/{name}/delete", include_in_schema=False)
    def unsave_page(name: Annotated[str, Path(max_length=58)]) -> Response:
        if not store.delete_search(name):
            raise HTTPException(status_code=404, detail=f"no saved search {name!r}")
        return RedirectResponse("/saved", status_code=303)

    @app.get("/saved", response_class=HTMLResponse, include_in_schema=False)
    def saved_page(request: Request, kept: Annotated[str | None, Query(max_length=58)] = None) -> HTMLResponse:
        day_ago = datetime.now(timezone.utc) - timedelta(days=1)
        rows = []
        for saved in store.saved_searches():
            fresh = store.search(saved.query(added_since=day_ago, limit=1, facets=False)).total
            rows.append((saved, search_link(saved), fresh))
        return page(request, "saved.html", rows=rows, kept=kept, channels=alert_channels(),
                    rules_file=settings.alerts_file)

    # {value:path}: a name may hold a "/" (Druzhba/Friendship), which the server decodes before routing
    @app.get("/entity/{kind}/{value:path}", response_class=HTMLResponse, include_in_schema=False)
    def entity_page(request: Request, kind: Literal["org", "country", "infra", "person", "theme"],
                    value: Annotated[str, Path(max_length=200)]) -> HTMLResponse:
        field, name = ENTITY_KINDS[kind]
        value = value.upper() if kind == "country" else value
        query = SearchQuery.model_validate({field: (value,), "sort": "date", "limit": 20})
        result = store.search(query)
        if not result.total:
            raise HTTPException(status_code=404, detail=f"no stored story mentions the {name} {value!r}")
        chart = timeline_svg(store.timeline(query))
        return page(request, "entity.html", kind=kind, kind_name=name, value=value, result=result, chart=chart,
                    search="/?" + urlencode([(kind, value)]))

    @app.get("/doc/{doc_id}", response_class=HTMLResponse, include_in_schema=False)
    def document_page(request: Request, doc_id: str) -> HTMLResponse:
        doc = store.get_document(doc_id)
        if doc is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id}")
        copies = store.search(SearchQuery(story_id=doc.story_id, group_stories=False, limit=50, facets=False)).hits
        body = highlight_evidence(doc.text, [e.sentence for e in doc.relevance.evidence if not e.in_title])
        others = [c.document for c in copies if c.document.id != doc.id]
        return page(request, "document.html", doc=doc, body=body, copies=others)

    @app.get("/story/{story_id}", response_class=HTMLResponse, include_in_schema=False)
    def story_page(request: Request, story_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
        found = store.search(SearchQuery(story_id=story_id, group_stories=False, limit=STORY_COPIES, facets=False,
                                         sort="date"))
        if not found.hits:
            raise HTTPException(status_code=404, detail=f"no story {story_id}")
        # oldest first: the first publisher heads the list
        copies = sorted((h.document for h in found.hits),
                        key=lambda d: (d.published_at is None, d.published_at or datetime.min.replace(tzinfo=timezone.utc)))
        languages: dict[str, int] = defaultdict(int)
        for copy in copies:
            languages[copy.language or "?"] += 1
        days: dict[tuple[str, str], int] = defaultdict(int)
        for copy in copies:
            if copy.published_at:
                days[(copy.published_at.date().isoformat(), copy.relevance.label)] += 1
        chart = timeline_svg([TimelinePoint(day=d, label=label, stories=n) for (d, label), n in sorted(days.items())])
        return page(request, "story.html", copies=copies, first=copies[0], chart=chart,
                    sources=sorted({c.source for c in copies}), truncated=found.total > len(copies),
                    languages=sorted(languages.items(), key=lambda kv: (-kv[1], kv[0])))

    @app.get("/feeds", response_class=HTMLResponse, include_in_schema=False)
    def feeds_page(request: Request) -> HTMLResponse:
        states = {s.feed_id: s for s in feed_states()}
        try:
            configured = {f.id: f for f in load_feeds(settings.feeds_file)}
        except ConfigError as exc:
            configured, problem = {}, str(exc)
        else:
            problem = ""
        counts = store.documents_per_feed()
        rows = []
        for feed_id in sorted(set(states) | set(configured)):
            feed, state = configured.get(feed_id), states.get(feed_id)
            following = None
            if feed is not None and state is not None and state.last_polled_at and not state.disabled and feed.enabled:
                following = state.last_polled_at + poll_interval(feed, state, settings.default_interval_minutes)
            rows.append(FeedRow(feed_id=feed_id, name=feed.name if feed else None,
                                url=redact_url(feed.url) if feed else (state.url if state else None),
                                language=feed.language if feed else None, state=state, next_poll=following,
                                documents=counts.get(feed_id, 0), configured=feed is not None))
        rows.sort(key=lambda r: (not (r.state and (r.state.last_error or r.state.disabled)), r.feed_id))
        return page(request, "feeds.html", rows=rows, problem=problem, feeds_file=settings.feeds_file)

    @app.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
    def alerts_page(request: Request, rule: Annotated[str | None, Query(max_length=70)] = None,
                    status: Literal["pending", "sent", ""] = "", channel: Annotated[str | None, Query(max_length=64)] = None,
                    offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> HTMLResponse:
        per_page = 50
        # one more than a page: whether a next page exists, without counting them all
        found = store.alert_history(per_page + 1, offset, rule=rule or None, status=status or None,
                                    channel=channel or None)
        chosen = {"rule": rule or "", "status": status, "channel": channel or ""}

        def link(**changes: Any) -> str:
            merged = {**chosen, **changes}
            return "/alerts?" + urlencode({k: v for k, v in merged.items() if v not in ("", None, 0)})

        return page(request, "alerts.html", alerts=found[:per_page], chosen=chosen, offset=offset, per_page=per_page,
                    more=len(found) > per_page, link=link)

    app.state.store = store
    return app



__all__ = ["create_app", "safe_href", "text_dir", "timeline_svg"]
