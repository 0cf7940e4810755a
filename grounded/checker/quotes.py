"""Evidence quotes must be in the sources (re-verified by offsets when given)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grounded.align import align, normalise
from grounded.checker.context import CheckResult, Context, short
from grounded.types import Chunk, Reason


@dataclass
class QuoteCheck:
    """Every evidence quote must be in the sources; offsets, when given, must point at it."""

    min_score: float = 0.9
    name: str = "quotes"

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if not ctx.pair.evidence:
            return res
        if not ctx.sources:
            res.reasons.append(
                Reason("no_sources", "evidence cites no source that could be loaded")
            )
            return res
        scores = []
        for ev in ctx.pair.evidence:
            quote = ev.quote or ev.text
            if ev.end > ev.start:
                verified = self._verify_offsets(ev, ctx.sources)
                if verified is True:
                    scores.append(1.0)
                    continue
                if verified is False:
                    res.reasons.append(
                        Reason(
                            "offset_mismatch",
                            f"the source text at {ev.doc_id}[{ev.start}:{ev.end}] is not the quoted text",
                        )
                    )
                    scores.append(0.0)
                    continue
            best = 0.0
            for chunk in ctx.sources:
                found = align(quote, chunk.text, min_score=0.0)
                if found is not None:
                    best = max(best, found.score)
                    if best >= 1.0:
                        break
            scores.append(best)
            if best < self.min_score:
                res.reasons.append(
                    Reason(
                        "quote_not_found",
                        f"quote not in the sources (best match {best:.2f}): {short(quote)}",
                    )
                )
        res.signals["quote_score"] = min(scores) if scores else 1.0
        return res

    @staticmethod
    def _verify_offsets(ev: Any, sources: Sequence[Chunk]) -> bool | None:
        """True/False when a source chunk covers the offsets; None when none does."""
        for chunk in sources:
            if chunk.doc_id != ev.doc_id and chunk.id != ev.chunk_id:
                continue
            if chunk.start <= ev.start and ev.end <= chunk.end:
                at = chunk.text[ev.start - chunk.start : ev.end - chunk.start]
                if at == ev.text or normalise(at)[0] == normalise(ev.text)[0]:
                    return True
                return False
        return None
