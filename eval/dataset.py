"""Dataset health: diversity, question types, lengths, source coverage, and a narrowing warning.

Every figure is computed the same way on the QA set and on a reference (a human QA set such as
SQuAD), so they can be compared. Size-dependent figures (distinct-n, coverage spread) are
compared on equal-size random samples: both sides are subsampled to
``m = min(len(set), len(reference), MATCH_CAP)`` questions, ``DRAWS`` times with a fixed seed,
and the draws are averaged.

Narrowing rules (each one a reason; the warning fires when any holds, and only when both sides
have at least ``MIN_N`` questions):

- distinct-2 on matched samples below ``DISTINCT2_RATIO`` x the reference's;
- question-type (wh-word) entropy below ``ENTROPY_RATIO`` x the reference's;
- mean pairwise embedding cosine above the reference's + ``SIMILARITY_GAP``;
- the most common 3-word question opening covers more than max(``PREFIX_FACTOR`` x the
  reference's share, reference share + ``PREFIX_GAP``);
- document spread (documents cited / min(pairs, documents), on matched samples) below
  ``SPREAD_RATIO`` x the reference's, when both sides know their document totals.

Without a reference only the template rule applies, against the absolute ``PREFIX_ALONE``.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grounded.embed import DEFAULT_EMBEDDER, resolve_embedder
from grounded.qaset import QASet, read_qa_set, with_universe
from grounded.types import QAPair

MATCH_CAP = 1000
DRAWS = 5
EMBED_SAMPLE = 500
MIN_N = 10
DISTINCT2_RATIO = 0.80
ENTROPY_RATIO = 0.70
SIMILARITY_GAP = 0.15
PREFIX_FACTOR = 3.0
PREFIX_GAP = 0.20
PREFIX_ALONE = 0.50
SPREAD_RATIO = 0.50

WH_TYPES = (
    "what", "which", "who", "whom", "whose", "when", "where", "why",
    "how many", "how much", "how", "yes/no", "other",
)  # fmt: skip
_WH_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"}
_AUX = {
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "has",
    "have", "had", "should", "shall", "may", "might", "must", "am",
}  # fmt: skip
_WORD = re.compile(r"\w+", re.UNICODE)


# ---------------------------------------------------------------- single figures


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Unique n-grams / all n-grams over the texts (n-grams do not cross text boundaries)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        toks = words(text)
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def wh_type(question: str) -> str:
    """The question's type: the first wh-word ('how many'/'how much' apart), yes/no, or other."""
    toks = words(question)
    for i, tok in enumerate(toks):
        if tok in _WH_WORDS:
            if tok == "how" and i + 1 < len(toks) and toks[i + 1] in ("many", "much"):
                return f"how {toks[i + 1]}"
            return tok
    if toks and toks[0] in _AUX:
        return "yes/no"
    return "other"


def entropy_bits(counts: Mapping[str, int] | Counter[str]) -> float:
    total = sum(counts.values())
    if not total:
        return 0.0
    return max(0.0, float(-sum((c / total) * math.log2(c / total) for c in counts.values() if c)))


def wh_distribution(questions: Sequence[str]) -> dict[str, Any]:
    counts = Counter(wh_type(q) for q in questions)
    n = len(questions)
    ordered = {t: counts[t] for t in WH_TYPES if counts[t]}
    return {
        "counts": ordered,
        "shares": {t: round(c / n, 4) for t, c in ordered.items()} if n else {},
        "entropy_bits": round(entropy_bits(counts), 4),
    }


def top_prefix(questions: Sequence[str], k: int = 3) -> dict[str, Any]:
    """The most common opening of k words and the share of questions that start with it."""
    prefixes = Counter(" ".join(words(q)[:k]) for q in questions if words(q))
    if not prefixes:
        return {"prefix": "", "share": 0.0}
    prefix, count = prefixes.most_common(1)[0]
    return {"prefix": prefix, "share": round(count / len(questions), 4)}


def length_stats(texts: Sequence[str]) -> dict[str, Any]:
    """Length in words: mean, median, p90, min, max, and a histogram (bins of `edges`)."""
    lens = np.array([len(words(t)) for t in texts], dtype=float)
    if not lens.size:
        return {"mean": 0.0, "median": 0.0, "p90": 0.0, "min": 0, "max": 0, "histogram": {}}
    edges = [0, 1, 2, 3, 4, 6, 8, 11, 16, 21, 31, 51]
    hist: dict[str, int] = {}
    for lo, hi in zip(edges, edges[1:] + [None], strict=True):
        label = f"{lo}" if hi == lo + 1 else (f"{lo}-{hi - 1}" if hi else f"{lo}+")
        hist[label] = int(((lens >= lo) & ((lens < hi) if hi else True)).sum())
    return {
        "mean": round(float(lens.mean()), 2),
        "median": float(np.median(lens)),
        "p90": float(np.percentile(lens, 90)),
        "min": int(lens.min()),
        "max": int(lens.max()),
        "histogram": hist,
    }


def mean_pairwise_similarity(
    texts: Sequence[str], embedder: Any, *, sample: int = EMBED_SAMPLE, seed: int = 0
) -> dict[str, Any]:
    """Mean cosine over distinct pairs of question embeddings (higher = less diverse), on a sample."""
    items = list(texts)
    if len(items) > sample:
        items = random.Random(seed).sample(items, sample)
    if len(items) < 2:
        return {
            "mean_cosine": None,
            "sampled": len(items),
            "embedder": getattr(embedder, "name", ""),
        }
    vecs = np.asarray(embedder.embed(items), dtype=np.float32)
    sums = vecs.sum(axis=0)
    # sum over all ordered pairs = |sum v|^2; remove the diagonal (each |v|^2 = 1 when normalised).
    total = float(sums @ sums) - float((vecs * vecs).sum())
    n = len(items)
    return {
        "mean_cosine": round(total / (n * (n - 1)), 4),
        "sampled": n,
        "embedder": getattr(embedder, "name", ""),
    }


def _cited(pair: QAPair) -> tuple[set[str], set[str]]:
    docs = {d for d in pair.doc_ids if d} | {e.doc_id for e in pair.evidence if e.doc_id}
    chunks = {c for c in pair.chunk_ids if c} | {e.chunk_id for e in pair.evidence if e.chunk_id}
    return docs, chunks


def coverage(qaset: QASet) -> dict[str, Any] | None:
    """Share of documents and chunks cited, pairs per document, documents never used (None without citations)."""
    per_doc: Counter[str] = Counter()
    chunks: set[str] = set()
    for pair in qaset.pairs:
        docs, cks = _cited(pair)
        per_doc.update(docs)
        chunks |= cks
    if not per_doc and not chunks:
        return None
    out: dict[str, Any] = {"documents_cited": len(per_doc), "chunks_cited": len(chunks)}
    universe = qaset.documents
    if universe is not None:
        total = len(universe)
        out["documents_total"] = total
        out["documents_share"] = round(len(per_doc) / total, 4) if total else None
        known = [d for d in universe if d.get("doc_id")]
        titles = {str(d["doc_id"]): str(d.get("title") or "") for d in known}
        rows: list[dict[str, Any]] = [
            {"doc_id": doc_id, "title": titles.get(doc_id, ""), "pairs": per_doc.get(doc_id, 0)}
            for doc_id in (list(titles) or list(per_doc))
        ]
        # Cited ids the index does not know still show up, so nothing is hidden.
        rows += [
            {"doc_id": d, "title": "", "pairs": c}
            for d, c in per_doc.items()
            if titles and d not in titles
        ]
        out["documents"] = rows
        if known:
            unused = [d["title"] or d["doc_id"] for d in rows if d["pairs"] == 0]
            out["unused_documents_count"] = len(unused)
            out["unused_documents"] = unused
        out["document_spread"] = _spread(qaset.pairs, total)
    else:
        out["documents"] = [
            {"doc_id": d, "title": "", "pairs": c} for d, c in per_doc.most_common()
        ]
    if qaset.chunks_total:
        out["chunks_total"] = qaset.chunks_total
        out["chunks_share"] = round(len(chunks) / qaset.chunks_total, 4)
    return out


def _spread(pairs: Sequence[QAPair], total_docs: int) -> float | None:
    """Documents cited / the most documents this many pairs could cite."""
    if not pairs or not total_docs:
        return None
    docs: set[str] = set()
    for pair in pairs:
        docs |= _cited(pair)[0]
    return round(len(docs) / min(len(pairs), total_docs), 4)


def metrics(qaset: QASet, *, embedder: Any = None, seed: int = 0) -> dict[str, Any]:
    """All single-set figures; `embedder=None` skips the embedding dispersion."""
    questions = [p.question for p in qaset.pairs]
    out: dict[str, Any] = {
        "name": qaset.name,
        "n": len(questions),
        "distinct_1": round(distinct_n(questions, 1), 4),
        "distinct_2": round(distinct_n(questions, 2), 4),
        "distinct_3": round(distinct_n(questions, 3), 4),
        "wh": wh_distribution(questions),
        "top_prefix": top_prefix(questions),
        "question_length": length_stats(questions),
        "answer_length": length_stats([p.answer for p in qaset.pairs]),
        "kinds": dict(Counter(p.kind for p in qaset.pairs).most_common()),
    }
    if embedder is not None:
        out["similarity"] = mean_pairwise_similarity(questions, embedder, seed=seed)
    cov = coverage(qaset)
    if cov is not None:
        out["coverage"] = cov
    return out


# ---------------------------------------------------------------- comparison


def _samples(items: Sequence[Any], m: int, draws: int, rng: random.Random) -> list[Sequence[Any]]:
    if len(items) <= m:
        return [items]
    return [rng.sample(list(items), m) for _ in range(draws)]


def matched(qaset: QASet, reference: QASet, *, seed: int = 0, draws: int = DRAWS) -> dict[str, Any]:
    """Size-dependent figures on equal-size random samples of both sets, averaged over draws."""
    m = min(len(qaset), len(reference), MATCH_CAP)
    rng = random.Random(seed)
    out: dict[str, Any] = {"size": m, "draws": draws}
    sides = {"set": qaset, "reference": reference}
    samples = {k: _samples(v.pairs, m, draws, rng) for k, v in sides.items()}
    for n in (1, 2, 3):
        out[f"distinct_{n}"] = {
            k: round(
                float(np.mean([distinct_n([p.question for p in s], n) for s in samples[k]])), 4
            )
            for k in sides
        }
    if qaset.documents and reference.documents:
        spreads = {}
        for k, side in sides.items():
            vals = [_spread(s, len(side.documents or ())) for s in samples[k]]
            spreads[k] = (
                round(float(np.mean([v for v in vals if v is not None])), 4)
                if any(v is not None for v in vals)
                else None
            )
        out["document_spread"] = spreads
    return out


def narrowing(
    figures: Mapping[str, Any], reference: Mapping[str, Any] | None, match: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Apply the narrowing rules (module docstring) and say which fired and why."""
    reasons: list[str] = []
    checks: dict[str, Any] = {}
    n = int(figures.get("n", 0))
    if n < MIN_N or (reference is not None and int(reference.get("n", 0)) < MIN_N):
        return {
            "warning": False,
            "reasons": [],
            "checks": {},
            "note": f"too few questions to judge (need {MIN_N})",
        }
    prefix = figures["top_prefix"]
    if reference is None:
        fired = prefix["share"] > PREFIX_ALONE
        checks["top_prefix"] = {"value": prefix["share"], "limit": PREFIX_ALONE, "fired": fired}
        if fired:
            reasons.append(
                f"{prefix['share']:.0%} of questions start with '{prefix['prefix']}' (limit {PREFIX_ALONE:.0%})"
            )
        return {
            "warning": bool(reasons),
            "reasons": reasons,
            "checks": checks,
            "note": "no reference given: only the template rule applies",
        }

    assert match is not None
    d2 = match["distinct_2"]
    limit = round(DISTINCT2_RATIO * d2["reference"], 4)
    fired = d2["set"] < limit
    checks["distinct_2"] = {
        "value": d2["set"],
        "reference": d2["reference"],
        "limit": limit,
        "fired": fired,
    }
    if fired:
        reasons.append(
            f"distinct-2 {d2['set']:.3f} vs reference {d2['reference']:.3f} on {match['size']} questions each (limit {limit:.3f})"
        )

    ent, ref_ent = figures["wh"]["entropy_bits"], reference["wh"]["entropy_bits"]
    limit = round(ENTROPY_RATIO * ref_ent, 4)
    fired = ent < limit
    checks["wh_entropy"] = {"value": ent, "reference": ref_ent, "limit": limit, "fired": fired}
    if fired:
        reasons.append(
            f"question-type entropy {ent:.2f} bits vs reference {ref_ent:.2f} (limit {limit:.2f})"
        )

    sim = (figures.get("similarity") or {}).get("mean_cosine")
    ref_sim = (reference.get("similarity") or {}).get("mean_cosine")
    if sim is not None and ref_sim is not None:
        limit = round(ref_sim + SIMILARITY_GAP, 4)
        fired = sim > limit
        checks["similarity"] = {"value": sim, "reference": ref_sim, "limit": limit, "fired": fired}
        if fired:
            reasons.append(
                f"questions are more alike: mean cosine {sim:.3f} vs reference {ref_sim:.3f} (limit {limit:.3f})"
            )

    ref_prefix = reference["top_prefix"]
    limit = round(max(PREFIX_FACTOR * ref_prefix["share"], ref_prefix["share"] + PREFIX_GAP), 4)
    fired = prefix["share"] > limit
    checks["top_prefix"] = {
        "value": prefix["share"],
        "reference": ref_prefix["share"],
        "limit": limit,
        "fired": fired,
    }
    if fired:
        reasons.append(
            f"{prefix['share']:.0%} of questions start with '{prefix['prefix']}' vs {ref_prefix['share']:.0%} in the reference"
        )

    spread = match.get("document_spread") or {}
    if spread.get("set") is not None and spread.get("reference"):
        limit = round(SPREAD_RATIO * spread["reference"], 4)
        fired = spread["set"] < limit
        checks["document_spread"] = {
            "value": spread["set"],
            "reference": spread["reference"],
            "limit": limit,
            "fired": fired,
        }
        if fired:
            reasons.append(
                f"covers fewer documents: spread {spread['set']:.2f} vs reference {spread['reference']:.2f} (limit {limit:.2f})"
            )
    return {"warning": bool(reasons), "reasons": reasons, "checks": checks}


def dataset_health(
    data: QASet | Sequence[QAPair] | str | Path,
    *,
    reference: QASet | str | Path | None = None,
    index: str | Path | None = None,
    chroma_url: str | None = None,
    format: str | None = None,
    reference_format: str | None = None,
    embedder: Any = DEFAULT_EMBEDDER,
    seed: int = 0,
) -> dict[str, Any]:
    """Diversity, question types, lengths and coverage of a QA set, compared with a reference if given.

    >>> health = dataset_health("out/qa.jsonl", reference="squad-dev.json")  # doctest: +SKIP
    >>> health["narrowing"]["warning"], health["distinct_2"]  # doctest: +SKIP
    """
    if isinstance(data, (str, Path)):
        qaset = read_qa_set(data, format=format, index=index, chroma_url=chroma_url)
    elif isinstance(data, QASet):
        qaset = (
            with_universe(data, index=index, chroma_url=chroma_url) if index is not None else data
        )
    else:
        qaset = (
            with_universe(QASet(tuple(data)), index=index, chroma_url=chroma_url)
            if index is not None
            else QASet(tuple(data))
        )
    emb = resolve_embedder(embedder) if len(qaset) >= 2 else None
    figures = metrics(qaset, embedder=emb, seed=seed)
    ref_figures = match = None
    if reference is not None:
        ref_set = (
            reference
            if isinstance(reference, QASet)
            else read_qa_set(reference, format=reference_format)
        )
        ref_figures = metrics(ref_set, embedder=emb, seed=seed)
        match = matched(qaset, ref_set, seed=seed)
        figures["reference"] = ref_figures
        figures["matched"] = match
    figures["narrowing"] = narrowing(figures, ref_figures, match)
    return figures
