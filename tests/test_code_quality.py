"""The lint and type gates: `ruff` (rules in pyproject.toml) and `mypy` on src/, so CI fails on them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff_finds_nothing_in_src() -> None:
    done = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "src", "dags", "plugins"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing_in_src() -> None:
    done = subprocess.run([str(BIN / "mypy"), "--no-incremental", "--cache-dir=/dev/null"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
