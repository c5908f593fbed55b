"""Every package the code imports is declared, and dependencies whose internals we patch are pinned to
the versions the tests cover."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = {}
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        specs[re.sub(r"[-_.]+", "-", name).lower()] = requirement
    return specs


def _imported_top_level(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"energywatch", "__future__"}


def test_every_imported_package_is_declared() -> None:
    declared = _declared()
    owners = packages_distributions()
    missing = []
    for module in sorted(_imported_top_level(ROOT / "src" / "energywatch")):
        distributions = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(module, [module])}
        if not distributions & declared.keys():
            missing.append(f"{module} ({', '.join(sorted(distributions))})")
    assert not missing, f"imported by src/energywatch but not in [project] dependencies: {missing}"


def test_patched_dependencies_are_pinned_to_tested_minor_versions() -> None:
    # httpx-aiohttp: AiohttpResponseStream.CHUNK_SIZE; trafilatura: its parser's element class lookup;
    # py3langid: the model's internals for a restricted language set
    declared = _declared()
    for name in ("httpx-aiohttp", "trafilatura", "py3langid"):
        assert re.search(r"<\d+\.\d+", declared[name]) and ">=" in declared[name], declared[name]
