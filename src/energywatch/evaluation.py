"""Measure relevance against labelled texts (precision/recall/F1, confusion), and fit the score weights."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from energywatch.enrich import enrich
from energywatch.enrich.profile import Scoring
from energywatch.enrich.relevance import FEATURES, decide
from energywatch.errors import ConfigError

LABELS = ("core", "related", "none")


class LabelledItem(BaseModel):
    """One line of an evaluation file."""

    id: str | None = None
    text: str
    title: str = ""
    lang: str | None = None
    label: str


@dataclass
class Scores:
    """Precision, recall and F1 of one label."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvalReport:
    """Results of an evaluation run."""

    items: int
    per_label: dict[str, Scores]
    per_language: dict[str, dict[str, Scores]]
    confusion: dict[str, dict[str, int]]
    none_as_core_rate: float
    mistakes: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        """The report as JSON."""
        def scores(s: Scores) -> dict[str, float | int]:
            return {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
                    "support": s.support}
        return json.dumps({
            "items": self.items, "per_label": {k: scores(v) for k, v in self.per_label.items()},
            "per_language": {lang: {k: scores(v) for k, v in d.items()} for lang, d in self.per_language.items()},
            "confusion": self.confusion, "none_as_core_rate": round(self.none_as_core_rate, 4),
            "mistakes": self.mistakes,
        }, ensure_ascii=False, indent=2)


def read_labelled(path: Path) -> list[LabelledItem]:
    """Read a JSONL file of labelled items; every bad line is reported with its number."""
    items, problems = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ConfigError(f"evaluation file {path} does not exist") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = LabelledItem.model_validate_json(line)
        except ValidationError as exc:
            problems.append(f"line {number}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
            continue
        if item.label not in LABELS:
            problems.append(f"line {number}: label must be one of {', '.join(LABELS)}, got {item.label!r}")
            continue
        items.append(item)
    if problems:
        raise ConfigError(f"{path}: {len(problems)} bad line(s):\n  " + "\n  ".join(problems[:20]))
    if not items:
        raise ConfigError(f"{path} holds no labelled items")
    return items


def _scores(pairs: list[tuple[str, str]], label: str) -> Scores:
    tp = sum(1 for gold, pred in pairs if gold == label and pred == label)
    predicted = sum(1 for _, pred in pairs if pred == label)
    support = sum(1 for gold, _ in pairs if gold == label)
    precision = tp / predicted if predicted else 0.0
    recall = tp / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, support)


def evaluate(items: list[LabelledItem], *, profile_path: str | None = None) -> EvalReport:
    """Classify every item and compare with its label."""
    triples: list[tuple[str, str, str]] = []
    mistakes = []
    for item in items:
        predicted = enrich(item.title, item.text, item.lang, profile_path=profile_path).relevance
        triples.append((item.label, predicted.label, item.lang or "?"))
        if predicted.label != item.label:
            mistakes.append({"id": item.id or "", "lang": item.lang or "", "gold": item.label,
                             "predicted": predicted.label, "score": f"{predicted.score:.3f}",
                             "title": (item.title or item.text)[:80]})
    return _report(triples, mistakes)


@dataclass(frozen=True)
class _Example:
    """One text's features, the evidence totals its label needs, and its gold label."""

    features: tuple[float, ...]
    energy: float
    security: float
    context: float
    label: str
    source: int = 0  # which input file (per-file figures from one cross-validation)
    lang: str = "?"


def _has_headline(item: LabelledItem) -> bool:
    """Whether an item's title is long enough to be a headline example of its own."""
    return len(item.title) > 25


def _examples(items: list[LabelledItem], profile_path: str | None, source: int = 0,
              headlines: bool = False) -> list[_Example]:
    out = []
    pairs = [(i.title, i.text, i) for i in items]
    if headlines:
        # pages behind paywalls leave only a headline and a feed summary: each headline is a second,
        # short example with the same label (a model fitted on full texts alone scored the dev set's
        # headlines at core F1 0.23 against 0.81)
        pairs = [("", i.title, i) for i in items if _has_headline(i)]
    for title, text, item in pairs:
        a = enrich(title, text, item.lang, profile_path=profile_path).assessment
        out.append(_Example(tuple(a.features[name] for name in FEATURES), a.energy, a.security, a.context,
                            item.label, source, item.lang or "?"))
    return out


def _fit(examples: list[_Example], l2: float) -> tuple[float, list[float]]:
    """L2-regularised logistic regression (core against the rest) by Newton's method; (bias, weights)."""
    x = np.array([(1.0, *e.features) for e in examples])
    y = np.array([1.0 if e.label == "core" else 0.0 for e in examples])
    penalty = np.eye(x.shape[1]) * l2 * len(examples)
    penalty[0, 0] = 0.0  # the bias is not shrunk
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x.T * (p * (1 - p))) @ x + penalty + np.eye(x.shape[1]) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return float(w[0]), [float(v) for v in w[1:]]


def _probabilities(examples: list[_Example], bias: float, weights: list[float]) -> np.ndarray:
    x = np.array([e.features for e in examples])
    return 1.0 / (1.0 + np.exp(-np.clip(x @ np.array(weights) + bias, -30, 30)))


def _best_threshold(examples: list[_Example], probabilities: np.ndarray) -> float:
    """The core threshold with the best F1 on these examples (ties: the higher one, fewer false alerts)."""
    gold = np.array([e.label == "core" for e in examples])
    best, chosen = -1.0, 0.5
    for threshold in np.arange(0.30, 0.91, 0.01):
        predicted = probabilities >= threshold
        tp = float((predicted & gold).sum())
        f1 = 2 * tp / (predicted.sum() + gold.sum()) if predicted.sum() + gold.sum() else 0.0
        if f1 >= best:
            best, chosen = f1, float(threshold)
    return round(chosen, 2)


@dataclass
class FittedScoring:
    """Weights, threshold and the regularisation they were fitted with."""

    bias: float
    weights: dict[str, float]
    core_threshold: float
    l2: float


def fit_scoring(items: list[LabelledItem], *, profile_path: str | None = None, l2: float = 0.03) -> FittedScoring:
    """Logistic regression (core vs the rest) on the relevance features, with headline examples, and the
    core threshold with the best F1 on the texts: suggested `scoring` for the profile."""
    texts = _examples(items, profile_path)
    bias, weights = _fit(texts + _examples(items, profile_path, headlines=True), l2)
    threshold = _best_threshold(texts, _probabilities(texts, bias, weights))
    return FittedScoring(round(bias, 3), {n: round(w, 3) for n, w in zip(FEATURES, weights)}, threshold, l2)


L2_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


@dataclass
class CrossValidation:
    """Held-out predictions of a k-fold cross-validation, and the figures they give."""

    l2: float
    folds: int
    reports: list[EvalReport]  # one per input file, then one for all files together
    by_l2: dict[float, float]  # core F1 over all files at each regularisation tried


def cross_validate(files: list[list[LabelledItem]], *, profile_path: str | None = None, folds: int = 5,
                   l2: float | None = None) -> CrossValidation:
    """k-fold cross-validation over the files together: each text is scored by weights and a threshold
    fitted without it (stratified by file and label, in a fixed order); L2 chosen by the best core F1."""
    from energywatch.enrich.profile import load_profile

    scoring = load_profile(profile_path).scoring
    texts, headlines = [], []
    for source, items in enumerate(files):
        texts += _examples(items, profile_path, source)
        headlines += _examples(items, profile_path, source, headlines=True)
    # stratified folds: each (file, label) group dealt round-robin in its original order
    fold_of: list[int] = []
    dealt: Counter[tuple[int, str]] = Counter()
    for e in texts:
        fold_of.append(dealt[(e.source, e.label)] % folds)
        dealt[(e.source, e.label)] += 1
    # a headline example is held out with its text
    every = [item for items in files for item in items]
    headline_fold = [fold for item, fold in zip(every, fold_of) if _has_headline(item)]

    def held_out(penalty: float) -> list[str]:
        predicted = [""] * len(texts)
        for fold in range(folds):
            train = [e for e, f in zip(texts, fold_of) if f != fold]
            train_headlines = [e for e, f in zip(headlines, headline_fold) if f != fold]
            bias, weights = _fit(train + train_headlines, penalty)
            threshold = _best_threshold(train, _probabilities(train, bias, weights))
            fitted = Scoring(bias=bias, weights=dict(zip(FEATURES, weights)), core_threshold=threshold,
                             related_min_energy=scoring.related_min_energy,
                             related_min_security=scoring.related_min_security)
            test = [(i, e) for i, (e, f) in enumerate(zip(texts, fold_of)) if f == fold]
            probabilities = _probabilities([e for _, e in test], bias, weights)
            for (i, e), p in zip(test, probabilities):
                predicted[i] = decide(float(p), e.energy, e.security, e.context, fitted)
        return predicted

    def core_f1(predicted: list[str]) -> float:
        return _scores([(e.label, p) for e, p in zip(texts, predicted)], "core").f1

    tried = {penalty: core_f1(held_out(penalty)) for penalty in ((l2,) if l2 is not None else L2_GRID)}
    chosen = max(tried, key=lambda k: (round(tried[k], 4), k))  # ties: the stronger regularisation
    predicted = held_out(chosen)
    reports = []
    for source in [*range(len(files)), None]:
        pairs = [(e.label, p, e.lang) for e, p in zip(texts, predicted) if source is None or e.source == source]
        reports.append(_report(pairs))
    return CrossValidation(l2=chosen, folds=folds, reports=reports, by_l2=tried)


def _report(triples: list[tuple[str, str, str]], mistakes: list[dict[str, str]] | None = None) -> EvalReport:
    pairs = [(gold, pred) for gold, pred, _ in triples]
    by_lang: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for gold, pred, lang in triples:
        by_lang[lang].append((gold, pred))
    confusion = {gold: {pred: 0 for pred in LABELS} for gold in LABELS}
    for gold, pred in pairs:
        confusion[gold][pred] += 1
    none_total = sum(confusion["none"].values())
    return EvalReport(
        items=len(pairs), per_label={label: _scores(pairs, label) for label in LABELS},
        per_language={lang: {label: _scores(p, label) for label in LABELS} for lang, p in sorted(by_lang.items())},
        confusion=confusion, none_as_core_rate=confusion["none"]["core"] / none_total if none_total else 0.0,
        mistakes=mistakes or [],
    )


def label_counts(items: list[LabelledItem]) -> Counter[str]:
    """How many items carry each label."""
    return Counter(i.label for i in items)
