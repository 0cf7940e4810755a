"""The CLI edge: one-line errors with documented exit codes; tracebacks only with --debug."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from fakes import quoting_responder
from fault_server import FaultServer, ok, server_error, slow, unauthorized

from grounded.cli import handle_errors, main
from grounded.errors import EXIT_INTERRUPTED, ConfigError, IndexStoreError, MissingDependencyError


@pytest.fixture
def failing():
    @click.command("boom")
    @click.argument("kind")
    @handle_errors
    def boom(kind):
        if kind == "config":
            raise ConfigError("bad option --foo", hint="use --bar")
        if kind == "index":
            raise IndexStoreError("index dir is not writable")
        if kind == "dep":
            raise MissingDependencyError("Parquet export", "grounded[export]")
        if kind == "interrupt":
            raise KeyboardInterrupt
        raise RuntimeError("unexpected")

    main.add_command(boom, "boom")
    yield
    main.commands.pop("boom", None)


@pytest.mark.parametrize(
    ("kind", "code", "text"),
    [
        ("config", 2, "error: bad option --foo (use --bar)"),
        ("index", 4, "error: index dir is not writable"),
        ("dep", 3, "pip install grounded[export]"),
        ("interrupt", EXIT_INTERRUPTED, "rerun the same command to resume"),
        ("other", 1, "internal error: RuntimeError: unexpected (rerun with --debug"),
    ],
)
def test_errors_are_one_line_with_exit_code(failing, kind, code, text):
    result = CliRunner().invoke(main, ["boom", kind])
    assert result.exit_code == code
    assert text in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_debug_shows_traceback(failing):
    result = CliRunner().invoke(main, ["--debug", "boom", "other"])
    assert result.exit_code == 1
    assert "Traceback" in result.output


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in (
        "ingest",
        "search",
        "generate",
        "check",
        "eval",
        "mix",
        "export",
        "dedup",
        "report",
        "run",
    ):
        assert name in result.output


# --- the README's exit-code table, each code produced at the CLI ------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"
DOCS = Path(__file__).parent / "data" / "pipeline" / "docs"
QA = Path(__file__).parent / "data" / "health" / "run" / "qa.jsonl"


def readme_exit_codes() -> dict[int, str]:
    """code -> meaning, from the table under "## Errors and exit codes"."""
    section = (
        README.read_text(encoding="utf-8")
        .split("## Errors and exit codes", 1)[1]
        .split("\n## ", 1)[0]
    )
    return {
        int(code): meaning.strip()
        for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M)
    }


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("codes") / "index"
    result = CliRunner().invoke(
        main, ["ingest", str(DOCS), "--index", str(path), "--chunk-tokens", "64"]
    )
    assert result.exit_code == 0, result.output
    return path


def _answer(body):
    return ok(quoting_responder(body.get("messages") or []))


def _generate(index_dir, tmp_path, server, *extra):
    return (
        CliRunner()
        .invoke(
            main,
            [
                "generate",
                "--index",
                str(index_dir),
                "--out",
                str(tmp_path / "gen"),
                "-n",
                "3",
                "--model",
                "openai/fake",
                "--api-base",
                server.url,
                "--no-check",
                *extra,
            ],
        )
        .exit_code
    )


def _success(index_dir, tmp_path, server, monkeypatch):
    return _generate(index_dir, tmp_path, server)


def _bad_input_file(index_dir, tmp_path, server, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not JSON\n")
    return (
        CliRunner()
        .invoke(main, ["export", str(bad), "--format", "csv", "--out", str(tmp_path / "x.csv")])
        .exit_code
    )


def _bad_option(index_dir, tmp_path, server, monkeypatch):
    return (
        CliRunner()
        .invoke(main, ["run", str(DOCS), "--out", str(tmp_path / "o"), "--no-such-option"])
        .exit_code
    )


def _missing_dependency(index_dir, tmp_path, server, monkeypatch):
    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # as if `grounded[export]` were not installed
    return (
        CliRunner()
        .invoke(
            main, ["export", str(QA), "--format", "parquet", "--out", str(tmp_path / "x.parquet")]
        )
        .exit_code
    )


def _unusable_index(index_dir, tmp_path, server, monkeypatch):
    return CliRunner().invoke(main, ["search", "honey", "--index", str(tmp_path)]).exit_code


def _llm_refuses(index_dir, tmp_path, server, monkeypatch):
    server.default = unauthorized()
    return _generate(index_dir, tmp_path, server)


def _calls_failed(index_dir, tmp_path, server, monkeypatch):
    server.default = server_error(503)
    return _generate(index_dir, tmp_path, server, "--max-retries", "0")


def _interrupted(index_dir, tmp_path, server, monkeypatch):
    server.default = slow("{}", 60)
    grounded = Path(sys.executable).with_name("grounded")
    proc = subprocess.Popen(
        [
            str(grounded),
            "generate",
            "--index",
            str(index_dir),
            "--out",
            str(tmp_path / "gen"),
            "-n",
            "3",
            "--model",
            "openai/fake",
            "--api-base",
            server.url,
            "--no-check",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not server.chat_requests() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.chat_requests(), proc.communicate()[1]
        proc.send_signal(signal.SIGINT)  # Ctrl-C while a call is in flight
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "interrupted: finished work is saved" in err, err
    return proc.returncode


PRODUCERS = {
    0: _success,
    1: _bad_input_file,
    2: _bad_option,
    3: _missing_dependency,
    4: _unusable_index,
    5: _llm_refuses,
    10: _calls_failed,
    130: _interrupted,
}


def test_every_documented_exit_code_has_a_test_producing_it():
    assert set(readme_exit_codes()) == set(PRODUCERS)


@pytest.mark.parametrize("code", sorted(PRODUCERS))
def test_readme_exit_code_is_what_the_cli_returns(code, index_dir, tmp_path, monkeypatch):
    assert code in readme_exit_codes()
    with FaultServer(default=_answer) as server:
        assert PRODUCERS[code](index_dir, tmp_path, server, monkeypatch) == code


def test_run_takes_the_ingest_and_generate_options_as_defined_once():
    from grounded.commands.generate import generate as generate_cmd
    from grounded.commands.ingest import ingest as ingest_cmd
    from grounded.commands.run import run as run_cmd

    def options(cmd):
        return {p.name: (p.default, p.help) for p in cmd.params if isinstance(p, click.Option)}

    run_opts = options(run_cmd)
    own = {"index", "out", "chroma_url"}  # where each command reads or writes differs by design
    for stage in (ingest_cmd, generate_cmd):
        shared = {k: v for k, v in options(stage).items() if k in run_opts and k not in own}
        assert shared, stage.name
        assert all(run_opts[k] == v for k, v in shared.items()), stage.name
    for name in (
        "chunk_tokens",
        "overlap_tokens",
        "embedder",
        "workers",
        "rpm",
        "tpm",
        "temperature",
    ):
        assert name in run_opts
