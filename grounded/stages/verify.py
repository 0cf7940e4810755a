"""verify: Candidate -> QAPair, or a `verify` Rejection when the model, answering the question
from the passages without the proposed answer, disagrees (the round trip of
grounded.checker.roundtrip). Generation hands each call's checked pairs to it (`averify`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any

from grounded.llm import is_local
from grounded.stages.base import Stage
from grounded.types import Candidate, Chunk, QAPair, Rejection

if TYPE_CHECKING:
    from grounded.stages.context import Context


@dataclass
class Verified:
    """One read-back of a passage's pairs: each pair kept (with the reading's signals) or
    rejected, in order, and what it took."""

    results: list[QAPair | Rejection] = field(default_factory=list)
    calls: int = 0
    unverified: list[bool] = field(default_factory=list)  # kept without a reading (reader failed)


class VerifyStage(Stage):
    """The round trip through `llm`: one reader request per passage group, a Yes/No per pair for
    a local model (fitted on its probabilities), the pair's score against `threshold`."""

    name = "verify"

    def __init__(
        self,
        llm: Any,
        *,
        style: str = "json_schema",
        refusal: bool = False,
        threshold: float | None = None,
    ) -> None:
        self.llm = llm
        self.style = style
        self.refusal = refusal  # unanswerable pairs: their answer says the passages do not tell
        self.threshold = threshold

    async def averify(self, sources: Sequence[Chunk], pairs: Sequence[QAPair]) -> Verified:
        """Read `pairs` back against their passages `sources` (raises LLMError when the reader's
        call fails: the caller leaves the pairs for a rerun)."""
        from grounded.checker.roundtrip import read_back

        result = await read_back(
            self.llm,
            [c.text for c in sources],
            list(pairs),
            style=self.style,
            refusal=self.refusal,
            judge=is_local(self.llm.model),
            threshold=self.threshold,
        )
        out = Verified(calls=result.calls)
        for pair, found in zip(pairs, result.checks, strict=True):
            pair = found.apply(pair)
            if found.rejects and found.reasons:
                # the reader's reason, the model's No and the score below the threshold
                rejection = Rejection(
                    "verify", found.reasons, pair=pair, provenance=pair.provenance
                )
                out.results.append(rejection)
                out.unverified.append(False)
                continue
            out.results.append(pair)
            out.unverified.append(found.reason is not None)
        return out

    def process(self, records: Iterable[Candidate], ctx: Context) -> Iterator[QAPair | Rejection]:
        """Candidates with the same passages are read back together, in one request."""
        counts = ctx.ledger.stage(self.name)
        for sources, group in groupby(records, key=lambda c: c.sources):
            pairs = [c.pair for c in group]
            counts.records_in += len(pairs)
            verified = asyncio.run(self.averify(sources, pairs))
            counts.records_out += sum(isinstance(r, QAPair) for r in verified.results)
            yield from verified.results
