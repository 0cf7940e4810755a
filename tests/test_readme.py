"""Every `grounded` command in the README names a real command and real options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from grounded.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for part in re.split(r"&&|;", line.split("  #")[0]):
                part = part.strip().rstrip("&").strip()
                m = re.match(r"^(?:\.venv/bin/)?grounded\s+(.*)$", part)
                if m:
                    commands.append(m.group(1))
    return commands


def resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    cmd: click.Command = main
    ctx = click.Context(main)
    rest = list(args)
    while isinstance(cmd, click.Group):
        while rest and rest[0].startswith("-"):  # group options such as --debug, --config FILE
            opt = rest.pop(0)
            if opt == "--config":
                rest.pop(0)
        assert rest, f"no subcommand in {args}"
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"unknown command {rest[0]!r} in {args}"
        cmd, rest = sub, rest[1:]
    return cmd, rest


def test_readme_has_grounded_commands():
    assert len(readme_commands()) >= 20


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_uses_known_options(line):
    cmd, rest = resolve(shlex.split(line))
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    for token in rest:
        if token.startswith("-") and not re.match(r"^-\d", token):
            assert token.split("=")[0] in known, (
                f"{token} is not an option of `{cmd.name}` ({line})"
            )
