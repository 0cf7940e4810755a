"""dedup: pairs -> the same pairs less duplicates (which become `dedup` rejections); work in
grounded.dedup."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from grounded.stages.base import Stage, Timer
from grounded.types import QAPair, Rejected

if TYPE_CHECKING:
    from grounded.stages.context import Context

_FROM_CONTEXT: Any = object()


class DedupStage(Stage):
    """Kept pairs -> the same pairs less duplicates, which become `dedup` rejections; rejections pass.

    embedder: what measures semantic duplicates (default: the run's, `ctx.embedder`; None for
    the lexical test only).
    """

    name = "dedup"

    def __init__(
        self,
        *,
        embedder: Any = _FROM_CONTEXT,
        near: float | None = 0.9,
        semantic: float | None = 0.92,
    ) -> None:
        self.embedder = embedder
        self.near = near
        self.semantic = semantic

    def process(
        self, records: Iterable[QAPair | Rejected], ctx: Context
    ) -> Iterator[QAPair | Rejected]:
        """Rejections first as they come, then the kept pairs and the duplicates found among them."""
        from grounded.dedup import dedup

        pairs: list[QAPair] = []
        for rec in records:
            if isinstance(rec, QAPair):
                pairs.append(rec)
            else:
                yield rec
        ctx.notify("[3/4] deduplicate")
        counts = ctx.ledger.stage(self.name)  # after the stages upstream: the run's order
        counts.records_in += len(pairs)
        embedder = ctx.embedder if self.embedder is _FROM_CONTEXT else self.embedder
        with Timer(counts):
            kept, removed = dedup(pairs, near=self.near, semantic=self.semantic, embedder=embedder)
        counts.records_out += len(kept)
        yield from kept
        yield from removed
