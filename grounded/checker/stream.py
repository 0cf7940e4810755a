"""The library function: check a stream of pairs against their sources, in batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from grounded.checker.context import Checker
from grounded.checker.scoring import default_checker
from grounded.errors import CheckError
from grounded.types import Chunk, QAPair, Verdict


def inline_sources(pair: QAPair) -> list[Chunk]:
    """Chunks made from a pair's inline contexts (QA sets checked without an index)."""
    out = []
    for i, text in enumerate(pair.contexts):
        doc_id = pair.doc_ids[i] if i < len(pair.doc_ids) else f"context-{i}"
        out.append(
            Chunk(
                id=Chunk.make_id(doc_id, 0, len(text)),
                doc_id=doc_id,
                text=text,
                start=0,
                end=len(text),
            )
        )
    return out


def sources_for(pair: QAPair, index: Any = None) -> list[Chunk]:
    """Evidence/cited chunks from the index when there is one, else the pair's inline contexts."""
    chunks: list[Chunk] = []
    if index is not None:
        ids = list(
            dict.fromkeys([*pair.chunk_ids, *(e.chunk_id for e in pair.evidence if e.chunk_id)])
        )
        if ids:
            chunks = list(index.get_chunks(ids))
    return chunks or inline_sources(pair)


def check(
    pairs: Iterable[QAPair],
    *,
    index: Any = None,
    checker: Checker | None = None,
    chroma_url: str | None = None,
    batch_size: int = 64,
    **checker_options: Any,
) -> Iterator[tuple[QAPair, Verdict]]:
    """Check pairs against their sources; yields each pair with its verdict (set on the pair).

    >>> for pair, verdict in grounded.check(pairs, index="out/index"):  # doctest: +SKIP
    ...     print(verdict.supported, [r.code for r in verdict.reasons])
    """
    if checker is None:
        checker = default_checker(**checker_options)
    elif checker_options:
        raise CheckError("pass checker options or a checker, not both")
    if isinstance(index, (str, Path)):
        from grounded.index import open_index

        index = open_index(index, chroma_url=chroma_url)
    batch: list[tuple[QAPair, Sequence[Chunk]]] = []
    for pair in pairs:
        batch.append((pair, sources_for(pair, index)))
        if len(batch) >= batch_size:
            yield from _run_batch(checker, batch)
            batch = []
    if batch:
        yield from _run_batch(checker, batch)


def _run_batch(
    checker: Checker, batch: Sequence[tuple[QAPair, Sequence[Chunk]]]
) -> Iterator[tuple[QAPair, Verdict]]:
    many = getattr(checker, "check_many", None)
    verdicts = many(batch) if many is not None else [checker.check(p, s) for p, s in batch]
    for (pair, _), verdict in zip(batch, verdicts, strict=True):
        yield replace(pair, verdict=verdict), verdict
