"""The `grounded` command line: a thin edge over the library (flags map to keywords)."""

from __future__ import annotations

import functools
import importlib
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from grounded import offline
from grounded.config import find_config, load_settings
from grounded.errors import EXIT_INTERRUPTED, GroundedError

F = TypeVar("F", bound=Callable[..., Any])

# name -> "module:attribute"; imported only when the command runs, so `grounded --help` is fast.
COMMANDS: dict[str, str] = {
    "ingest": "grounded.commands.ingest:ingest",
    "search": "grounded.commands.ingest:search",
    "generate": "grounded.commands.generate:generate",
    "check": "grounded.commands.check:check",
    "eval": "grounded.commands.evaluate:eval_group",
    "mix": "grounded.commands.dataset:mix",
    "export": "grounded.commands.dataset:export",
    "dedup": "grounded.commands.dataset:dedup",
    "report": "grounded.commands.dataset:report",
    "run": "grounded.commands.run:run",
    "doctor": "grounded.commands.doctor:doctor",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (default: ./grounded.toml if present).",
)
@click.version_option(package_name="grounded")
@click.pass_context
def main(ctx: click.Context, debug: bool, config_path: str | None) -> None:
    """Turn document corpora into QA datasets grounded in the source text."""
    offline.configure()
    ctx.obj = {"debug": debug}
    path = config_path or find_config()
    if path is not None:
        try:
            ctx.default_map = load_settings(path, group=main)
        except GroundedError as exc:
            click.echo(f"error: {exc}" + (f" ({exc.hint})" if exc.hint else ""), err=True)
            ctx.exit(exc.exit_code)


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and "debug" in ctx.obj:
            return bool(ctx.obj["debug"])
        ctx = ctx.parent
    return False


def handle_errors(fn: F) -> F:
    """Turn library errors into one line on stderr and a documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GroundedError as exc:
            if _debug():
                traceback.print_exc()
            msg = f"error: {exc}"
            if exc.hint:
                msg += f" ({exc.hint})"
            click.echo(msg, err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "interrupted: finished work is saved; rerun the same command to resume", err=True
            )
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the edge: anything unexpected becomes one line
            if _debug():
                traceback.print_exc()
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def emit_json(summary: Any) -> None:
    """Print a machine-readable summary on stdout."""
    click.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=str))


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary."
)
