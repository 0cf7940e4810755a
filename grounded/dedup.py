"""Remove duplicate questions: exact, near (character-level) and paraphrases (embeddings).

Pairs are ranked best-supported first (checker score, then number of evidence spans, then
input order); walking that ranking, a pair is dropped when it duplicates one already kept, so
the kept copy is always the best-supported one. Three tests, cheapest first:

- exact: same question after normalisation (case, punctuation, spaces, Unicode form);
- near: rapidfuzz `max(ratio, token_sort_ratio) >= near * 100` on normalised questions, and
  compatible answers;
- semantic: cosine of MiniLM question embeddings `>= semantic`, and compatible answers.

"Compatible answers" (equal after normalisation, one containing the other, or token_set_ratio
>= 90) keeps pairs such as "When was Marie Curie born?" / "When was Pierre Curie born?" apart:
their questions are close in characters and meaning but they ask about different things.
The default cosine 0.92 was chosen on the 4,961 SQuAD dev questions in the bench set (MiniLM):
251 question pairs reach it, 152 with compatible answers, and those read as the same question
asked twice ("How much did it cost to build Levi's Stadium?" / "How much did Levi's Stadium
cost?", 0.939). Between 0.85 and 0.92 the compatible pairs are still mostly duplicates but
related, different questions start to appear ("How many first downs did Denver have?" vs the
same for Super Bowl 50 is a duplicate; topic-sharing questions with equal short answers are
not), so 0.92 errs towards keeping.

Similarities are computed in blocks of rows (rapidfuzz `cdist`, numpy matrix products), never
in a Python loop over all pairs of questions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from grounded.embed import DEFAULT_EMBEDDER, resolve_embedder
from grounded.types import QAPair, Reason, Rejection

BLOCK = 512
ANSWER_MATCH = 90
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase, NFKC, punctuation to spaces, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def rank_key(pair: QAPair) -> tuple[float, int]:
    """Sort key, best first: highest checker score, then most evidence."""
    score = pair.verdict.score if pair.verdict is not None else -1.0
    return (-score, -len(pair.evidence))


def answers_compatible(a: str, b: str) -> bool:
    """Same answer in other words: equal, contained, or close as token sets."""
    na, nb = normalise(a), normalise(b)
    if na == nb or not na or not nb:
        return True
    if na in nb or nb in na:
        return True
    return fuzz.token_set_ratio(na, nb) >= ANSWER_MATCH


def dedup(
    pairs: Iterable[QAPair],
    *,
    near: float | None = 0.9,
    semantic: float | None = 0.92,
    embedder: Any = DEFAULT_EMBEDDER,
) -> tuple[list[QAPair], list[Rejection]]:
    """Drop duplicate questions, keeping the best-supported copy; return (kept in input order, removals).

    `near=None` or `semantic=None` (or `embedder=None`) switch that test off.
    """
    items = list(pairs)
    order = sorted(range(len(items)), key=lambda i: (*rank_key(items[i]), i))
    dup_of: dict[int, tuple[int, str]] = {}

    # Exact: one representative per normalised question.
    first: dict[str, int] = {}
    for i in order:
        key = normalise(items[i].question)
        if key in first:
            dup_of[i] = (first[key], "exact duplicate")
        else:
            first[key] = i
    reps = [i for i in order if i not in dup_of]  # best first
    texts = [normalise(items[i].question) for i in reps]

    if near is not None and len(reps) > 1:
        _greedy(reps, items, dup_of, _fuzzy_matches(texts, near), "near duplicate", "similarity")

    alive = [k for k, i in enumerate(reps) if i not in dup_of]
    emb = resolve_embedder(embedder) if semantic is not None and len(alive) > 1 else None
    if emb is not None:
        vecs = np.asarray(emb.embed([items[reps[k]].question for k in alive]), dtype=np.float32)
        sub = [reps[k] for k in alive]
        _greedy(
            sub,
            items,
            dup_of,
            _cosine_matches(vecs, float(semantic or 0.0)),
            "paraphrase",
            "cosine",
        )

    kept = [p for i, p in enumerate(items) if i not in dup_of]
    removed = []
    for i in sorted(dup_of):
        j, how = dup_of[i]
        keeper = items[_root(j, dup_of)]
        via = f" (kept: {keeper.id})" if keeper is not items[j] else ""
        removed.append(
            Rejection(
                stage="dedup",
                reasons=(
                    Reason("duplicate", f"{how} of {items[j].id}: {items[j].question!r}{via}"),
                ),
                pair=items[i],
                duplicate_of=keeper.id,
            )
        )
    return kept, removed


def _root(i: int, dup_of: dict[int, tuple[int, str]]) -> int:
    while i in dup_of:
        i = dup_of[i][0]
    return i


def _greedy(
    idx: Sequence[int],
    items: Sequence[QAPair],
    dup_of: dict[int, tuple[int, str]],
    matches: Iterable[tuple[int, list[tuple[int, float]]]],
    how: str,
    measure: str,
) -> None:
    """Walk rows best first; a row whose better match is still kept (and answers agree) is a duplicate."""
    for row, cands in matches:
        i = idx[row]
        if i in dup_of:
            continue
        for col, score in cands:
            j = idx[col]
            if j in dup_of:
                continue
            if answers_compatible(items[i].answer, items[j].answer):
                shown = f"{score:.0f}" if measure == "similarity" else f"{score:.3f}"
                dup_of[i] = (j, f"{how} ({measure} {shown})")
                break


def _fuzzy_matches(
    texts: Sequence[str], near: float
) -> Iterable[tuple[int, list[tuple[int, float]]]]:
    """For each row, the earlier (better-ranked) rows at or above the threshold, best first."""
    cutoff = near * 100
    # token_sort_ratio is ratio on token-sorted strings; sorting once here is ~10x faster than per pair.
    sorted_texts = [" ".join(sorted(t.split())) for t in texts]
    for lo in range(0, len(texts), BLOCK):
        hi = min(lo + BLOCK, len(texts))
        # Only columns before the block's end can be earlier than its rows.
        a = process.cdist(
            texts[lo:hi],
            texts[:hi],
            scorer=fuzz.ratio,
            score_cutoff=cutoff,
            workers=-1,
            dtype=np.uint8,
        )
        b = process.cdist(
            sorted_texts[lo:hi],
            sorted_texts[:hi],
            scorer=fuzz.ratio,
            score_cutoff=cutoff,
            workers=-1,
            dtype=np.uint8,
        )
        yield from _earlier(np.maximum(a, b).astype(np.float32), lo, cutoff)


def _cosine_matches(
    vecs: np.ndarray, threshold: float
) -> Iterable[tuple[int, list[tuple[int, float]]]]:
    # float64 sums: in float32 a cosine moves by ~1e-7 with the matrix's shape and the BLAS
    # threads, enough to flip a pair that sits on the threshold between runs.
    vecs = vecs.astype(np.float64)
    for lo in range(0, len(vecs), BLOCK):
        hi = min(lo + BLOCK, len(vecs))
        yield from _earlier(vecs[lo:hi] @ vecs[:hi].T, lo, threshold)


def _earlier(
    sims: np.ndarray, lo: int, cutoff: float
) -> Iterable[tuple[int, list[tuple[int, float]]]]:
    rows, cols = np.nonzero(sims >= cutoff)
    keep = cols < rows + lo
    rows, cols = rows[keep], cols[keep]
    found: dict[int, list[tuple[int, float]]] = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        found.setdefault(r, []).append((c, float(sims[r, c])))
    for r in sorted(found):
        yield lo + r, sorted(found[r], key=lambda x: (-x[1], x[0]))
