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
        self._cache: dict[Any, float] = {}  # Item -> probability
        self._pending: dict[int, Any] = {}  # id(ctx) -> Item, for the batch being prefetched

    @property
    def verifier(self) -> Any:
        if self._verifier is None:
            from grounded.verifier import Verifier

            self._verifier = Verifier.load()
        return self._verifier

    def item(self, ctx: Context) -> Any:
        """What the verifier reads for one pair: the question, the answer and the window around
        the answer in the first source that holds it (else the sources' best region)."""
        from grounded.verifier import Item, evidence_window, locate, window_at

        texts = [c.text for c in ctx.sources if c.text.strip()] or ctx.support_texts
        question, answer = ctx.pair.question, ctx.pair.answer
        words = self.verifier.window_words
        for text in texts:
            span = locate(text, answer)
            if span is not None:
                return Item(question, answer, window_at(text, *span, words=words))
        return Item(
            question, answer, evidence_window(" ".join(texts), answer, question, words=words)
        )

    def prefetch(self, ctxs: Sequence[Context]) -> None:
        """Score every pair not yet cached in one batched call."""
        # the batch's items, kept for `run` (its contexts are alive until then: ids are unique)
        self._pending = {id(c): self.item(c) for c in ctxs}
        todo = list(dict.fromkeys(i for i in self._pending.values() if i not in self._cache))
        if not todo:
            return
        if len(self._cache) + len(todo) > self.cache_size:
            self._cache.clear()
        probs = self.verifier.probabilities(todo)
        self._cache.update(zip(todo, probs, strict=True))

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if not ctx.pair.question.strip() or not ctx.pair.answer.strip():
            return res
        item = self._pending.pop(id(ctx), None) or self.item(ctx)
        if item not in self._cache:
            self.prefetch([ctx])
        p = self._cache[item]
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
