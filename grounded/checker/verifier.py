"""The learned verifier as a check: does the passage answer this question with this answer?

A ModelCheck (signal `ver`, the verifier's probability), weighed by the "qa+ver" calibration,
which is sign-constrained like every signal: a yes can only raise the score, a no only lower it.
It runs in qa mode on the pairs the cheap checks have not already rejected, batched and
length-sorted (grounded.verifier.Verifier).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grounded.checker.context import CheckResult, Context
from grounded.types import Reason

# The verifier's probability below which a pair gets `question_does_not_ask_for_answer`.
NO_BELOW: float = 0.5


class VerifierCheck:
    """The shipped cross-encoder's probability that the question asks for the answer."""

    name = "verifier"
    signal = "ver"
    modes: frozenset[str] = frozenset({"qa"})
    min_weight = 0.0
    # policy "keepable": pairs within `band` of the threshold or above it, not blocked (a yes can
    # raise a pair by about this much)
    band = 0.15
    neutral: dict[
        str, float
    ] = {}  # the "qa" model has no `ver`: pairs it did not read keep that model

    def __init__(
        self, verifier: Any = None, *, no_below: float = NO_BELOW, cache_size: int = 50_000
    ) -> None:
        self._verifier = verifier
        self.no_below = no_below
        self.cache_size = cache_size
        self._cache: dict[tuple[str, str, str], float] = {}

    @property
    def verifier(self) -> Any:
        if self._verifier is None:
            from grounded.verifier import Verifier

            self._verifier = Verifier.load()
        return self._verifier

    def key(self, ctx: Context) -> tuple[str, str, str]:
        """The (question, answer, evidence window) the verifier reads for one pair."""
        texts = [c.text for c in ctx.sources if c.text.strip()] or ctx.support_texts
        from grounded.verifier import locate

        answer = ctx.pair.answer
        context = next((t for t in texts if locate(t, answer) is not None), " ".join(texts))
        item = self.verifier.item(ctx.pair.question, answer, context)
        return item.question, item.answer, item.window

    def prefetch(self, ctxs: Sequence[Context]) -> None:
        """Score every pair not yet cached in one batched call."""
        from grounded.verifier import Item

        todo = list(dict.fromkeys(k for k in (self.key(c) for c in ctxs) if k not in self._cache))
        if not todo:
            return
        if len(self._cache) + len(todo) > self.cache_size:
            self._cache.clear()
        probs = self.verifier.probabilities([Item(*k) for k in todo])
        self._cache.update(zip(todo, probs, strict=True))

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if not ctx.pair.question.strip() or not ctx.pair.answer.strip():
            return res
        key = self.key(ctx)
        if key not in self._cache:
            self.prefetch([ctx])
        p = self._cache[key]
        res.signals[self.signal] = p
        if p < self.no_below:
            res.reasons.append(
                Reason(
                    "question_does_not_ask_for_answer",
                    f"the learned verifier reads the evidence as not answering the question "
                    f"with this answer (p={p:.2f})",
                )
            )
        return res
