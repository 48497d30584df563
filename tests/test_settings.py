"""Settings: read from the environment and .env, every field documented in .env.example."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices

from dossier_common.settings import Settings
from tests.conftest import ROOT


def _env_name(name: str, field) -> str:
    alias = field.validation_alias
    return alias.choices[0] if isinstance(alias, AliasChoices) else f"DOSSIER_{name.upper()}"


def test_every_setting_is_described_and_in_env_example():
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert f"# {_env_name(name, field)}=" in example, name


def test_environment_and_dotenv(monkeypatch, tmp_path: Path):
    (tmp_path / ".env").write_text("DOSSIER_TOP_K=7\nDISCORD_TOKEN=from-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("DOSSIER_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DISCORD_GUILD_IDS", "1, 2,3")
    monkeypatch.setenv("DOSSIER_WATCH_PATHS", "a,b")
    s = Settings()
    assert s.home == tmp_path / "state"
    assert s.top_k == 7
    assert s.discord_guild_ids == [1, 2, 3]
    assert s.watch_paths == [Path("a"), Path("b")]
    assert s.discord_token is not None and s.discord_token.get_secret_value() == "from-dotenv"
    assert "from-dotenv" not in repr(s)  # secrets never show up in logs or reprs
    assert s.documents_dir == tmp_path / "state" / "documents"
