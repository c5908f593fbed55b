"""Entities from matcher hits: countries (ISO 3166 alpha-2), organisations, infrastructure, people."""

from __future__ import annotations

from energywatch.enrich.matcher import Hit
from energywatch.models import Entities

_KINDS = {"country": "countries", "org": "organizations", "infra": "infrastructure", "person": "people"}


def collect_entities(hits: list[Hit]) -> Entities:
    """Normalised entity ids, most mentioned first."""
    counts: dict[str, dict[str, int]] = {field: {} for field in _KINDS.values()}
    for hit in hits:
        kind, _, name = hit.pattern.label.partition(":")
        field = _KINDS.get(kind)
        if field:
            counts[field][name] = counts[field].get(name, 0) + 1
    ranked = {f: tuple(sorted(c, key=lambda n: (-c[n], n))) for f, c in counts.items()}
    return Entities(**ranked)
