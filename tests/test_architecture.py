"""Import rules: src/energywatch never imports Airflow; stages do not import the pipeline, CLI or DAGs."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "energywatch"
UPSTREAM = {"energywatch.pipeline", "energywatch.cli", "energywatch.web", "energywatch.dags"}
STAGES = ["feeds.py", "extract.py", "http.py", "enrich", "store", "alerts", "models.py", "config.py", "analysis.py"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _files(names: list[str]) -> list[Path]:
    out: list[Path] = []
    for name in names:
        target = SRC / name
        out.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target] if target.exists() else [])
    return out


def test_library_never_imports_airflow() -> None:
    offenders = [str(p) for p in SRC.rglob("*.py") if any(m.split(".")[0] == "airflow" for m in _imports(p))]
    assert offenders == [], f"src/energywatch must run without Airflow; these import it: {offenders}"


def test_stages_do_not_import_upstream() -> None:
    offenders = {str(p.relative_to(SRC)): sorted(_imports(p) & UPSTREAM) for p in _files(STAGES)}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"imports must flow DAGs/CLI → pipeline → stages → store: {offenders}"


def test_stages_do_not_import_each_other() -> None:
    stage_modules = {"energywatch.feeds", "energywatch.extract", "energywatch.enrich", "energywatch.alerts"}
    for path in _files(["feeds.py", "extract.py", "enrich", "alerts"]):
        own = "energywatch." + str(path.relative_to(SRC).with_suffix("")).replace("/", ".")
        bad = {m for m in _imports(path) if any(m == s or m.startswith(s + ".") for s in stage_modules)
               and not own.startswith(m) and not m.startswith(own.rsplit(".", 1)[0])}
        assert not bad, f"{path.name} imports another stage: {bad}"
