"""grounded.toml: validated on load, feeds option defaults, flags win."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from grounded.cli import main
from grounded.config import load_settings
from grounded.errors import ConfigError


def test_top_level_and_section_keys_map_to_commands(tmp_path):
    cfg = tmp_path / "grounded.toml"
    cfg.write_text('model = "openai/gpt-4o-mini"\nchunk_tokens = 128\n[generate]\nn = 7\n')
    dm = load_settings(cfg)
    assert dm["generate"] == {"model": "openai/gpt-4o-mini", "chunk_tokens": 128, "n": 7}
    assert dm["run"]["n"] == 7
    assert "n" not in dm["ingest"]


def test_unknown_key_names_file_and_key(tmp_path):
    cfg = tmp_path / "grounded.toml"
    cfg.write_text("[generate]\nmodle = 'x'\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert "grounded.toml" in str(exc.value) and "modle" in str(exc.value)


def test_bad_value_and_unknown_section(tmp_path):
    cfg = tmp_path / "grounded.toml"
    cfg.write_text("n = 0\n")
    with pytest.raises(ConfigError, match="n"):
        load_settings(cfg)
    cfg.write_text("[generation]\nn = 3\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_settings(cfg)
    cfg.write_text("n = [\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(cfg)


@pytest.fixture
def probe_command():
    @click.command("generate")
    @click.option("-n", "n", default=20, type=int)
    @click.option("--model", default=None)
    def probe(n, model):
        click.echo(f"n={n} model={model}")

    main.add_command(probe, "generate")
    yield
    main.commands.pop("generate", None)


def test_config_file_sets_defaults_and_flags_win(tmp_path, probe_command, monkeypatch):
    (tmp_path / "grounded.toml").write_text("[generate]\nn = 5\nmodel = 'm1'\n")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["generate"]).output.strip() == "n=5 model=m1"
    assert runner.invoke(main, ["generate", "-n", "9"]).output.strip() == "n=9 model=m1"


def test_bad_config_is_one_line_error(tmp_path, probe_command, monkeypatch):
    (tmp_path / "grounded.toml").write_text("bogus = 1\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["generate"])
    assert result.exit_code == 2
    assert "bogus" in result.output and "Traceback" not in result.output
