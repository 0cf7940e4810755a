"""`grounded check`: run the faithfulness checker on any QA set (ours or someone else's)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from grounded.cli import emit_json, handle_errors, json_option
from grounded.errors import EXIT_PARTIAL

# Checker options `grounded check` and `grounded eval faithfulness` share, defined once.
SEMANTIC_OPTION = click.option(
    "--semantic",
    default="borderline",
    show_default=True,
    type=click.Choice(["borderline", "all", "off"]),
    help="When to compute MiniLM similarity.",
)
JUDGE_OPTION = click.option(
    "--judge", default=None, help="litellm model string of an LLM judge (optional)."
)
JUDGE_MODE_OPTION = click.option(
    "--judge-mode",
    default="borderline",
    show_default=True,
    type=click.Choice(["borderline", "all"]),
)
WORKERS_OPTION = click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Check in this many processes (each loads its own models, a few seconds; on N cores a long file checks up to N times as fast). An LLM judge stays in this process.",
)


@click.command("check")
@click.argument("qa", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--index",
    default=None,
    type=click.Path(file_okay=False),
    help="Index directory the evidence points into (optional when contexts are inline).",
)
@click.option(
    "--chroma-url", default=None, help="Use a Chroma server instead of an embedded index."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Writes OUT/qa.jsonl (kept) and OUT/rejected.jsonl.",
)
@click.option(
    "--threshold",
    default=None,
    type=click.FloatRange(0, 1),
    help="Minimum support score (default: the documented dev-tuned value).",
)
@SEMANTIC_OPTION
@click.option(
    "--learned-verifier",
    "verifier",
    default="keepable",
    show_default=True,
    type=click.Choice(["keepable", "all", "off"]),
    help="Which QA pairs the learned verifier reads (keepable: those the cheap checks have not rejected).",
)
@JUDGE_OPTION
@JUDGE_MODE_OPTION
@click.option(
    "--judge-cache",
    default=None,
    type=click.Path(dir_okay=False),
    help="SQLite cache of judge calls (default OUT/judge-cache.sqlite).",
)
@click.option(
    "--verify",
    default="off",
    show_default=True,
    type=click.Choice(["off", "roundtrip"]),
    help="roundtrip: a model reads every pair the cheap checks keep (its own answer to the question, and a Yes/No from its token probabilities, a passage's questions together) and that joins the score. Offline with the local model unless --model names another.",
)
@click.option(
    "--model",
    default=None,
    help="litellm model that reads with --verify roundtrip (default: the local grounded-local/qwen2.5-coder-1.5b).",
)
@WORKERS_OPTION
@click.option(
    "--fail-on-reject", is_flag=True, help=f"Exit {EXIT_PARTIAL} when any pair is rejected."
)
@click.option(
    "--long-answers",
    is_flag=True,
    help="Check every answer claim by claim (RAG answers, summaries); rows get per-claim verdicts and unsupported spans. Pairs of kind long/summary always are.",
)
@json_option
@handle_errors
def check(
    qa: Path,
    index: str | None,
    chroma_url: str | None,
    out: Path,
    threshold: float | None,
    semantic: str,
    verifier: str,
    judge: str | None,
    judge_mode: str,
    judge_cache: str | None,
    verify: str,
    model: str | None,
    workers: int,
    fail_on_reject: bool,
    long_answers: bool,
    as_json: bool,
) -> None:
    """Check the pairs of QA (JSONL or SQuAD JSON) and split them into kept and rejected, with reasons."""
    options: dict[str, Any] = {"semantic": semantic, "judge_mode": judge_mode, "verifier": verifier}
    if threshold is not None:
        options["threshold"] = threshold
    if judge:
        options["judge"] = judge
    if verify == "roundtrip":
        from grounded.llm import DEFAULT_LOCAL_MODEL

        options["read"] = model or DEFAULT_LOCAL_MODEL
    elif model:
        raise click.UsageError(
            "--model names the model that reads: it goes with --verify roundtrip"
        )
    if judge or verify != "off":
        options["judge_cache"] = judge_cache or str(out / "judge-cache.sqlite")
    from grounded.checker import CheckOptions
    from grounded.checker.long_answers import long_answer_checker
    from grounded.checkfile import check_qa_file

    # with --long-answers, --threshold is the per-claim threshold
    checker = long_answer_checker(CheckOptions(**options), every_pair=long_answers)
    summary = check_qa_file(
        qa, out=out, index=index, chroma_url=chroma_url, checker=checker, workers=workers
    )
    if as_json:
        emit_json(summary.to_dict())
    else:
        click.echo(
            f"checked {summary.n} pairs: kept {summary.kept}, rejected {summary.rejected} ({summary.pairs_per_s} pairs/s)"
        )
        top = list(summary.rejected_by_reason.items())[:6]
        if top:
            click.echo("rejection reasons: " + ", ".join(f"{k} ({v})" for k, v in top))
        ran = {k: v for k, v in summary.model_signals.items() if v}
        if ran:
            names = {
                "sem": "MiniLM similarity",
                "ver": "learned verifier",
                "judge": "LLM judge",
                "llm_yes": "LLM reader",
            }
            click.echo("read by: " + ", ".join(f"{names[k]} ({v} pairs)" for k, v in ran.items()))
        click.echo(f"wrote {summary.files['qa']} and {summary.files['rejected']}")
        unchecked = summary.rejected_by_reason.get("no_sources", 0)
        if unchecked and index is None:
            click.echo(
                f"{unchecked} row(s) had nothing to check against: give them context/contexts, "
                "or pass --index DIR when their evidence points into an index",
                err=True,
            )
    if fail_on_reject and summary.rejected:
        sys.exit(EXIT_PARTIAL)
