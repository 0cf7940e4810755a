"""`grounded doctor`: check the environment and say what to do."""

from __future__ import annotations

import sys

import click

from grounded.cli import emit_json, handle_errors, json_option


@click.command()
@click.option(
    "--no-local",
    is_flag=True,
    help="Skip assembling the default local model and its test completion.",
)
@json_option
@handle_errors
def doctor(as_json: bool, no_local: bool) -> None:
    """Check Python, CPU, the local model (parts, file, a real completion), offline settings, Chroma, extras."""
    from grounded.doctor import FAIL, diagnose, summary

    findings = diagnose(local=not no_local)
    if as_json:
        emit_json(summary(findings))
    else:
        width = max(len(f.name) for f in findings)
        for f in findings:
            click.echo(f"{f.status:<4}  {f.name:<{width}}  {f.detail}")
            if f.fix and f.status != "ok":
                click.echo(f"{'':<4}  {'':<{width}}  -> {f.fix}")
    if any(f.status == FAIL for f in findings):
        sys.exit(1)
