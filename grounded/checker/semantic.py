"""Semantic support: MiniLM similarity between the answer statement and its closest source windows."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from grounded.checker.context import CheckResult, Context
from grounded.text import content

# How the pipeline runs it (ModelCheck): only when the lexical score falls inside this band
# around the threshold (MiniLM is the slow part; semantic="all" runs it for every pair)...
SEMANTIC_BAND: float = 0.3
# ...and only in a mode whose fitted `sem` weight is at least this...
MIN_SEM_WEIGHT: float = 0.25
# ...and only in these modes: in "qa" MiniLM adds little on the held-out halves (fit_checker
# prints both) and costs ~100x in throughput; semantic="all" still runs it.
SEMANTIC_MODES: frozenset[str] = frozenset({"claim"})


class SemanticCheck:
    """Cosine similarity between the answer statement and its closest source windows (MiniLM).

    A ModelCheck: signal `sem`, weighed by the "<mode>+sem" calibration.
    """

    name = "semantic"
    signal = "sem"
    neutral: dict[str, float] = {}  # no `sem` until it ran: the lexical calibration scores the pair

    def __init__(
        self,
        embedder: Any = None,
        *,
        k: int = 3,
        cache_size: int = 50_000,
        band: float = SEMANTIC_BAND,
        modes: frozenset[str] = SEMANTIC_MODES,
        min_weight: float = MIN_SEM_WEIGHT,
    ) -> None:
        self._embedder = embedder
        self.k = k
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self.cache_size = cache_size
        self.band = band
        self.modes = modes
        self.min_weight = min_weight

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from grounded.embed import DEFAULT_EMBEDDER, get_embedder

            self._embedder = get_embedder(DEFAULT_EMBEDDER)
        return self._embedder

    def texts(self, ctx: Context) -> list[str]:
        """The texts this check needs embedded for one pair (for batching)."""
        tokens = ctx.claim_tokens or content(ctx.answer_tokens)
        windows = [text for _, text, _ in ctx.ranked_windows(tokens, k=self.k)]
        return [ctx.statement, *windows]

    def prefetch(self, ctxs: Sequence[Context]) -> None:
        """Embed the texts of every pair in one batch."""
        self.embed(t for ctx in ctxs for t in self.texts(ctx))

    def embed(self, texts: Iterable[str]) -> None:
        """Embed every text not yet cached in one batch."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if not todo:
            return
        vecs = self.embedder.embed(todo)
        for text, vec in zip(todo, vecs, strict=True):
            self._cache[text] = vec
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        texts = self.texts(ctx)
        if len(texts) < 2:
            return res
        self.embed(texts)
        q = self._cache[texts[0]]
        res.signals[self.signal] = max(float(q @ self._cache[t]) for t in texts[1:])
        return res
