"""`grounded generate`: QA pairs from an index, checked, written as each LLM call finishes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from grounded.cli import emit_json, handle_errors, json_option
from grounded.errors import EXIT_PARTIAL

if TYPE_CHECKING:
    from grounded.generation import GenerateSummary

F = TypeVar("F", bound=Callable[..., Any])


# The generate stage's options, one definition for `grounded generate` and `grounded run`.
GENERATION_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "-n",
        "n",
        default=20,
        show_default=True,
        type=click.IntRange(min=1),
        help="Pairs to keep (pairs already in OUT count).",
    ),
    click.option(
        "--max-calls",
        default=None,
        type=click.IntRange(min=1),
        help="Generation calls allowed, cached ones included (default max(10, 4 x the calls n needs)); a rerun never goes past it.",
    ),
    click.option(
        "--retry-invalid/--no-retry-invalid",
        default=True,
        show_default=True,
        help="On a rerun, ask again for calls whose reply yielded no usable pair.",
    ),
    click.option(
        "--model",
        default=None,
        help="litellm model string (default: $GROUNDED_MODEL, a hosted model if its API key is set, else the local Qwen2.5-Coder-1.5B).",
    ),
    click.option(
        "--prompt",
        default="factoid",
        show_default=True,
        help="factoid | multi_hop | unanswerable, or a YAML template path.",
    ),
    click.option(
        "--concurrency",
        default=8,
        show_default=True,
        type=click.IntRange(min=1),
        help="LLM calls in flight.",
    ),
    click.option("--pairs-per-call", default=3, show_default=True, type=click.IntRange(min=1)),
    click.option(
        "--language",
        default="en",
        show_default=True,
        help="Language of questions and answers (code or name).",
    ),
    click.option(
        "--seed", default=0, show_default=True, type=int, help="Seed for the choice of passages."
    ),
    click.option(
        "--timeout",
        default=None,
        type=click.FloatRange(min=0.1),
        help="Seconds per LLM call (default 60; 600 for the in-process model).",
    ),
    click.option("--max-retries", default=4, show_default=True, type=click.IntRange(min=0)),
    click.option(
        "--rpm", default=None, type=click.FloatRange(min=1), help="Requests per minute limit."
    ),
    click.option(
        "--tpm", default=None, type=click.FloatRange(min=1), help="Tokens per minute limit."
    ),
    click.option(
        "--temperature", default=None, type=click.FloatRange(0, 2), help="Sampling temperature."
    ),
    click.option(
        "--api-base",
        default=None,
        help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8080/v1 with --model openai/<name>.",
    ),
    click.option(
        "--response-format",
        default="auto",
        show_default=True,
        type=click.Choice(["auto", "json_schema", "json_object", "none"]),
        help="How the reply schema is sent (auto: json_object with schema for --api-base servers).",
    ),
    click.option(
        "--chroma-url",
        default=None,
        help="Chroma server holding the index, instead of an embedded one.",
    ),
    click.option(
        "--no-check", is_flag=True, help="Keep pairs without running the faithfulness checker."
    ),
    click.option(
        "--verify",
        default=None,
        type=click.Choice(["off", "roundtrip", "judge"]),
        help="LLM verification after the checker (default roundtrip with a local model, whose Yes/No per pair joins the score; else off; judge with grounded run --judge). "
        "roundtrip: the model answers its own questions from the passage (one extra call per "
        "generation call) and disagreeing pairs are rejected; judge: the checker's LLM judge "
        "scores borderline pairs.",
    ),
]


def generation_options(fn: F) -> F:
    """Apply GENERATION_OPTIONS to a command (in --help order)."""
    for option in reversed(GENERATION_OPTIONS):
        fn = option(fn)
    return fn


@click.command()
@click.option(
    "--index",
    required=True,
    type=click.Path(file_okay=False),
    help="Index directory (from `grounded ingest`).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory: qa.jsonl, rejected.jsonl.",
)
@generation_options
@click.option(
    "--cache",
    default=None,
    type=click.Path(dir_okay=False),
    help="LLM call cache (default OUT/cache/llm.sqlite).",
)
@click.option(
    "--dry-run", is_flag=True, help="Print planned calls and estimated cost; call nothing."
)
@json_option
@handle_errors
def generate(out: Path, as_json: bool, no_check: bool, **options: Any) -> None:
    """Generate grounded QA pairs from an index into OUT (rerun to resume; nothing is paid twice)."""
    from grounded.generation.api import generate_into
    from grounded.options import GenerateOptions, ModelOptions, take, unexpected
    from grounded.rundir import RunFolder
    from grounded.stages import CheckStage, NoCheck

    index, cache, chroma_url = options.pop("index"), options.pop("cache"), options.pop("chroma_url")
    gen, model = take(GenerateOptions, options), take(ModelOptions, options)
    unexpected(options, "generate")
    folder = RunFolder(out)
    with folder.lock():  # two generates on one folder would pay every call twice
        if cache is None and not gen.dry_run:
            cache = folder.llm_cache_path()
        summary = generate_into(
            index,
            out,
            gen,
            model,
            check=CheckStage(NoCheck() if no_check else None),
            cache=cache,
            chroma_url=chroma_url,
            progress=not as_json and sys.stderr.isatty(),
        )
    data = summary.to_dict()
    if no_check:
        data["checked"] = False
    if as_json:
        emit_json(data)
    elif summary.dry_run:
        cost = (
            "unknown (no price for this model)"
            if summary.estimated_cost is None
            else f"${summary.estimated_cost:.4f}"
        )
        click.echo(
            f"{summary.planned_calls} LLM calls planned with {summary.model} ({summary.prompt}); "
            f"~{summary.estimated_prompt_tokens} prompt + ~{summary.estimated_completion_tokens} completion tokens; "
            f"estimated cost {cost}"
        )
    else:
        _report(summary, retry_invalid=gen.retry_invalid)
    if summary.failed_calls:
        sys.exit(EXIT_PARTIAL)


def _report(summary: GenerateSummary, *, retry_invalid: bool) -> None:
    """The human summary: what was kept of what was asked, why it stopped, what it cost."""
    click.echo(
        f"kept {summary.kept} of {summary.requested} requested ({summary.candidates} candidates, "
        f"{summary.rejected} rejected) -> {summary.files['qa']}; stopped: {summary.stopped}"
    )
    hint = _STOP_HINTS.get(summary.stopped, "")
    if hint and summary.kept < summary.requested:
        click.echo(hint.format(s=summary))
    top = list(summary.rejected_by_reason.items())[:5]
    if top:
        click.echo("top rejection reasons: " + ", ".join(f"{k} ({v})" for k, v in top))
    _report_verify(summary)
    if summary.invalid_replies:
        from grounded.generation import MAX_INVALID_RETRIES

        again = (
            f"rerun the same command to ask again ({MAX_INVALID_RETRIES} times at most)"
            if retry_invalid
            else "rerun with --retry-invalid to ask again"
        )
        click.echo(
            f"{summary.invalid_replies} replies yielded no usable pair (see rejected.jsonl); {again}"
        )
    click.echo(
        f"LLM calls: {summary.llm_calls} new, {summary.cached_calls} cached, {summary.failed_calls} failed; "
        f"{summary.prompt_tokens}+{summary.completion_tokens} tokens; cost ${summary.cost:.4f} "
        f"(all runs into this folder: ${summary.cost_total:.4f})"
    )
    from grounded.stages.context import distinct_errors

    failures = distinct_errors(summary.errors)
    for item in failures[:5]:
        times = f" ({item['count']} calls)" if item["count"] > 1 else ""
        click.echo(f"failed call (rerun to retry): {item['message']}{times}", err=True)
    if len(failures) > 5:
        click.echo(f"... and {len(failures) - 5} other failures (see --json)", err=True)


def _report_verify(summary: GenerateSummary) -> None:
    """What the LLM verifier did, or (for a hosted model) that one is available."""
    from grounded.llm import is_local

    if summary.verify == "roundtrip":
        line = f"verify roundtrip: {summary.reader_calls} reader calls"
        if summary.unverified:
            line += f"; {summary.unverified} pairs kept unverified (reader_unavailable)"
        click.echo(line + f"; {summary.calls_per_kept_pair} LLM calls per kept pair")
    elif summary.verify == "off" and summary.checked and not is_local(summary.model):
        click.echo(
            "verify: off (--verify roundtrip has the model answer its own questions from the passage, "
            "one extra call per generation call, and rejects pairs whose answers disagree)"
        )


_STOP_HINTS = {
    "max_calls": "the call budget is spent ({s.calls} of --max-calls {s.max_calls}); raise --max-calls to go on",
    "passages exhausted": "every passage of the index has been asked; ingest more documents or lower -n",
    "calls failing": "every call of the last round failed; fix the cause and rerun the same command",
}
