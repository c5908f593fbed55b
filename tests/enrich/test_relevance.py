"""Relevance on the seeds and the labelled dev set (quality gate), the eval command, custom profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import BASELINE, shared_path
from energywatch.cli import app
from energywatch.enrich import enrich
from energywatch.enrich.profile import load_profile
from energywatch.errors import ConfigError
from energywatch.evaluation import evaluate, read_labelled


def seed(name: str) -> str:
    return shared_path("seeds", name).read_text(encoding="utf-8")


@pytest.mark.corpus
def test_russian_seed_is_core_nato_azerbaijan() -> None:
    text = seed("000_7cdd14b6ffe0cde8.txt")
    result = enrich("Азербайджан и НАТО обменялись мнениями по энергетическому взаимодействию", text, "ru")
    assert result.relevance.label == "core" and "nato" in result.relevance.themes
    assert "NATO" in result.entities.organizations and "AZ" in result.entities.countries
    assert any(e.concept == "energy-security" for e in result.relevance.evidence)


@pytest.mark.corpus
def test_arabic_seed_is_core_with_rutte_ukraine_russia() -> None:
    text = seed("003_e931569a865d8ebe.txt")
    result = enrich(text.splitlines()[0], text, "ar")
    assert result.relevance.label == "core" and "nato" in result.relevance.themes
    assert {"UA", "RU"} <= set(result.entities.countries)
    assert "NATO" in result.entities.organizations and "Mark Rutte" in result.entities.people


def test_hard_negatives() -> None:
    nato_spending = ("NATO members will hit the alliance's defence spending target of 2% of GDP this year, "
                     "the secretary general said, as allies agreed a new goal for military budgets.")
    solar = ("Rooftop solar installations hit a record in 2023 as electricity prices rose; utilities added "
             "gigawatts of capacity and the energy market expects more growth.")
    tennis = "Djokovic won the final after a war of attrition; his attack at the net decided the match."
    assert enrich("", nato_spending, "en").relevance.label == "related"
    assert enrich("", solar, "en").relevance.label == "related"
    assert enrich("", tennis, "en").relevance.label == "none"


@pytest.mark.corpus
def test_dev_set_quality_gate() -> None:
    items = read_labelled(shared_path("eval", "relevance_dev.jsonl"))
    report = evaluate(items)
    floor = BASELINE["relevance_dev"]
    core = report.per_label["core"].f1
    print(f"\ncore F1 {core:.3f}; " + ", ".join(f"{l} {d['core'].f1:.3f}" for l, d in report.per_language.items()
                                               if d["core"].support))
    assert core >= 0.90 and core >= floor["core_f1"]
    for lang, minimum in floor["core_f1_by_language"].items():
        assert report.per_language[lang]["core"].f1 >= max(0.85, minimum), lang
    assert report.per_label["related"].f1 >= floor["related_f1"]
    assert report.per_label["none"].f1 >= floor["none_f1"]
    assert report.none_as_core_rate < 0.03 and report.none_as_core_rate <= floor["none_as_core_rate_max"]


def test_eval_command_on_a_small_file(tmp_path: Path) -> None:
    rows = [
        {"text": "Drones attacked the gas pipeline compressor station; NATO condemned the sabotage of energy "
                 "infrastructure.", "title": "", "lang": "en", "label": "core"},
        {"text": "Ракетный удар по подстанции оставил город без электроэнергии, энергосистема повреждена.",
         "title": "", "lang": "ru", "label": "core"},
        {"text": "The museum reopened its galleries with a new exhibition of prints.", "lang": "en", "label": "none"},
    ]
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "relevance", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["items"] == 3 and report["per_label"]["core"]["f1"] == 1.0
    assert report["confusion"]["none"]["none"] == 1 and report["per_language"]["ru"]["core"]["support"] == 1
    table = CliRunner().invoke(app, ["eval", "relevance", str(path)])
    assert "confusion" in table.output and "precision" in table.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "maybe"}\n{"label": "core"}\n', encoding="utf-8")
    failed = CliRunner().invoke(app, ["eval", "relevance", str(bad)])
    assert failed.exit_code == 2 and "line 1" in failed.output and "line 2" in failed.output


def test_user_can_add_a_concept_by_editing_the_profile(tmp_path: Path) -> None:
    import yaml

    from energywatch.enrich.profile import DEFAULT_PROFILE

    profile = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    profile["concepts"].append({"id": "hydrogen", "axis": "energy", "weight": 1.0, "themes": ["hydrogen"],
                                "terms": {"en": ["hydrogen"], "de": ["Wasserstoff*"]}})
    custom = tmp_path / "profile.yaml"
    custom.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    result = enrich("", "Sabotage at the hydrogen electrolyser: the army is guarding the plant.", "en",
                    profile_path=str(custom))
    assert any(e.concept == "hydrogen" for e in result.relevance.evidence)
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nconcepts: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid"):
        load_profile(str(broken))
