"""`grounded run`: the main job, documents to a checked QA set with a health report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from grounded.cli import emit_json, handle_errors, json_option
from grounded.commands.generate import generation_options
from grounded.commands.ingest import ingest_options
from grounded.errors import EXIT_PARTIAL

if TYPE_CHECKING:
    from grounded.stages.context import RunSummary


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory."
)
@click.option(
    "--index",
    default=None,
    type=click.Path(file_okay=False),
    help="Index directory (default OUT/index).",
)
@ingest_options
@generation_options
@click.option("--threshold", default=None, type=click.FloatRange(0, 1), help="Checker threshold.")
@click.option(
    "--judge",
    default=None,
    help="litellm model of an LLM judge for borderline pairs (cached; implies --verify judge).",
)
@click.option(
    "--reference",
    default=None,
    type=click.Path(exists=True),
    help="Human QA set (SQuAD JSON or JSONL) to compare diversity with.",
)
@click.option(
    "--ray",
    "ray",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Fan parsing, chunking, embedding and checking out over Ray: a local Ray (no ADDRESS), "
    "or the cluster at ADDRESS (auto, ray://HOST:10001; needs --chroma-url). Needs grounded[ray].",
)
@json_option
@handle_errors
def run(paths: tuple[Path, ...], out: Path, as_json: bool, ray: str | None, **options: Any) -> None:
    """Ingest PATHS, generate QA pairs, check, deduplicate and report into OUT."""
    from grounded.options import RunOptions
    from grounded.pipeline import run_stages

    quiet = as_json
    run_options = RunOptions.from_settings(
        out=out,
        executor="ray" if ray else "local",
        ray_address=None if ray in (None, "local") else ray,
        progress=not quiet and sys.stderr.isatty(),
        notify=None if quiet else (lambda msg: click.echo(msg, err=True)),
        **options,
    )
    summary = run_stages(list(paths), run_options)
    data = summary.to_dict()
    if as_json:
        emit_json(data)
    else:
        _print_summary(summary)
    _print_failures(summary)
    if summary.ingest.get("skipped") or summary.failed_calls:
        sys.exit(EXIT_PARTIAL)


MAX_ERROR_LINES = 5


def _print_summary(summary: RunSummary) -> None:
    """The human summary on stdout: counts, reasons, coverage, warnings, cost, files."""
    gen = summary.generate
    line = f"kept {summary.kept} pairs, rejected {summary.rejected}"
    if gen.get("requested"):
        line = f"kept {summary.kept} of {gen['requested']} requested, rejected {summary.rejected}"
        if gen.get("stopped"):
            line += f"; stopped: {gen['stopped']}"
            if gen["stopped"] == "max_calls" and summary.kept < int(gen["requested"]):
                line += f" ({gen.get('calls')} calls; raise --max-calls to go on)"
    click.echo(line)
    if summary.failed_calls:
        click.echo(
            f"FAILED LLM CALLS: {summary.failed_calls} (not written; rerun the same command to retry them)"
        )
    if summary.notice:
        click.echo(summary.notice)
    top = list(summary.rejected_by_reason.items())[:5]
    if top:
        click.echo("top rejection reasons: " + ", ".join(f"{k} ({v})" for k, v in top))
    cov = summary.coverage
    if cov.get("documents_total"):
        line = f"coverage: {cov.get('documents_cited', 0)}/{cov['documents_total']} documents"
        if cov.get("chunks_total"):
            line += f", {cov.get('chunks_cited', 0)}/{cov['chunks_total']} chunks"
        unused = cov.get("unused_documents") or []
        if unused:
            names = [
                u.get("title") or u.get("doc_id") if isinstance(u, dict) else str(u) for u in unused
            ]
            line += "; never cited: " + ", ".join(str(x) for x in names[:5])
        click.echo(line)
    if summary.narrowing.get("warning"):
        click.echo("NARROWING WARNING: " + "; ".join(summary.narrowing.get("reasons", [])))
    click.echo(
        f"LLM calls: {summary.llm_calls} new, {summary.cached_calls} cached, {summary.failed_calls} failed; "
        f"cost ${summary.cost:.4f} this run, ${summary.cost_total:.4f} in total"
    )
    click.echo(
        f"files: {summary.files['qa']}, {summary.files['rejected']}, report {summary.report}"
    )


def _print_failures(summary: RunSummary) -> None:
    """Each distinct failure once on stderr (at most MAX_ERROR_LINES), with its count."""
    if not summary.failed_calls:
        return
    for err in summary.errors[:MAX_ERROR_LINES]:
        times = f" ({err['count']} calls)" if err["count"] > 1 else ""
        click.echo(f"failed call{times}: {err['message']}", err=True)
    hidden = len(summary.errors) - MAX_ERROR_LINES
    if hidden > 0:
        click.echo(
            f"... and {hidden} other failures (see {summary.files.get('summary')})", err=True
        )
    click.echo(
        f"{summary.failed_calls} LLM calls failed; rerun the same command to retry them", err=True
    )
