from pathlib import Path

import pytest

from energywatch.config import load_feeds, load_settings
from energywatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_default_feed_list_is_valid_and_multilingual() -> None:
    feeds = load_feeds(REPO / "config" / "feeds.yaml")
    langs = {f.language for f in feeds}
    assert {"en", "ru", "ar", "uk", "tr", "az", "de", "fr"} <= langs
    assert all(f.country and len(f.country) == 2 for f in feeds)


def test_duplicate_ids_and_bad_yaml(tmp_path: Path) -> None:
    p = tmp_path / "f.yaml"
    p.write_text("feeds:\n  - {id: a, name: A, url: 'https://a.example/'}\n  - {id: a, name: B, url: 'https://b.example/'}\n")
    with pytest.raises(ConfigError, match="already used"):
        load_feeds(p)
    p.write_text("feeds: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_feeds(p)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYWATCH_WORKERS", "3")
    assert load_settings().workers == 3
    monkeypatch.setenv("ENERGYWATCH_WORKERS", "zero")
    with pytest.raises(ConfigError, match="workers"):
        load_settings()
