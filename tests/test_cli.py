"""The CLI edge: one-line errors with documented exit codes; tracebacks only with --debug."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

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
    for name in ("ingest", "search", "generate", "check", "eval", "mix", "export", "dedup", "report", "run"):
        assert name in result.output
