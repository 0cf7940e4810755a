"""The library function: check a stream of pairs against their sources, in batches, in this
process or in `workers` processes."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from grounded.checker.context import Checker
from grounded.checker.scoring import default_checker
from grounded.errors import CheckError
from grounded.types import Chunk, QAPair, Verdict

if TYPE_CHECKING:
    from grounded.options import CheckSettings

log = logging.getLogger(__name__)

Item = tuple[QAPair, Sequence[Chunk]]


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
    workers: int = 1,
    **checker_options: Unpack[CheckSettings],
) -> Iterator[tuple[QAPair, Verdict]]:
    """Check pairs against their sources; yields each pair with its verdict (set on the pair),
    in input order. `workers` > 1: the batches are checked in that many processes (see
    `check_items`).

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
    items = ((pair, sources_for(pair, index)) for pair in pairs)
    for (pair, _), verdict in check_items(checker, items, batch_size=batch_size, workers=workers):
        yield replace(pair, verdict=verdict), verdict


def check_items(
    checker: Checker, items: Iterable[Item], *, batch_size: int = 64, workers: int = 1
) -> Iterator[tuple[Item, Verdict]]:
    """Each (pair, sources) item with its verdict, in input order, `batch_size` items per
    `check_many` call.

    `workers` > 1 checks the batches in that many processes (a spawn-context pool that gets the
    checker once, when it starts; each process loads its own models, a few seconds, then checks
    as fast as this one: on N cores up to N times the pairs per second of a long file). A checker
    with an LLM judge stays in this process, where its calls keep their one cache and rate limit.
    """
    batches = batched(items, batch_size)
    if workers > 1 and not _calls_llm(checker):
        from concurrent.futures.process import BrokenProcessPool

        from grounded.executors import ordered

        with checker_pool(checker, workers) as pool:
            try:
                for batch, verdicts in ordered(pool, check_in_worker, batches):
                    yield from zip(batch, verdicts, strict=True)
            except BrokenProcessPool as exc:
                raise CheckError(
                    f"a checking process stopped ({exc}); out of memory? "
                    f"rerun with fewer --workers than {workers}"
                ) from exc
        return
    if workers > 1:
        log.info("an LLM judge checks in this process: --workers is ignored")
    for batch in batches:
        yield from zip(batch, check_batch(checker, batch), strict=True)


T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` items (the last may be shorter), read lazily."""
    it = iter(items)
    while batch := list(itertools.islice(it, max(1, size))):
        yield batch


def check_batch(checker: Any, batch: Sequence[Item]) -> list[Verdict]:
    """The verdicts of a batch: the checker's `check_many` when it has one, else one by one."""
    many = getattr(checker, "check_many", None)
    return list(many(batch)) if many is not None else [checker.check(p, s) for p, s in batch]


def _calls_llm(checker: Any) -> bool:
    """True when the checker (or the pair or claim checker it wraps) has an LLM judge or reader."""
    parts = (
        checker,
        getattr(checker, "pair_checker", None),
        getattr(checker, "claim_checker", None),
    )
    return any(
        getattr(part, "judge", None) is not None
        or any(getattr(m, "llm", None) is not None for m, _ in getattr(part, "models", ()))
        for part in parts
        if part is not None
    )


def checker_pool(checker: Checker, workers: int) -> Any:
    """A `workers`-process executor (grounded.executors.LocalExecutor) whose processes get
    `checker` once, when they start; `check_in_worker` checks a batch there."""
    from grounded.executors import LocalExecutor

    return LocalExecutor(workers=workers, initializer=_install, initargs=(checker,))


# The checker of a worker process (set once when the process starts).
_INSTALLED: list[Checker] = []


def _install(checker: Checker) -> None:
    _INSTALLED[:] = [checker]


def check_in_worker(batch: Sequence[Item]) -> list[Verdict]:
    """The verdicts of a batch, in a `checker_pool` process."""
    return check_batch(_INSTALLED[0], batch)
