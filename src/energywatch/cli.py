"""Command line: energywatch run / search / feeds check / stats (typer + rich)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from energywatch.config import Settings, load_feeds, load_settings
from energywatch.errors import ConfigError, EnergywatchError
from energywatch.models import Feed, RunSummary, SearchQuery, SearchResult
from energywatch.snippets import Snippet, render_marked
from energywatch.store import redact
from energywatch.timeparse import parse_since, parse_until

app = typer.Typer(help="Multilingual news monitoring for energy security.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
feeds_app = typer.Typer(help="Inspect and validate feed lists.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
eval_app = typer.Typer(help="Measure quality against labelled data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
alerts_app = typer.Typer(help="Alert rules, preview, delivery and history.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
kibana_app = typer.Typer(help="Kibana saved objects: data view, saved searches, dashboard.", no_args_is_help=True)
app.add_typer(kibana_app, name="kibana")
es_app = typer.Typer(help="Elasticsearch: set up or migrate the indices (as an administrator).", no_args_is_help=True)
app.add_typer(es_app, name="es")

T = TypeVar("T")
console = Console()
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and logs

FeedsOpt = Annotated[Optional[Path], typer.Option(
    "--feeds", help="feed list (YAML); default ENERGYWATCH_FEEDS_FILE or config/feeds.yaml")]
StoreOpt = Annotated[Optional[str], typer.Option("--store", help="sqlite:///path.db or http(s)://user:pass@host:9200")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for machines")]


def _settings(feeds: Path | None = None, store: str | None = None) -> Settings:
    return load_settings(feeds_file=feeds, store=store)


def _with_store(store_url: str, action: Callable[[Any], T]) -> T:
    """Open the store, run one action on it, close it; store and config errors end the command clearly."""
    from energywatch.store import open_store

    try:
        backend = open_store(store_url)
        try:
            return action(backend)
        finally:
            backend.close()
    except EnergywatchError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


def _fail(exc: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code=2)


class RichProgress:
    """Progress bars for feeds and articles."""

    def __init__(self, progress: Progress) -> None:
        self._p = progress
        self._feeds = progress.add_task("feeds", total=0)
        self._items = progress.add_task("articles", total=0)

    def feeds_planned(self, count: int) -> None:
        """Set the number of feeds."""
        self._p.update(self._feeds, total=count)

    def feed_done(self, feed: Feed, status: str) -> None:
        """Advance the feed bar."""
        self._p.advance(self._feeds)

    def items_planned(self, count: int) -> None:
        """Grow the article bar."""
        task = self._p.tasks[self._items]
        self._p.update(self._items, total=(task.total or 0) + count)

    def item_done(self) -> None:
        """Advance the article bar."""
        self._p.advance(self._items)


@app.command()
def run(
    feeds: FeedsOpt = None,
    store: StoreOpt = None,
    due_only: Annotated[bool, typer.Option("--due-only", help="poll only feeds whose interval has elapsed")] = False,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="log every failure as it happens")] = False,
) -> None:
    """Poll the feeds once and store every new article."""
    from energywatch.pipeline import run_async
    from energywatch.store import open_store

    logging.basicConfig(level=logging.WARNING if verbose else logging.ERROR, format="%(levelname)s %(message)s")
    try:
        settings = _settings(feeds, store)
        feed_list = load_feeds(settings.feeds_file)
        backend = open_store(settings.store)
    except EnergywatchError as exc:
        _fail(exc)
    try:
        if as_json or not sys.stderr.isatty():
            summary = asyncio.run(_stoppable(run_async, settings, feed_list, backend))
        else:
            columns = (TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err, transient=True) as bar:
                summary = asyncio.run(_stoppable(run_async, settings, feed_list, backend, progress=RichProgress(bar)))
    except EnergywatchError as exc:
        if as_json and isinstance(exc.summary, RunSummary):
            console.print_json(exc.summary.model_dump_json())  # what was done before the store failed
        _fail(exc)
    finally:
        backend.close()
    if as_json:
        console.print_json(summary.model_dump_json())
    else:
        _print_summary(summary, settings)
    if summary.aborted:
        raise typer.Exit(code=1)


@app.command()
def watch(
    feeds: FeedsOpt = None,
    store: StoreOpt = None,
    metrics_port: Annotated[Optional[int], typer.Option(
        "--metrics-port", min=1, max=65535, help="serve Prometheus metrics at http://ADDRESS:PORT/metrics")] = None,
    metrics_address: Annotated[str, typer.Option("--metrics-address", help="address the metrics listen on")
                               ] = "127.0.0.1",
    log_json: Annotated[bool, typer.Option("--log-json", help="log one JSON object per line")] = False,
) -> None:
    """Watch the feeds without end: each polled on its own schedule, new stories stored and alerted at once.

    Busy feeds are polled every ENERGYWATCH_WATCH_MIN_INTERVAL_SECONDS (60), quiet ones less often, up to
    ENERGYWATCH_WATCH_MAX_INTERVAL_SECONDS (600). The feed list and the alert rules are reloaded when
    their files change. SIGTERM or Ctrl-C: what is extracted is stored, the rest stays for next time."""
    from energywatch.metrics import WatchMetrics
    from energywatch.store import open_store

    _configure_logging(log_json, logging.INFO)
    try:
        settings = _settings(feeds, store)
        load_feeds(settings.feeds_file)  # a broken list is an error now, not a log line later
        backend = open_store(settings.store)
    except EnergywatchError as exc:
        _fail(exc)
    metrics = WatchMetrics()
    if metrics_port:
        try:
            metrics.serve(metrics_port, metrics_address)
        except OSError as exc:
            backend.close()
            _fail(ConfigError(f"cannot serve metrics on {metrics_address}:{metrics_port}: {exc}"))
    try:
        asyncio.run(_watch(settings, backend, metrics))
    except EnergywatchError as exc:
        _fail(exc)
    finally:
        backend.close()


async def _watch(settings: Settings, backend: Any, metrics: Any) -> None:
    from energywatch.pipeline import make_pool
    from energywatch.watch import Watcher

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def first(sig: signal.Signals) -> None:
        logging.getLogger("energywatch.watch").warning(
            "%s: finishing what is extracted and delivering what is due, then stopping", sig.name)
        stop.set()
        for again in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(again)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, first, sig)
    pool = make_pool(settings)
    try:
        await Watcher(settings, backend, stop=stop, metrics=metrics).run(pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _JsonLines(logging.Formatter):
    """One JSON object per log record, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _configure_logging(as_json: bool, level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("energywatch").setLevel(level)


@app.command()
def status(
    feeds: FeedsOpt = None,
    store: StoreOpt = None,
    metrics_url: Annotated[Optional[str], typer.Option(
        "--metrics-url", help="also show a running watcher's counters, e.g. http://127.0.0.1:9464/metrics")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Each feed's last poll, last success, last new item and next poll as `watch` plans it; the outbox."""
    from energywatch.models import utcnow
    from energywatch.watch import feed_status

    try:
        settings = _settings(feeds, store)
        feed_list = load_feeds(settings.feeds_file)
    except EnergywatchError as exc:
        _fail(exc)

    def read(backend: Any) -> tuple[dict[str, Any], int, Any]:
        return backend.get_feed_states(), len(backend.due_alerts(utcnow() + timedelta(days=3650))), backend.stats()

    states, pending, stats = _with_store(settings.store, read)
    now = utcnow()
    rows = feed_status(feed_list, states, now, settings)
    counters = _watch_counters(metrics_url) if metrics_url else {}
    if as_json:
        console.print_json(json.dumps({"feeds": [r.model_dump(mode="json") for r in rows], "alerts_pending": pending,
                                       "documents": stats.documents, "watcher": counters}))
        return
    if counters:
        console.print("watcher: " + ", ".join(f"{name} {value:g}" for name, value in counters.items()))
    table = Table(title=f"energywatch status · {stats.documents:,} documents · {pending} alert(s) pending",
                  title_justify="left")
    for column in ("feed", "last poll", "last success", "last new item", "every", "next poll", "failing"):
        table.add_column(column)

    def ago(moment: datetime | None) -> str:
        return "—" if moment is None else _age(now - moment) + " ago"

    for row in rows:
        nxt = row.next_poll_at
        when = "disabled" if nxt is None else "due" if nxt <= now else "in " + _age(nxt - now)
        failing = f"{row.consecutive_failures}× {row.last_error or ''}"[:60] if row.consecutive_failures else ""
        table.add_row(row.feed, ago(row.last_polled_at), ago(row.last_success_at), ago(row.last_new_at),
                      _age(timedelta(seconds=row.interval_seconds)), when, escape(failing))
    console.print(table)


def _watch_counters(url: str) -> dict[str, float]:
    """A running watcher's energywatch_* samples from its Prometheus endpoint (histogram buckets left out)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(url, timeout=10).raise_for_status().text
    except httpx.HTTPError as exc:
        _fail(ConfigError(f"cannot read the watcher's metrics at {url}: {exc} (is `energywatch watch "
                          "--metrics-port` running?)"))
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("energywatch_") or sample.name.endswith(("_bucket", "_created")):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sample.labels.items())
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


async def _stoppable(run_async: Callable[..., Any], *args: Any, **kwargs: Any) -> RunSummary:
    """Run the pipeline; SIGTERM or Ctrl-C ends it cleanly, with its summary (a second one kills it)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def first(sig: signal.Signals) -> None:
        err.print(f"[yellow]{sig.name}:[/] finishing what is extracted, leaving the rest for the next run")
        stop.set()
        for again in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(again)  # the next one ends the process at once

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, first, sig)
    return await run_async(*args, stop=stop, **kwargs)


def _print_summary(s: RunSummary, settings: Settings) -> None:
    table = Table(title="energywatch run", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("feeds polled", s.feeds_polled), ("  not modified (304)", s.feeds_not_modified),
        ("  unchanged body", s.feeds_unchanged_body), ("  failed", s.feeds_failed),
        ("feeds skipped", s.feeds_skipped), ("  held by another run", s.feeds_busy),
        ("items seen", s.items_seen), ("  new", s.items_new), ("pages fetched", s.pages_fetched),
        ("pages failed", s.pages_failed), ("documents stored", s.documents_stored),
        ("  from feed summary", s.documents_from_summary),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    for stage, seconds in sorted(s.stage_seconds.items()):
        table.add_row(f"time {stage}" + ("" if stage == "total" else " (summed)"), f"{seconds:.2f} s")
    console.print(table)
    if s.failures:
        failures = Table(title=f"{len(s.failures)} failure(s)", title_justify="left")
        for col in ("stage", "feed", "url", "reason", "retry"):
            failures.add_column(col, overflow="fold")
        for f in s.failures[:50]:
            failures.add_row(f.stage, f.feed_id or "", escape(f.url), escape(f.reason), "yes" if f.transient else "no")
        console.print(failures)
        if len(s.failures) > 50:
            console.print(f"… and {len(s.failures) - 50} more (use --json for all)")
    if s.aborted:
        console.print(f"[yellow]ended early:[/] {escape(s.aborted)}")
    console.print(f"store: {escape(redact(settings.store))}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help='words, "a phrase", a OR b, (groups), -excluded, prefix*, title:word')] = "",
    lang: Annotated[Optional[list[str]], typer.Option("--lang", help="language code(s), e.g. ru")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", help="feed id or source name")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="7d, 12h, 2w or an ISO date")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="ISO date or relative time")] = None,
    label: Annotated[Optional[list[str]], typer.Option("--label", help="core, related or none")] = None,
    min_score: Annotated[Optional[float], typer.Option("--min-score", min=0.0, max=1.0)] = None,
    theme: Annotated[Optional[list[str]], typer.Option("--theme")] = None,
    country: Annotated[Optional[list[str]], typer.Option("--country", help="ISO 3166 alpha-2, e.g. AZ")] = None,
    org: Annotated[Optional[list[str]], typer.Option("--org", help="organisation id, e.g. NATO")] = None,
    infrastructure: Annotated[Optional[list[str]], typer.Option("--infrastructure")] = None,
    person: Annotated[Optional[list[str]], typer.Option("--person")] = None,
    story: Annotated[Optional[str], typer.Option("--story", help="only the copies of one story")] = None,
    all_copies: Annotated[bool, typer.Option("--all-copies", help="one line per document, not per story")] = False,
    sort: Annotated[str, typer.Option("--sort", help="relevance or date")] = "relevance",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 10,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search stored documents (stemmed per language: an inflected form finds the others)."""

    if sort not in {"relevance", "date"}:
        _fail(ConfigError(f"--sort must be relevance or date, not {sort!r}"))
    try:
        settings = _settings(store=store)
        q = SearchQuery(
            text=query, languages=tuple(lang or ()), sources=tuple(source or ()), since=parse_since(since),
            until=parse_until(until), labels=tuple(label or ()), min_score=min_score, themes=tuple(theme or ()),
            countries=tuple(c.upper() for c in country or ()), organizations=tuple(org or ()),
            infrastructure=tuple(infrastructure or ()), people=tuple(person or ()), story_id=story,
            group_stories=not all_copies and story is None, sort=sort, limit=limit,  # type: ignore[arg-type]
        )
    except EnergywatchError as exc:
        _fail(exc)
    result = _with_store(settings.store, lambda backend: backend.search(q))
    if as_json:
        console.print_json(result.model_dump_json())
        return
    _print_result(result)


def _print_result(result: SearchResult) -> None:
    more = "" if result.total_exact else "+ (counted among the newest matches; narrow the search for an exact count)"
    console.print(f"[bold]{result.total:,}{more}[/] match(es)")
    for n, hit in enumerate(result.hits, start=1):
        d = hit.document
        when = d.published_at.strftime("%Y-%m-%d") if d.published_at else "undated"
        copies = f" · {hit.copies} copies" if hit.copies > 1 else ""
        rel = f" · {d.relevance.label} {d.relevance.score:.2f}" if d.relevance.label != "none" else ""
        console.print(f"\n[bold]{n}. {escape(d.title or '(no title)')}[/]")
        console.print(f"   [dim]{escape(d.source)} · {d.language or '?'} · {when}{rel}{copies} · {escape(d.url)}[/]")
        snippet = render_marked(Snippet(hit.snippet, hit.highlights), "[bold yellow]", "[/]", escape)
        console.print(f"   {snippet}")
    for name, values in result.facets.items():
        if values:
            console.print(f"[dim]{name}:[/] " + ", ".join(f"{escape(v.value)} ({v.count})" for v in values[:10]))
    if result.facets and result.facets_sample:
        console.print(f"[dim]facet counts estimated from a sample of the {result.facets_sample:,} newest matches[/]")


@app.command()
def stats(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Counts of stored documents, stories and feeds."""
    try:
        settings = _settings(store=store)
    except EnergywatchError as exc:
        _fail(exc)
    result = _with_store(settings.store, lambda backend: backend.stats())
    if as_json:
        console.print_json(result.model_dump_json())
        return
    table = Table(title="energywatch store", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    fmt = lambda d: d.strftime("%Y-%m-%d %H:%M") if isinstance(d, datetime) else "—"  # noqa: E731
    for name, value in [
        ("documents", result.documents), ("stories", result.stories), ("feeds", result.feeds),
        ("feeds failing", result.feeds_failing), ("feeds disabled", result.feeds_disabled),
        ("by language", _dict(result.by_language)), ("by label", _dict(result.by_label)),
        ("by extraction", _dict(result.by_extraction)), ("oldest published", fmt(result.oldest_published)),
        ("newest published", fmt(result.newest_published)), ("last indexed", fmt(result.last_indexed)),
    ]:
        table.add_row(name, str(value))
    if result.analyzers:
        table.add_row("text analysis", _analysis(result.analyzers, "language analyzers"))
    console.print(table)


def _dict(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "—"


@feeds_app.command("check")
def feeds_check(
    feeds: FeedsOpt = None,
    offline: Annotated[bool, typer.Option("--offline", help="validate the file only; fetch nothing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate a feed list and report each feed's health (reachable, format, items, last modified, error)."""
    from energywatch.health import check_feeds

    try:
        settings = _settings(feeds)
        feed_list = load_feeds(settings.feeds_file)
    except EnergywatchError as exc:
        _fail(exc)
    if offline:
        console.print(f"{settings.feeds_file}: {len(feed_list)} feed(s), valid")
        return
    with console.status(f"checking {len(feed_list)} feeds…") if not as_json else _nullcontext():
        reports = asyncio.run(check_feeds(settings, feed_list))
    if as_json:
        console.print_json(json.dumps([r.__dict__ for r in reports], default=str))
    else:
        table = Table(title=f"{settings.feeds_file}: {len(feed_list)} feeds", title_justify="left")
        for col in ("feed", "lang", "reachable", "format", "items", "last modified", "error"):
            table.add_column(col, overflow="fold")
        for r in reports:
            table.add_row(r.feed_id, r.language or "", "[green]yes[/]" if r.reachable else "[red]no[/]",
                          r.format or "", str(r.items) if r.items is not None else "", r.last_modified or "",
                          escape(r.error or ""))
        console.print(table)
    if not all(r.healthy for r in reports):
        raise typer.Exit(code=1)


@eval_app.command("relevance")
def eval_relevance(
    files: Annotated[list[Path], typer.Argument(help="JSONL file(s) with text, title, lang, label (core/related/none)")],
    as_json: JsonOpt = False,
    fit: Annotated[bool, typer.Option("--fit", help="also fit the scoring weights and threshold on all the files")] = False,
    cv: Annotated[int, typer.Option("--cv", min=0, max=20,
                                    help="k-fold cross-validation over the files together (0: none)")] = 0,
    profile: Annotated[Optional[Path], typer.Option("--profile", help="concept profile to evaluate")] = None,
) -> None:
    """Precision / recall / F1 per label and per language, and the confusion matrix, for each file;
    with --cv, the same figures held out (each text scored by weights fitted without it)."""
    from energywatch.evaluation import cross_validate, evaluate, fit_scoring, read_labelled

    profile_path = str(profile) if profile else None
    try:
        labelled = [read_labelled(f) for f in files]
        reports = [evaluate(items, profile_path=profile_path) for items in labelled]
        validated = cross_validate(labelled, profile_path=profile_path, folds=cv) if cv >= 2 else None
        fitted = fit_scoring([i for items in labelled for i in items], profile_path=profile_path,
                             l2=validated.l2 if validated else 0.03) if fit else None
    except EnergywatchError as exc:
        _fail(exc)
    if as_json:
        data = json.loads(reports[0].to_json()) if len(files) == 1 else {}
        if len(files) > 1:
            data["files"] = {str(f): json.loads(r.to_json()) for f, r in zip(files, reports)}
        if validated:
            data["cross_validated"] = {"folds": validated.folds, "l2": validated.l2,
                                       "core_f1_by_l2": {str(k): round(v, 4) for k, v in validated.by_l2.items()},
                                       **{str(f): json.loads(r.to_json()) for f, r in zip(files, validated.reports)},
                                       "all": json.loads(validated.reports[-1].to_json())}
        if fitted:
            data["fitted_weights"] = {"bias": fitted.bias, **fitted.weights, "core_threshold": fitted.core_threshold}
        console.print_json(json.dumps(data, ensure_ascii=False))
        return
    for file, report in zip(files, reports):
        _print_report(f"{file}: {report.items} items", report)
    if validated:
        for name, report in zip([*map(str, files), "all files"], validated.reports):
            _print_report(f"{name}, cross-validated ({validated.folds} folds, L2 {validated.l2})", report)
        console.print("core F1 held out by L2: " + ", ".join(f"{k}: {v:.3f}" for k, v in validated.by_l2.items()))
    if fitted:
        console.print(f"fitted scoring (put it under scoring: in the profile): bias {fitted.bias}, weights "
                      f"{fitted.weights}, core_threshold {fitted.core_threshold} (L2 {fitted.l2})")


def _print_report(title: str, report: Any) -> None:
    from energywatch.evaluation import LABELS

    table = Table(title=title, title_justify="left")
    for col in ("language", "label", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="right" if col not in ("language", "label") else "left")
    for label, sc in report.per_label.items():
        table.add_row("all", label, f"{sc.precision:.3f}", f"{sc.recall:.3f}", f"[bold]{sc.f1:.3f}[/]", str(sc.support))
    for lang, scores in report.per_language.items():
        for label, sc in scores.items():
            if sc.support or sc.precision:
                table.add_row(lang, label, f"{sc.precision:.3f}", f"{sc.recall:.3f}", f"{sc.f1:.3f}", str(sc.support))
    console.print(table)
    matrix = Table(title="confusion (rows: gold, columns: predicted)", title_justify="left")
    matrix.add_column("gold")
    for label in LABELS:
        matrix.add_column(label, justify="right")
    for gold in LABELS:
        matrix.add_row(gold, *(str(report.confusion[gold][p]) for p in LABELS))
    console.print(matrix)
    console.print(f"none labelled core: {report.none_as_core_rate:.1%}")


def _read_text(path: Path) -> str:
    """A UTF-8 text file, or a clear error."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


@app.command()
def explain(
    target: Annotated[Optional[str], typer.Argument(help="a stored document's id or URL")] = None,
    text: Annotated[Optional[Path], typer.Option("--text", help="explain this text file instead ('-': stdin)",
                                                 allow_dash=True)] = None,
    title: Annotated[str, typer.Option("--title", help="the headline of --text")] = "",
    lang: Annotated[Optional[str], typer.Option("--lang", help="the language of --text, e.g. ru")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Why a document scored as it did: features, concept contributions, evidence for and against."""
    from energywatch.enrich import enrich
    from energywatch.enrich.profile import load_profile
    from energywatch.models import Document, utcnow
    from energywatch.store import open_store
    from energywatch.urls import canonical_url, document_id

    try:
        settings = _settings(store=store)
        if text is not None:
            body = sys.stdin.read() if str(text) == "-" else _read_text(text)
            doc = Document(id="-", url=str(text), canonical_url=str(text), domain="", feed_id="-", source="--text",
                           title=title, text=body, language=lang, fetched_at=utcnow())
        elif target is None:
            raise ConfigError("give a stored document's id or URL, or --text FILE (with --title and --lang)")
        else:
            backend = open_store(settings.store)
            try:
                found = backend.get_document(target) or backend.get_document(document_id(canonical_url(target)))
            finally:
                backend.close()
            if found is None:
                raise ConfigError(f"{target} is not in the store {redact(settings.store)}: give a stored document's "
                                  "id or URL (see `energywatch search --json`), or explain a text with --text FILE")
            doc = found
        result = enrich(doc.title, doc.text, doc.language,
                        profile_path=str(settings.profile_file) if settings.profile_file else None)
    except EnergywatchError as exc:
        _fail(exc)
    a = result.assessment
    if as_json:
        console.print_json(json.dumps({
            "id": doc.id, "url": doc.url, "language": doc.language,
            "relevance": json.loads(result.relevance.model_dump_json()),
            "stored_relevance": json.loads(doc.relevance.model_dump_json()),
            "features": a.features, "energy": a.energy, "security": a.security, "contributions": a.contributions,
            "entities": json.loads(result.entities.model_dump_json()),
        }, ensure_ascii=False))
        return
    r = result.relevance
    console.print(f"[bold]{escape(doc.title)}[/]\n[dim]{escape(doc.url)} · {doc.language or '?'}[/]")
    stored = text is None and doc.relevance != r
    console.print(f"label [bold]{r.label}[/], score {r.score:.3f} (energy evidence {a.energy}, security {a.security}"
                  + (f", against: {a.context}" if a.context else "") + ")"
                  + (f"; stored as {doc.relevance.label} {doc.relevance.score:.3f}" if stored else ""))
    console.print("features: " + ", ".join(f"{k} {v}" for k, v in a.features.items()))
    scoring = load_profile(str(settings.profile_file) if settings.profile_file else None).scoring
    terms = [(k, scoring.weights[k] * v) for k, v in a.features.items() if scoring.weights.get(k) and v]
    console.print(f"score = logistic({scoring.bias:+.2f} " + " ".join(f"{t:+.2f} {k}" for k, t in terms)
                  + f"), core from {scoring.core_threshold}")
    table = Table(title="evidence", title_justify="left")
    for col in ("concept", "axis", "weight", "term", "sentence"):
        table.add_column(col, overflow="fold")
    for ev in r.evidence:
        weight = a.contributions.get(f"concept:{ev.concept}", a.contributions.get(f"infra:{ev.concept}", 0))
        table.add_row(ev.concept, ev.axis, f"{weight:.2f}", escape(ev.term),
                      ("[title] " if ev.in_title else "") + escape(ev.sentence))
    console.print(table)
    console.print("themes: " + (", ".join(r.themes) or "—"))
    e = result.entities
    console.print(f"entities: countries {', '.join(e.countries) or '—'}; organisations {', '.join(e.organizations) or '—'}; "
                  f"infrastructure {', '.join(e.infrastructure) or '—'}; people {', '.join(e.people) or '—'}")


@app.command()
def rescore(store: StoreOpt = None) -> None:
    """Re-run relevance and entities over every stored document (after editing the concept profile)."""
    from energywatch.pipeline import rescore as rescore_documents
    from energywatch.store import open_store

    try:
        settings = _settings(store=store)
        backend = open_store(settings.store)
        try:
            with console.status("re-scoring…"):
                total, changed = rescore_documents(backend, settings)
        finally:
            backend.close()
    except EnergywatchError as exc:
        _fail(exc)
    console.print(f"re-scored {total} document(s), {changed} changed")


@app.command()
def prune(
    before: Annotated[str, typer.Option("--before", help="ISO date, or an age such as 365d")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation (cron, scripts)")] = False,
    store: StoreOpt = None,
) -> None:
    """Delete the documents published before a date (pending alerts for them go too; seen GUIDs stay)."""
    from energywatch.store import open_store

    try:
        settings = _settings(store=store)
        cutoff = parse_since(before)
        if cutoff is None:
            raise ConfigError("--before needs a date, e.g. 2025-01-01 or 365d")
        if not yes and not typer.confirm(f"Delete every document published before {cutoff:%Y-%m-%d %H:%M} UTC "
                                         f"from {redact(settings.store)}?"):
            raise typer.Exit(code=1)
        backend = open_store(settings.store)
        try:
            with console.status("pruning…") as status:
                removed = backend.prune(cutoff, progress=lambda n: status.update(f"pruning… {n:,} deleted"))
        finally:
            backend.close()
    except EnergywatchError as exc:
        _fail(exc)
    console.print(f"deleted {removed:,} document(s) published before {cutoff:%Y-%m-%d %H:%M} UTC")


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="the new file to write (never overwritten)")],
    store: StoreOpt = None,
) -> None:
    """Copy the SQLite store to a new file, consistent and safe while runs go on writing."""
    from energywatch.store import open_store
    from energywatch.store.sqlite import SQLiteStore

    try:
        settings = _settings(store=store)
        if not settings.store.startswith("sqlite:"):
            raise ConfigError("backup copies the embedded SQLite store; back up Elasticsearch with its snapshot API "
                              "(PUT _snapshot/<repository>/<name>, see docker/README.md)")
        backend = open_store(settings.store)
        assert isinstance(backend, SQLiteStore)
        try:
            with console.status(f"copying {backend.path} …"):
                size = backend.backup(target)
        finally:
            backend.close()
    except EnergywatchError as exc:
        _fail(exc)
    console.print(f"backup written to {target} ({size / 1e6:,.1f} MB); open it with --store sqlite:///{target}")


RulesOpt = Annotated[Optional[Path], typer.Option(
    "--rules", help="rules file; default ENERGYWATCH_ALERTS_FILE or config/alerts.yaml")]


@alerts_app.command("check")
def alerts_check(rules: RulesOpt = None, store: StoreOpt = None) -> None:
    """Validate a rules file (unknown fields, bad thresholds, unknown channels) and list the rules of saved
    searches that alert (kept in the store, created in the web UI)."""
    from energywatch.alerts.rules import SAVED_PREFIX, load_rules, with_saved_searches
    from energywatch.store import open_store

    try:
        settings = load_settings(alerts_file=rules, store=store)
        loaded = load_rules(settings.alerts_file)
        backend = open_store(settings.store)
        try:
            saved = backend.saved_searches()
        finally:
            backend.close()
    except EnergywatchError as exc:
        _fail(exc)
    merged = with_saved_searches(loaded, saved)
    for rule in merged.rules:
        origin = " [dim](saved search in the store)[/]" if rule.name.startswith(SAVED_PREFIX) else ""
        console.print(f"[green]ok[/] rule {escape(rule.name)}: {rule.mode}, labels {', '.join(rule.labels)}, "
                      f"channels {', '.join(rule.channels)}{f', query {escape(repr(rule.query))}' if rule.query else ''}"
                      f"{origin}")
    for search in saved:
        missing = [c for c in search.channels if c not in loaded.channels]
        if missing:
            err.print(f"[yellow]warning[/] saved search {escape(search.name)} names channel(s) the file does not "
                      f"define: {escape(', '.join(missing))} (those are skipped)")
    from_store = len(merged.rules) - len(loaded.rules)
    console.print(f"{settings.alerts_file}: {len(loaded.rules)} rule(s), {len(loaded.channels)} channel(s), valid"
                  + (f"; {from_store} more from saved searches" if from_store else ""))


@alerts_app.command("preview")
def alerts_preview(
    rule: Annotated[str, typer.Argument(help="rule name")],
    since: Annotated[str, typer.Option("--since", help="7d, 12h or an ISO date")] = "7d",
    rules: RulesOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What a rule would have sent for the stories stored since a time (one line per story)."""
    from energywatch.alerts.rules import load_rules, matches, with_saved_searches
    from energywatch.store import open_store

    try:
        settings = load_settings(alerts_file=rules, store=store)
        start = parse_since(since)
        backend = open_store(settings.store)
        try:
            loaded = load_rules(settings.alerts_file)
            chosen = with_saved_searches(loaded, backend.saved_searches()).rule(rule)
            result = backend.search(SearchQuery(since=start, labels=tuple(chosen.labels), limit=1000, sort="date",
                                                facets=False))
        finally:
            backend.close()
    except EnergywatchError as exc:
        _fail(exc)
    hits = [h for h in result.hits if matches(chosen, h.document)]
    if as_json:
        console.print_json(json.dumps([{"story_id": h.document.story_id, "title": h.document.title,
                                        "url": h.document.url, "score": h.document.relevance.score,
                                        "copies": h.copies} for h in hits], ensure_ascii=False))
        return
    console.print(f"rule [bold]{escape(rule)}[/] would have sent {len(hits)} stor{'y' if len(hits) == 1 else 'ies'} "
                  f"since {start:%Y-%m-%d %H:%M}Z ({chosen.mode}, to {', '.join(chosen.channels)})")
    for h in hits:
        d = h.document
        console.print(f"  {d.published_at:%Y-%m-%d} {d.relevance.score:.2f} {escape(d.title)} [dim]{escape(d.source)}"
                      f"{f' · {h.copies} copies' if h.copies > 1 else ''}[/]" if d.published_at else f"  {escape(d.title)}")


@alerts_app.command("send")
def alerts_send(rules: RulesOpt = None, store: StoreOpt = None) -> None:
    """Deliver every pending alert that is due (failed sends are retried later with back-off)."""
    from energywatch.alerts.outbox import deliver
    from energywatch.alerts.rules import load_rules
    from energywatch.models import utcnow
    from energywatch.store import open_store

    try:
        settings = load_settings(alerts_file=rules, store=store)
        loaded = load_rules(settings.alerts_file)
        backend = open_store(settings.store)
        try:
            report = deliver(backend, loaded, utcnow())
        finally:
            backend.close()
    except EnergywatchError as exc:
        _fail(exc)
    console.print(f"sent {report.messages_sent} message(s) for {report.alerts_sent} alert(s); "
                  f"{report.alerts_failed} failed (will retry), {report.alerts_held} held by quiet periods or digests")
    for line in report.errors[:20]:
        err.print(f"[red]failed[/] {escape(line)}")
    if report.alerts_failed:
        raise typer.Exit(code=1)


@alerts_app.command("history")
def alerts_history(limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 30, store: StoreOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Recent outbox entries: pending, sent, failed attempts."""
    try:
        settings = _settings(store=store)
    except EnergywatchError as exc:
        _fail(exc)
    history = _with_store(settings.store, lambda backend: backend.alert_history(limit))
    if as_json:
        console.print_json(json.dumps([json.loads(a.model_dump_json()) for a in history], ensure_ascii=False))
        return
    table = Table(title="alerts", title_justify="left")
    for col in ("created", "rule", "channel", "status", "tries", "title", "error"):
        table.add_column(col, overflow="fold")
    for a in history:
        table.add_row(f"{a.created_at:%Y-%m-%d %H:%M}", a.rule, a.channel, a.status, str(a.attempts),
                      escape(a.title[:80]), escape(a.last_error or ""))
    console.print(table)


def _analysis(analyzers: dict[str, str], counted: str) -> str:
    from energywatch.store.es_mapping import analyzer_summary

    stemmed, fallback = analyzer_summary(analyzers)
    return f"{len(stemmed)} {counted}; standard (no stemming) for {', '.join(fallback) or 'none'}"


def _es_store(store: str | None, command: str) -> Any:
    """The Elasticsearch store the settings name, opened (set up or migrated on the way); exits on errors."""
    from energywatch.store import open_store

    try:
        settings = _settings(store=store)
        if not settings.store.startswith(("http://", "https://")):
            raise ConfigError(f"`es {command}` needs an Elasticsearch store URL, not {settings.store.split(':', 1)[0]}:")
        return open_store(settings.store)
    except EnergywatchError as exc:
        _fail(exc)


@es_app.command("setup")
def es_setup(store: StoreOpt = None) -> None:
    """Create or migrate the index template, the documents index and its alias, and the state indices.

    Run it once as an administrator, and again after an upgrade; ingest, alerts and the web UI then
    work with users that may only read and write (see README, "Production"). A store URL with
    ?shards=N&replicas=N sets the indices' layout (replicas=0 on a single node).
    """
    from energywatch.store.elasticsearch import index_layout

    backend = _es_store(store, "setup")
    try:
        layout = index_layout(_settings(store=store).store)
        notes = backend.apply_layout() if layout else []
        analyzers = backend.analyzers()
    except EnergywatchError as exc:
        _fail(exc)
    finally:
        backend.close()
    console.print(f"[green]ready:[/] {backend.alias} → {backend.index}, {backend.feeds_index}, {backend.seen_index}, "
                  f"{backend.alerts_index}")
    if layout:
        console.print("layout: " + ", ".join(f"{name} {value}" for name, value in layout.items()))
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"language analyzers: {_analysis(analyzers, 'built in')}")


@es_app.command("reindex")
def es_reindex(
    to_version: Annotated[int, typer.Option("--to-version", help="the new index version, e.g. 2")],
    store: StoreOpt = None,
) -> None:
    """Copy every document into energywatch-documents-vN and swap the alias to it atomically."""
    backend = _es_store(store, "reindex")
    try:
        old, new, copied = backend.reindex(to_version)
    except EnergywatchError as exc:
        _fail(exc)
    finally:
        backend.close()
    console.print(f"[green]reindexed:[/] {copied} document(s) from {old} to {new}; {backend.alias} → {new}. "
                  f"{old} is kept: delete it once you have checked {new}.")


@kibana_app.command("setup")
def kibana_setup(
    kibana_url: Annotated[str, typer.Option("--kibana-url", envvar="ENERGYWATCH_KIBANA_URL", help="e.g. http://localhost:5601")],
    username: Annotated[Optional[str], typer.Option("--username", envvar="ENERGYWATCH_KIBANA_USERNAME")] = None,
    password: Annotated[Optional[str], typer.Option("--password", envvar="ENERGYWATCH_KIBANA_PASSWORD")] = None,
    space: Annotated[Optional[str], typer.Option("--space", help="Kibana space id (default space if omitted)")] = None,
    objects: Annotated[Optional[Path], typer.Option("--objects", help="NDJSON file to import")] = None,
) -> None:
    """Import the data view, saved searches and dashboard into Kibana, and report what was done."""
    from energywatch.kibana import default_objects_file, import_objects, saved_objects, to_ndjson

    path = objects or default_objects_file()
    try:
        if objects and not objects.exists():
            raise ConfigError(f"saved objects file {objects} does not exist")
        # an installed package has no docker/ folder: the same objects are built in memory then
        ndjson = path.read_bytes() if path.exists() else to_ndjson(saved_objects()).encode("utf-8")
        report = import_objects(kibana_url, ndjson, username=username, password=password, space=space)
    except EnergywatchError as exc:
        _fail(exc)
    for line in report.imported:
        console.print(f"[green]imported[/] {escape(line)}")
    for line in report.errors:
        err.print(f"[red]failed[/] {escape(line)}")
    console.print(f"{len(report.imported)} object(s) imported into {escape(kibana_url)}"
                  + (f", {len(report.errors)} failed" if report.errors else ""))
    if not report.success:
        raise typer.Exit(code=1)


@kibana_app.command("export")
def kibana_export(output: Annotated[Path, typer.Argument(help="where to write the NDJSON")]) -> None:
    """Write the saved objects as NDJSON (the file `kibana setup` imports)."""
    from energywatch.kibana import saved_objects, to_ndjson

    output.write_text(to_ndjson(saved_objects()), encoding="utf-8")
    console.print(f"wrote {output}")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="address to bind; anything but loopback needs a token")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    allowed_host: Annotated[Optional[list[str]], typer.Option(
        "--allowed-host", help="a host name the UI is reached under (a reverse proxy's), besides --host")] = None,
    store: StoreOpt = None,
) -> None:
    """Start the search and monitoring web UI (and its JSON API under /api) over the configured store."""
    import ipaddress

    import uvicorn

    from energywatch.web.app import create_app

    try:
        settings = _settings(store=store)
        literal = host.replace(".", "").isdigit() or ":" in host
        loopback = host == "localhost" or literal and ipaddress.ip_address(host).is_loopback
        if not loopback and settings.web_token is None:
            raise ConfigError(f"binding to {host} exposes the UI beyond this machine: set ENERGYWATCH_WEB_TOKEN "
                              "to an access token first (clients send it as Authorization: Bearer TOKEN or ?token=)")
        application = create_app(settings, allowed_hosts=[host, *(allowed_host or ())])
    except (EnergywatchError, ValueError) as exc:
        _fail(exc)
    console.print(f"energywatch UI on http://{host}:{port}/ (store {escape(redact(settings.store))}); Ctrl-C stops it")
    uvicorn.run(application, host=host, port=port, log_level="warning")


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def main() -> None:
    """Entry point for `python -m energywatch`."""
    app()
