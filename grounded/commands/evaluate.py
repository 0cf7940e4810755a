"""`grounded eval`: faithfulness of the checker on public benchmarks; dataset health (lazy)."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from grounded.cli import emit_json, handle_errors, json_option
from grounded.commands.check import (
    JUDGE_MODE_OPTION,
    JUDGE_OPTION,
    SEMANTIC_OPTION,
    WORKERS_OPTION,
)
from grounded.eval.benchmarks import FORMATS, SQUAD_NEGATIVES

# Subcommands defined elsewhere, imported only when used: name -> "module:attribute".
SUBCOMMANDS: dict[str, str] = {"dataset": "grounded.commands.dataset:eval_dataset"}


class EvalGroup(click.Group):
    """Own subcommands plus lazily attached ones (a missing module just hides the command)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in SUBCOMMANDS:
            return cmd
        module_name, attr = SUBCOMMANDS[cmd_name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        return getattr(module, attr, None)


@click.group("eval", cls=EvalGroup)
def eval_group() -> None:
    """Measure the checker (faithfulness) or a QA set (dataset health)."""


@eval_group.command("faithfulness")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(FORMATS),
    help="Format of FILE.",
)
@click.option(
    "--negatives",
    default=None,
    type=click.Choice(SQUAD_NEGATIVES),
    help="SQuAD only: wrong answers from another paragraph (default) or from the same paragraph (in the context, answering another question).",
)
@click.option(
    "--threshold",
    default=None,
    type=click.FloatRange(0, 1),
    help="Minimum support score (default: the checker's).",
)
@SEMANTIC_OPTION
@JUDGE_OPTION
@JUDGE_MODE_OPTION
@click.option(
    "--judge-cache",
    default=None,
    type=click.Path(dir_okay=False),
    help="SQLite cache of judge calls (default: $XDG_CACHE_HOME/grounded/judge.sqlite).",
)
@WORKERS_OPTION
@click.option(
    "--limit", default=None, type=click.IntRange(min=1), help="Use only the first N examples."
)
@click.option(
    "--question-checks/--no-question-checks",
    default=True,
    show_default=True,
    help="Check questions as `grounded check` does (off: answer support and fit only, as benchmarks/bench_faithfulness.py measures).",
)
@click.option("--sweep", "show_sweep", is_flag=True, help="Print the threshold sweep too.")
@json_option
@handle_errors
def faithfulness(
    file: Path,
    fmt: str,
    negatives: str | None,
    threshold: float | None,
    semantic: str,
    judge: str | None,
    judge_mode: str,
    judge_cache: str | None,
    workers: int,
    limit: int | None,
    question_checks: bool,
    show_sweep: bool,
    as_json: bool,
) -> None:
    """Score the checker on a labelled benchmark: balanced accuracy, AUROC, F1 for unsupported."""
    from grounded.eval.faithfulness import evaluate_file

    summary = evaluate_file(
        file,
        fmt,
        threshold=threshold,
        semantic=semantic,
        judge=judge,
        judge_mode=judge_mode,
        judge_cache=judge_cache,
        limit=limit,
        negatives=negatives,
        question_checks=question_checks,
        workers=workers,
    )
    if as_json:
        emit_json(summary)
        return
    c = summary["confusion"]
    click.echo(
        f"{fmt}: n={summary['n']} (supported {summary['supported']}, unsupported {summary['unsupported']})"
    )
    click.echo(
        f"balanced accuracy {summary['balanced_accuracy']:.3f}  AUROC {summary['auroc']:.3f}  "
        f"unsupported P/R/F1 {summary['precision']:.3f}/{summary['recall']:.3f}/{summary['f1']:.3f}  "
        f"threshold {summary['threshold']:.3f}  {summary['pairs_per_s']} pairs/s"
    )
    click.echo(
        f"confusion (positive = unsupported): tp {c['tp']} fp {c['fp']} tn {c['tn']} fn {c['fn']}"
    )
    for name, sub in (summary.get("subsets") or {}).items():
        click.echo(
            f"subset {name}: n={sub['n']} kept {sub['kept']} mean score {sub['mean_score']:.3f}"
        )
    if show_sweep:
        click.echo("threshold  bal.acc  F1(unsupported)")
        for row in summary["sweep"]:
            click.echo(
                f"{row['threshold']:9.2f}  {row['balanced_accuracy']:.3f}    {row['f1']:.3f}"
            )
