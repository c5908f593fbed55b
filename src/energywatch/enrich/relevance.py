"""Explainable energy-security relevance: concept evidence on two axes → features → score and label."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from energywatch.enrich.matcher import Hit, Sentence
from energywatch.enrich.profile import Profile, Scoring
from energywatch.models import Evidence, Relevance

# The model's inputs, chosen by cross-validation over both dev files (`energywatch eval relevance --cv`):
# the other features computed below are shown by `explain` but made the model worse held out (all
# twelve: core F1 0.910, these seven: 0.929; security, title and threat_frame mostly re-count what
# threat, both_axes and cooccurrence_share say)
FEATURES = ("energy", "both_axes", "cooccurrence_share", "threat", "policy", "context", "market")
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
    context: float = 0.0  # evidence against: sport, health, culture


def decide(score: float, energy: float, security: float, context: float, scoring: Scoring) -> str:
    """The label of a score and the evidence totals: core above the threshold; related on enough energy
    or security evidence unless a context (sport, health) outweighs it; none otherwise."""
    if score >= scoring.core_threshold:
        return "core"
    if context < max(energy, security) and (energy >= scoring.related_min_energy
                                            or security >= scoring.related_min_security):
        return "related"
    return "none"  # a match report whose club is named after an oil company is no energy news


def score_of(features: dict[str, float], scoring: Scoring) -> float:
    """The logistic score of a feature vector under the profile's weights."""
    z = scoring.bias + sum(scoring.weights.get(k, 0.0) * v for k, v in features.items())
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def _axes(profile: Profile, label: str) -> tuple[str, ...]:
    kind, _, name = label.partition(":")
    if kind == "concept":
        axis = profile.concept(name).axis
        # policy talk ("energy security", diversification) is energy evidence, not security evidence
        return ("energy", "security") if axis == "both" else ("energy", "policy") if axis == "policy" else (axis,)
    if kind == "infra":
        return ("energy",)
    return ()


def _threat_frame(energy_sentences: set[int], threat_sentences: set[int]) -> int:
    """Energy sentences with a threat cue in the same or a neighbouring sentence (the title, -1, neighbours
    the first sentence): an attack on a substation, not a minister's "energy security" next to "NATO"."""
    return sum(1 for s in energy_sentences if threat_sentences & {s - 1, s, s + 1} - ({-2} if s == -1 else set()))


def assess(profile: Profile, title: Sentence, sentences: list[Sentence], hits: list[Hit]) -> Assessment:
    """Score a document from its concept hits (title hits carry sentence index -1)."""
    by_label: dict[str, list[Hit]] = defaultdict(list)
    for hit in hits:
        if hit.pattern.label.startswith(("concept:", "infra:")):
            by_label[hit.pattern.label].append(hit)
    totals: dict[str, float] = defaultdict(float)
    contributions: dict[str, float] = {}
    sentence_axes: dict[int, set[str]] = defaultdict(set)
    threat_sentences: set[int] = set()
    themes: list[str] = []
    for label, label_hits in by_label.items():
        kind, _, name = label.partition(":")
        axes = _axes(profile, label)
        threat = False
        if kind == "concept":
            concept = profile.concept(name)
            weight, threat = concept.weight, concept.threat
            if concept.axis not in ("context", "market"):
                themes += concept.themes
        else:
            weight = _INFRA_WEIGHT
            themes += next(i.themes for i in profile.infrastructure if i.id == name)
        # repeats add less and less: the fifth mention of "gas" says little more than the second
        contribution = weight * (1.0 + 0.5 * math.log(len(label_hits)))
        contributions[label] = round(contribution if axes[0] != "context" else -contribution, 3)
        for axis in axes:
            totals[axis] += contribution
        if threat:
            totals["threat"] += contribution
        if axes == ("energy", "security"):
            totals["both"] += contribution
        for hit in label_hits:
            sentence_axes[hit.sentence].update(axes)
            if threat:
                threat_sentences.add(hit.sentence)
    energy, security = totals["energy"], totals["security"]
    cooccurring = sum(1 for axes in sentence_axes.values() if {"energy", "security"} <= axes)
    title_axes = sentence_axes.get(-1, set())
    energy_sentences = {s for s, axes in sentence_axes.items() if "energy" in axes}
    features = {
        "energy": math.log1p(energy),
        "security": math.log1p(security),
        "both_axes": min(math.log1p(energy), math.log1p(security)),
        "cooccurrence": math.log1p(cooccurring),
        # a headline or a feed summary has one or two sentences: what share of them join both axes
        "cooccurrence_share": cooccurring / max(1, len(sentences) + (1 if title.norm else 0)),
        "energy_security": math.log1p(totals["both"]),
        "title": float(len(title_axes & {"energy", "security"})),
        "threat_frame": math.log1p(_threat_frame(energy_sentences, threat_sentences)),
        # attacks, sabotage, war, coercion: the part of the security evidence that NATO, "security" and
        # sanctions alone do not give
        "threat": math.log1p(totals["threat"]),
        "policy": math.log1p(totals["policy"]),
        "context": math.log1p(totals["context"]),
        "market": math.log1p(totals["market"]),
    }
    score = score_of(features, profile.scoring)
    label = decide(score, energy, security, totals["context"], profile.scoring)
    evidence = []
    for label_name, label_hits in by_label.items():
        first = min(label_hits, key=lambda h: h.sentence)
        sentence = title.text if first.sentence == -1 else sentences[first.sentence].text
        axes = _axes(profile, label_name)
        evidence.append(Evidence(
            concept=label_name.partition(":")[2],
            axis="both" if axes == ("energy", "security") else "policy" if "policy" in axes else axes[0],
            term=first.pattern.term, sentence=sentence[:_EVIDENCE_CHARS], in_title=first.sentence == -1,
        ))
    # the strongest evidence first; what speaks against (a context: sport, health) after what speaks for
    def strength(e: Evidence) -> float:
        return abs(contributions.get(f"concept:{e.concept}", contributions.get(f"infra:{e.concept}", 0.0)))

    evidence.sort(key=lambda e: (e.axis == "context", -strength(e)))
    relevance = Relevance(score=round(score, 4), label=label,  # type: ignore[arg-type]
                          themes=tuple(dict.fromkeys(t for t in themes if t)) if label != "none" else (),
                          evidence=tuple(evidence))
    return Assessment(relevance=relevance, features={k: round(v, 4) for k, v in features.items()},
                      energy=round(energy, 3), security=round(security, 3), contributions=contributions,
                      context=round(totals["context"], 3))
