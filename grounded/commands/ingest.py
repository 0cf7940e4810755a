"""`grounded ingest` and `grounded search`: build an index from files, and query it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from grounded.cli import emit_json, handle_errors, json_option
from grounded.embed import DEFAULT_EMBEDDER
from grounded.errors import EXIT_PARTIAL

F = TypeVar("F", bound=Callable[..., Any])

index_option = click.option(
    "--index",
    "index",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Index folder (manifest, embedding cache, and the Chroma store unless --chroma-url).",
)
chroma_option = click.option(
    "--chroma-url",
    default=None,
    metavar="URL",
    help="Use a Chroma server, e.g. http://127.0.0.1:8000.",
)


# The options of the ingest stage, defined once: `grounded ingest` and `grounded run` apply them.
INGEST_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--chunk-tokens",
        default=256,
        show_default=True,
        type=click.IntRange(16),
        help="Chunk size in tokens (cl100k_base).",
    ),
    click.option(
        "--overlap-tokens",
        default=32,
        show_default=True,
        type=click.IntRange(0),
        help="Overlap between chunks in tokens.",
    ),
    click.option(
        "--embedder",
        default=DEFAULT_EMBEDDER,
        show_default=True,
        help="minilm (bundled, best quality), fast (static, >100x faster), a plugin's embedder, a "
        "sentence-transformers folder, or litellm:<model>; in `run` also used by dedup and the "
        "health figures.",
    ),
    click.option(
        "--workers",
        default=1,
        show_default=True,
        type=click.IntRange(1),
        help="Processes that load and chunk files (with --ray and no address: the local Ray's CPUs).",
    ),
]


def ingest_options(fn: F) -> F:
    """Apply INGEST_OPTIONS to a command (in --help order)."""
    for option in reversed(INGEST_OPTIONS):
        fn = option(fn)
    return fn


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@chroma_option
@ingest_options
@click.option(
    "--max-mb",
    default=50.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Skip files larger than this.",
)
@json_option
@handle_errors
def ingest(
    paths: tuple[Path, ...],
    index: Path,
    chroma_url: str | None,
    chunk_tokens: int,
    overlap_tokens: int,
    embedder: str,
    workers: int,
    max_mb: float,
    as_json: bool,
) -> None:
    """Load, chunk, embed and index files and folders (txt, md, html, pdf, docx, ...).

    Re-running is incremental: unchanged files are skipped, changed files replaced, deleted
    files removed. Exit code 10 when some files were skipped (see the summary for why).
    """
    from grounded.ingestion import ingest as run_ingest

    summary = run_ingest(
        list(paths),
        index=index,
        chroma_url=chroma_url,
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        embedder=embedder,
        progress=not as_json,
        workers=workers,
        max_bytes=int(max_mb * 1024 * 1024),
    )
    if as_json:
        emit_json(summary.to_dict())
    else:
        click.echo(
            f"{summary.documents} documents, {summary.chunks} chunks in {summary.index} "
            f"(files: {summary.added} added, {summary.replaced} replaced, {summary.unchanged} unchanged, "
            f"{summary.removed} removed, {summary.duplicates} duplicates; "
            f"{summary.chunks_added} chunks embedded with {summary.embedder} in {summary.seconds:.1f}s)"
        )
        for s in summary.skipped:
            click.echo(f"skipped {s.path}: {s.reason}", err=True)
    if summary.skipped:
        sys.exit(EXIT_PARTIAL)


@click.command()
@click.argument("query")
@index_option
@chroma_option
@click.option(
    "-k", "k", default=5, show_default=True, type=click.IntRange(1), help="Number of hits."
)
@json_option
@handle_errors
def search(query: str, index: Path, chroma_url: str | None, k: int, as_json: bool) -> None:
    """Show the chunks of an index closest to QUERY."""
    from grounded.index import open_index

    idx = open_index(index, chroma_url=chroma_url)
    try:
        hits = idx.search(query, k)
    finally:
        idx.close()
    if as_json:
        emit_json(
            {
                "query": query,
                "hits": [
                    {
                        "chunk_id": h.chunk.id,
                        "doc_id": h.chunk.doc_id,
                        "source": h.chunk.source,
                        "title": h.chunk.title,
                        "section": list(h.chunk.section),
                        "page": h.chunk.page,
                        "start": h.chunk.start,
                        "end": h.chunk.end,
                        "score": round(h.score, 4),
                        "text": h.chunk.text,
                    }
                    for h in hits
                ],
            }
        )
        return
    for rank, h in enumerate(hits, 1):
        where = h.chunk.source + (f" p.{h.chunk.page}" if h.chunk.page else "")
        if h.chunk.section:
            where += " § " + " > ".join(h.chunk.section)
        click.echo(f"{rank}. [{h.score:.3f}] {where} [{h.chunk.start}:{h.chunk.end}]")
        click.echo("   " + " ".join(h.chunk.text.split())[:300])
