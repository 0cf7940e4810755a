"""grounded.toml: validated on load, feeds option defaults, flags win."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from grounded.cli import main
from grounded.config import command_table, load_settings, option_keys
from grounded.errors import ConfigError


def test_top_level_and_section_keys_map_to_commands(tmp_path):
    cfg = tmp_path / "grounded.toml"
    cfg.write_text('model = "openai/gpt-4o-mini"\nchunk_tokens = 128\n[generate]\nn = 7\n')
    dm = load_settings(cfg, group=main)
    assert dm["generate"] == {
        "model": "openai/gpt-4o-mini",
        "n": 7,
    }  # generate has no --chunk-tokens
    assert dm["run"]["n"] == 7 and dm["run"]["chunk_tokens"] == 128
    assert dm["ingest"] == {"chunk_tokens": 128}


def test_unknown_key_names_file_and_key(tmp_path):
    cfg = tmp_path / "grounded.toml"
    cfg.write_text("[generate]\nmodle = 'x'\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, group=main)
    assert "grounded.toml" in str(exc.value) and "modle" in str(exc.value)


def test_bad_value_and_unknown_section(tmp_path):
    cfg = tmp_path / "grounded.toml"
    cfg.write_text("n = 0\n")
    with pytest.raises(ConfigError, match="n"):
        load_settings(cfg, group=main)
    cfg.write_text("[generation]\nn = 3\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_settings(cfg, group=main)
    cfg.write_text("n = [\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(cfg, group=main)


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


def test_keys_are_the_option_names_of_every_command(tmp_path):
    """Each option of each command, set to its own default in its section, is accepted (no hand list)."""
    cfg = tmp_path / "grounded.toml"
    checked = 0
    for path, cmd in command_table(main).items():
        section = ".".join(path)
        for key, param in option_keys(cmd).items():
            if not isinstance(param.default, (str, int, float)) or param.multiple:
                continue
            value = param.default
            cfg.write_text(f"[{section}]\n{key} = {json.dumps(value)}\n")
            node = load_settings(cfg, group=main)
            for name in path:
                node = node[name]
            assert node[param.name] == param.type_cast_value(click.Context(cmd), value), (
                section,
                key,
            )
            checked += 1
    assert checked >= 30


def test_generate_settings_the_readme_names(tmp_path):
    cfg = tmp_path / "grounded.toml"
    cfg.write_text(
        'api_base = "http://127.0.0.1:8080/v1"\n[generate]\ntemperature = 0.2\n'
        'response_format = "json_object"\nno_check = true\n[eval.dataset]\nembedder = "none"\n'
    )
    dm = load_settings(cfg, group=main)
    assert dm["generate"] == {
        "api_base": "http://127.0.0.1:8080/v1",
        "temperature": 0.2,
        "response_format": "json_object",
        "no_check": True,
    }
    assert dm["run"]["api_base"] == "http://127.0.0.1:8080/v1"
    assert dm["eval"]["dataset"] == {"embedder": "none"}


def test_cli_accepts_api_base_temperature_and_response_format(tmp_path, monkeypatch):
    (tmp_path / "grounded.toml").write_text(
        'api_base = "http://127.0.0.1:8080/v1"\n[generate]\ntemperature = 0.2\nresponse_format = "json_object"\n'
    )
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["generate", "--help"])
    assert res.exit_code == 0, res.output
    assert "default: json_object" in " ".join(res.output.split())
    res = CliRunner().invoke(
        main, ["generate", "--index", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]
    )
    assert "grounded.toml" not in res.output and res.exit_code != 2, res.output


def test_cli_settings_reach_eval_subcommands(tmp_path, monkeypatch):
    data = Path(__file__).parent / "data" / "check" / "plain.jsonl"
    (tmp_path / "grounded.toml").write_text(
        "[eval.faithfulness]\nquestion_checks = false\nsemantic = 'off'\n"
    )
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        main, ["eval", "faithfulness", str(data), "--format", "jsonl", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["question_checks"] is False


@pytest.mark.parametrize(
    "body,needle",
    [
        ("[generate]\ntemperature = 5\n", "[generate] temperature"),
        ("[generate]\nresponse_format = 'xml'\n", "response_format"),
        ("[eval.faithfulness]\nsweeps = true\n", "[eval.faithfulness] sweeps: unknown key"),
        ("[eval.nope]\nx = 1\n", "unknown section [eval.nope]"),
        ("model = ['a', 'b']\n", "model: expected one value"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path, monkeypatch, body, needle):
    (tmp_path / "grounded.toml").write_text(body)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["search", "x", "--index", str(tmp_path)])
    assert res.exit_code == 2 and "grounded.toml" in res.output and needle in res.output, res.output
