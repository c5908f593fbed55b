"""Deliver the outbox: due alerts grouped into messages, sent, marked sent only on success."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from energywatch.alerts.channels import Message, send
from energywatch.alerts.rules import SAVED_PREFIX, RulesFile, retry_delay, with_saved_searches
from energywatch.errors import ConfigError, EnergywatchError, TransientError
from energywatch.models import Alert, SearchQuery
from energywatch.store.base import Store

log = logging.getLogger(__name__)
# how long a deliverer holds the alerts it is sending; one that dies mid-way gives them back then
CLAIM_LEASE = timedelta(minutes=5)


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    messages_sent: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0
    alerts_held: int = 0
    errors: list[str] = field(default_factory=list)
    # seconds from each sent alert's creation (its document stored) to its delivery
    latencies: list[float] = field(default_factory=list)


def _copies(store: Store, story_id: str) -> int:
    return store.search(SearchQuery(story_id=story_id, group_stories=False, limit=1, facets=False)).total or 1


def plan_messages(rules: RulesFile, due: list[Alert], last_sent: Mapping[tuple[str, str], datetime | None],
                  now: datetime) -> tuple[list[list[Alert]], list[Alert]]:
    """Group due alerts into messages; alerts in a rule's quiet period are held until it ends."""
    groups: dict[tuple[str, str], list[Alert]] = defaultdict(list)
    for alert in due:
        groups[(alert.rule, alert.channel)].append(alert)
    messages: list[list[Alert]] = []
    held: list[Alert] = []
    for (rule_name, channel), alerts in groups.items():
        try:
            rule = rules.rule(rule_name)
        except ConfigError:
            held.extend(alerts)  # a rule removed from the file: keep its alerts, never drop them silently
            continue
        quiet_until = None
        sent_at = last_sent.get((rule_name, channel))
        if rule.quiet_minutes and sent_at:
            quiet_until = sent_at + timedelta(minutes=rule.quiet_minutes)
        elif rule.mode == "instant" and rule.batch_seconds and sent_at:
            quiet_until = sent_at + timedelta(seconds=rule.batch_seconds)
        if quiet_until and now < quiet_until:
            held.extend(a.model_copy(update={"due_at": quiet_until}) for a in alerts)
            continue
        alerts.sort(key=lambda a: (a.created_at, a.id))
        if rule.mode == "digest" or rule.quiet_minutes or rule.batch_seconds:
            # what is due now goes as one message, not a burst
            messages.append(alerts)
        else:
            messages.extend([a] for a in alerts)
    return messages, held


def deliver(store: Store, rules: RulesFile, now: datetime, *, secrets: Mapping[str, str] | None = None,
            sender: Callable[..., None] = send) -> DeliveryReport:
    """Send every due alert; failures are retried later with back-off and never lost."""
    report = DeliveryReport()
    due = store.due_alerts(now)
    if not due:
        return report
    if any(a.rule.startswith(SAVED_PREFIX) for a in due):
        rules = with_saved_searches(rules, store.saved_searches())
    last_sent = {(a.rule, a.channel): store.last_sent_at(a.rule, a.channel) for a in due}
    store.prepare_lookups()  # the copies of each story, stored a moment ago by another process, are counted
    messages, held = plan_messages(rules, due, last_sent, now)
    if held:
        store.update_alerts(held)
        report.alerts_held += len(held)
    for planned in messages:
        # two deliverers at once (two `alerts send`, an Airflow retry beside a scheduled run) must not
        # both send: each message goes out with the alerts this deliverer won, the rest are theirs
        alerts = store.claim_alerts(planned, now, CLAIM_LEASE)
        if not alerts:
            continue
        first = alerts[0]
        message = Message(rule=first.rule, channel=first.channel, alerts=tuple(alerts),
                          copies={a.story_id: _copies(store, a.story_id) for a in alerts})
        try:
            sender(message, rules.channels[first.channel], secrets)
        except EnergywatchError as exc:
            transient = isinstance(exc, TransientError)
            report.alerts_failed += len(alerts)
            report.errors.append(str(exc))
            log.warning("alert delivery failed (%s): %s", "will retry" if transient else "check the channel", exc)
            store.update_alerts([a.model_copy(update={
                "attempts": a.attempts + 1, "last_error": str(exc)[:500],
                "next_attempt_at": now + retry_delay(a.attempts + 1),
            }) for a in alerts])
            continue
        store.update_alerts([a.model_copy(update={"status": "sent", "sent_at": now, "last_error": None,
                                                  "attempts": a.attempts + 1}) for a in alerts])
        report.messages_sent += 1
        report.alerts_sent += len(alerts)
        report.latencies.extend(max(0.0, (now - a.created_at).total_seconds()) for a in alerts)
    return report
