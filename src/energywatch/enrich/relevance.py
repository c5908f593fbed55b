"""Explainable energy-security relevance: concept evidence on two axes → features → score and label."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from energywatch.enrich.matcher import Hit, Sentence
from energywatch.enrich.profile import Profile
from energywatch.models import Evidence, Relevance

FEATURES = ("energy", "security", "both_axes", "cooccurrence", "cooccurrence_share", "energy_security", "title")
_INFRA_WEIGHT = 1.5  # a named energy installation counts as a strong energy concept
_EVIDENCE_CHARS = 300


@dataclass(frozen=True)
class Assessment:
    """Everything behind a relevance decision, for `energywatch explain` and tuning."""

    relevance: Relevance
    features: dict[str, float]
    energy: float
    security: float
    contributions: dict[str, float]


def _axes(profile: Profile, label: str) -> tuple[str, ...]:
    kind, _, name = label.partition(":")
    if kind == "concept":
        axis = profile.concept(name).axis
        return ("energy", "security") if axis == "both" else (axis,)
    if kind == "infra":
        return ("energy",)
    return ()


def assess(profile: Profile, title: Sentence, sentences: list[Sentence], hits: list[Hit]) -> Assessment:
    """Score a document from its concept hits (title hits carry sentence index -1)."""
    by_label: dict[str, list[Hit]] = defaultdict(list)
    for hit in hits:
        if hit.pattern.label.startswith(("concept:", "infra:")):
            by_label[hit.pattern.label].append(hit)
    energy = security = both = 0.0
    contributions: dict[str, float] = {}
    sentence_axes: dict[int, set[str]] = defaultdict(set)
    themes: list[str] = []
    for label, label_hits in by_label.items():
        kind, _, name = label.partition(":")
        axes = _axes(profile, label)
        if kind == "concept":
            concept = profile.concept(name)
            weight = concept.weight
            themes += concept.themes
        else:
            weight = _INFRA_WEIGHT
            themes += next(i.themes for i in profile.infrastructure if i.id == name)
        # repeats add less and less: the fifth mention of "gas" says little more than the second
        contribution = weight * (1.0 + 0.5 * math.log(len(label_hits)))
        contributions[label] = round(contribution, 3)
        if "energy" in axes:
            energy += contribution
        if "security" in axes:
            security += contribution
        if len(axes) == 2:
            both += contribution
        for hit in label_hits:
            sentence_axes[hit.sentence].update(axes)
    cooccurring = sum(1 for axes in sentence_axes.values() if {"energy", "security"} <= axes)
    title_axes = sentence_axes.get(-1, set())
    features = {
        "energy": math.log1p(energy),
        "security": math.log1p(security),
        "both_axes": min(math.log1p(energy), math.log1p(security)),
        "cooccurrence": math.log1p(cooccurring),
        # a headline or a feed summary has one or two sentences: what share of them join both axes
        "cooccurrence_share": cooccurring / max(1, len(sentences) + (1 if title.norm else 0)),
        "energy_security": math.log1p(both),
        "title": float(len(title_axes & {"energy", "security"})),
    }
    scoring = profile.scoring
    z = scoring.bias + sum(scoring.weights.get(k, 0.0) * v for k, v in features.items())
    score = 1.0 / (1.0 + math.exp(-z))
    if score >= scoring.core_threshold:
        label = "core"
    elif energy >= scoring.related_min_energy or security >= scoring.related_min_security:
        label = "related"
    else:
        label = "none"
    evidence = []
    for label_name, label_hits in by_label.items():
        first = min(label_hits, key=lambda h: h.sentence)
        sentence = title.text if first.sentence == -1 else sentences[first.sentence].text
        axes = _axes(profile, label_name)
        evidence.append(Evidence(
            concept=label_name.partition(":")[2], axis="both" if len(axes) == 2 else axes[0],
            term=first.pattern.term, sentence=sentence[:_EVIDENCE_CHARS], in_title=first.sentence == -1,
        ))
    evidence.sort(key=lambda e: -contributions.get(f"concept:{e.concept}", contributions.get(f"infra:{e.concept}", 0)))
    relevance = Relevance(score=round(score, 4), label=label,  # type: ignore[arg-type]
                          themes=tuple(dict.fromkeys(t for t in themes if t)) if label != "none" else (),
                          evidence=tuple(evidence))
    return Assessment(relevance=relevance, features={k: round(v, 4) for k, v in features.items()},
                      energy=round(energy, 3), security=round(security, 3), contributions=contributions)
