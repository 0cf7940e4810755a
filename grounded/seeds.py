"""Which chunks to generate from: spread over documents and sections, deterministic per seed."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rapidfuzz import fuzz

from grounded.types import Chunk

MIN_WORDS = 8  # shorter chunks are headings or captions: nothing to ask about


def seed_order(
    chunks: Iterable[Chunk], *, seed: int = 0, min_words: int = MIN_WORDS
) -> list[Chunk]:
    """Every usable chunk once, round-robin over documents, and within each over its sections.

    A 3-chunk document gets its first question as early as a 3,000-chunk one, so small documents
    are not drowned out; within a document, sections take turns. The same seed gives the same order.
    """
    rng = random.Random(seed)
    by_doc: dict[str, dict[tuple[str, ...], list[Chunk]]] = {}
    for c in sorted(chunks, key=lambda c: (c.doc_id, c.start, c.id)):
        if len(c.text.split()) < min_words:
            continue
        by_doc.setdefault(c.doc_id, OrderedDict()).setdefault(tuple(c.section), []).append(c)
    per_doc: list[list[Chunk]] = []
    for doc_id in sorted(by_doc):
        sections = list(by_doc[doc_id].values())
        for sec in sections:
            rng.shuffle(sec)
        rng.shuffle(sections)
        per_doc.append(list(_round_robin(sections)))
    rng.shuffle(per_doc)
    return list(_round_robin(per_doc))


def _round_robin(groups: Sequence[Sequence[Any]]) -> Iterator[Any]:
    longest = max((len(g) for g in groups), default=0)
    for i in range(longest):
        for g in groups:
            if i < len(g):
                yield g[i]


def partners(
    index: Any,
    chunk: Chunk,
    count: int,
    *,
    k: int = 8,
    max_similarity: float = 0.85,
    min_words: int = MIN_WORDS,
) -> list[Chunk]:
    """Up to `count` chunks related to `chunk` for a multi-hop question, from `index.similar`.

    Skips the chunk itself, chunks overlapping it in the same document, and near-duplicates
    (text similarity above `max_similarity`), which would make a one-hop question in disguise.
    """
    if count <= 0:
        return []
    chosen: list[Chunk] = []
    for hit in index.similar(chunk, k=k):
        cand = hit.chunk
        if cand.id == chunk.id or len(cand.text.split()) < min_words:
            continue
        if any(
            _overlaps(cand, other) or _near_duplicate(cand, other, max_similarity)
            for other in [chunk, *chosen]
        ):
            continue
        chosen.append(cand)
        if len(chosen) == count:
            break
    return chosen


def _overlaps(a: Chunk, b: Chunk) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


def _near_duplicate(a: Chunk, b: Chunk, threshold: float) -> bool:
    return fuzz.ratio(a.text, b.text) / 100.0 > threshold
