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


@pytest.mark.corpus
def test_hard_cases_quality_gate() -> None:
    """The hard negatives of relevance_dev_more: policy buzzwords, defence without energy, price reports, sport."""
    report = evaluate(read_labelled(shared_path("eval", "relevance_dev_more.jsonl")))
    floor = BASELINE["relevance_dev_more"]
    core = report.per_label["core"]
    print(f"\nhard cases: core P {core.precision:.3f} R {core.recall:.3f} F1 {core.f1:.3f}; confusion {report.confusion}")
    assert core.f1 >= floor["core_f1"] and core.precision >= floor["core_precision"]
    assert core.recall >= floor["core_recall"]
    assert report.none_as_core_rate <= floor["none_as_core_rate_max"]


@pytest.mark.corpus
def test_cross_validated_quality_gate() -> None:
    """Held out: each text scored by weights fitted without it, over both dev files (issue 19's targets)."""
    from energywatch.evaluation import cross_validate

    files = [read_labelled(shared_path("eval", name)) for name in ("relevance_dev.jsonl", "relevance_dev_more.jsonl")]
    validated = cross_validate(files, folds=5)
    dev, more, both = validated.reports
    floor = BASELINE["relevance_cross_validated"]
    print(f"\ncross-validated (L2 {validated.l2}): core F1 {both.per_label['core'].f1:.3f}; dev "
          f"{dev.per_label['core'].f1:.3f}; hard cases P {more.per_label['core'].precision:.3f} "
          f"R {more.per_label['core'].recall:.3f}")
    assert both.per_label["core"].f1 >= max(0.92, floor["core_f1"])
    for lang, minimum in floor["core_f1_by_language"].items():
        assert both.per_language[lang]["core"].f1 >= max(0.88, minimum), lang
    assert dev.per_label["core"].f1 >= floor["relevance_dev"]["core_f1"]
    assert more.per_label["core"].precision >= max(0.85, floor["relevance_dev_more"]["core_precision"])
    assert more.per_label["core"].recall >= max(0.95, floor["relevance_dev_more"]["core_recall"])
    assert more.none_as_core_rate <= 0.03 and dev.none_as_core_rate <= 0.03


def test_explain_shows_evidence_against() -> None:
    """A context (sport, health) is evidence too: it lowers the score and `explain` lists it, last."""
    text = ("Energy drinks contain large doses of caffeine; doctors warn that they can trigger panic attacks "
            "and raise blood pressure in teenagers, and the energy they promise is short-lived.")
    result = enrich("Doctors warn about energy drinks", text, "en")
    assert result.relevance.label == "none"
    assert result.relevance.evidence[-1].axis == "context" and result.assessment.contributions["concept:health"] < 0
    assert "attack" not in {e.concept for e in result.relevance.evidence}  # panic attacks are no attack


def test_an_attack_beside_energy_is_core_and_a_buzzword_alone_is_not() -> None:
    attack = ("Drones struck the Druzhba oil pipeline pumping station overnight, the operator said; oil supplies "
              "to Hungary were interrupted.")
    buzzword = ("The minister presented the offshore wind target: 30 GW by 2030 will strengthen our energy "
                "security and bring investment to the ports.")
    assert enrich("", attack, "en").relevance.label == "core"
    assert enrich("", buzzword, "en").relevance.label != "core"
    assert enrich("", attack, "en").assessment.features["threat_frame"] > 0
    assert enrich("", buzzword, "en").assessment.features["threat_frame"] == 0


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


@pytest.mark.corpus
def test_eval_command_cross_validates_and_fits_over_several_files() -> None:
    files = [str(shared_path("eval", n)) for n in ("relevance_dev.jsonl", "relevance_dev_more.jsonl")]
    result = CliRunner().invoke(app, ["eval", "relevance", *files, "--cv", "5", "--fit", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["files"]) == set(files)
    held_out = report["cross_validated"]
    assert held_out["all"]["per_label"]["core"]["f1"] >= 0.92 and held_out["folds"] == 5
    assert held_out[files[1]]["none_as_core_rate"] == 0.0
    fitted = report["fitted_weights"]
    assert set(fitted) == {"bias", "core_threshold", *load_profile().scoring.weights}


def test_explain_a_text_that_is_not_stored(tmp_path: Path) -> None:
    text = tmp_path / "match.txt"
    text.write_text("Neftçi doğma meydanda Araz-Naxçıvanı 3:0 hesabı ilə məğlub edib. Premyer Liqa: Neftçi ikinci "
                    "pilləyə yüksəlib, futbol azarkeşləri sevinir.", encoding="utf-8")
    shown = CliRunner().invoke(app, ["explain", "--text", str(text), "--title", "Premyer Liqa", "--lang", "az",
                                     "--json"])
    assert shown.exit_code == 0, shown.output
    explained = json.loads(shown.output)
    assert explained["relevance"]["label"] == "none" and explained["contributions"]["concept:sport"] < 0
    table = CliRunner().invoke(app, ["explain", "--text", str(text), "--lang", "az"], env={"COLUMNS": "200"})
    assert "score = logistic(" in table.output and "context" in table.output
    missing = CliRunner().invoke(app, ["explain"])
    assert missing.exit_code == 2 and "--text FILE" in missing.output
