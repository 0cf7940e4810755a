"""Faithfulness evaluation: run a checker on labelled examples and score it.

The positive class of the detection metrics is "unsupported" (what a checker must catch):
precision/recall/F1 are for unsupported answers; AUROC ranks by 1 - support score.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounded.errors import CheckError
from grounded.eval.benchmarks import Example
from grounded.types import Chunk, QAPair, Verdict, count_reasons


def confusion(labels: Sequence[bool], predicted: Sequence[bool]) -> dict[str, int]:
    """Counts with unsupported as the positive class: tp = unsupported and flagged."""
    out = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for supported, kept in zip(labels, predicted, strict=True):
        if not supported:
            out["tp" if not kept else "fn"] += 1
        else:
            out["fp" if not kept else "tn"] += 1
    return out


def balanced_accuracy(labels: Sequence[bool], predicted: Sequence[bool]) -> float:
    """Mean of the recall on supported and on unsupported examples."""
    c = confusion(labels, predicted)
    pos, neg = c["tp"] + c["fn"], c["tn"] + c["fp"]
    recalls = [c["tp"] / pos] if pos else []
    recalls += [c["tn"] / neg] if neg else []
    return sum(recalls) / len(recalls) if recalls else 0.0


def prf(labels: Sequence[bool], predicted: Sequence[bool]) -> dict[str, float]:
    """Precision, recall and F1 for catching unsupported answers."""
    c = confusion(labels, predicted)
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Probability that a supported example scores above an unsupported one (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    # rank-sum (Mann-Whitney U) with average ranks for ties
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    rank_pos = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    u = rank_pos - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def sweep(
    labels: Sequence[bool], scores: Sequence[float], thresholds: Iterable[float] | None = None
) -> list[dict[str, float]]:
    """Balanced accuracy and unsupported-F1 at each threshold (kept when score >= threshold)."""
    ts = list(thresholds) if thresholds is not None else [i / 20 for i in range(1, 20)]
    rows = []
    for t in ts:
        pred = [s >= t for s in scores]
        rows.append(
            {
                "threshold": round(t, 4),
                "balanced_accuracy": balanced_accuracy(labels, pred),
                **prf(labels, pred),
            }
        )
    return rows


def best_threshold(labels: Sequence[bool], scores: Sequence[float]) -> tuple[float, float]:
    """The threshold with the highest balanced accuracy over all distinct scores (for tuning)."""
    cands = sorted(set(scores))
    best = (0.5, -1.0)
    for t in cands:
        ba = balanced_accuracy(labels, [s >= t for s in scores])
        if ba > best[1]:
            best = (t, ba)
    return best


def metrics(
    labels: Sequence[bool], scores: Sequence[float], predicted: Sequence[bool]
) -> dict[str, Any]:
    """All the summary metrics for one labelled set."""
    counts = Counter(labels)
    return {
        "n": len(labels),
        "supported": counts[True],
        "unsupported": counts[False],
        "balanced_accuracy": round(balanced_accuracy(labels, predicted), 4),
        "auroc": round(auroc(labels, scores), 4),
        **{k: round(v, 4) for k, v in prf(labels, predicted).items()},
        "confusion": confusion(labels, predicted),
    }


# ------------------------------------------------------------------------------------------
# Running a checker on examples
# ------------------------------------------------------------------------------------------
def example_pair(ex: Example) -> tuple[QAPair, list[Chunk]]:
    """A QA pair for an example (kind 'external') with its contexts as inline sources."""
    from grounded.checker import inline_sources

    pair = QAPair(
        id=ex.id,
        question=ex.question,
        answer=ex.answer,
        kind="external",
        contexts=ex.contexts,
        origin="real",
    )
    return pair, inline_sources(pair)


@dataclass
class FaithfulnessResult:
    """Per-example verdicts and the summary metrics."""

    examples: list[Example]
    verdicts: list[Verdict]
    seconds: float
    threshold: float
    summary: dict[str, Any] = field(default_factory=dict)


def run_checker(
    examples: Sequence[Example], checker: Any, *, batch_size: int = 64, workers: int = 1
) -> tuple[list[Verdict], float]:
    """Verdicts for examples (answer support only), and the seconds it took (with `workers`
    processes: their start included)."""
    from grounded.checker.stream import check_items

    started = time.perf_counter()
    items = (example_pair(ex) for ex in examples)
    verdicts = [v for _, v in check_items(checker, items, batch_size=batch_size, workers=workers)]
    return verdicts, time.perf_counter() - started


def evaluate(
    examples: Sequence[Example],
    checker: Any,
    *,
    threshold: float | None = None,
    workers: int = 1,
) -> FaithfulnessResult:
    """Run `checker` on `examples` (in `workers` processes) and compute metrics on the labelled
    (non-None) ones."""
    verdicts, seconds = run_checker(examples, checker, workers=workers)
    thr = threshold if threshold is not None else float(getattr(checker, "threshold", 0.5))
    res = FaithfulnessResult(list(examples), verdicts, seconds, thr)
    res.summary = summarise(examples, verdicts, seconds=seconds, threshold=thr)
    return res


def summarise(
    examples: Sequence[Example], verdicts: Sequence[Verdict], *, seconds: float, threshold: float
) -> dict[str, Any]:
    main = [(ex, v) for ex, v in zip(examples, verdicts, strict=True) if ex.label is not None]
    labels = [bool(ex.label) for ex, _ in main]
    scores = [v.score for _, v in main]
    predicted = [v.supported for _, v in main]
    out: dict[str, Any] = {**metrics(labels, scores, predicted), "threshold": threshold}
    out["pairs_per_s"] = round(len(verdicts) / seconds, 1) if seconds > 0 else None
    out["sweep"] = [{k: round(v, 4) for k, v in row.items()} for row in sweep(labels, scores)]
    out["rejected_by_reason"] = count_reasons(v for _, v in main if not v.supported)
    others = [(ex, v) for ex, v in zip(examples, verdicts, strict=True) if ex.label is None]
    if others:
        by_subset: dict[str, list[Verdict]] = {}
        for ex, v in others:
            by_subset.setdefault(ex.subset or "unlabelled", []).append(v)
        out["subsets"] = {
            name: {
                "n": len(vs),
                "kept": sum(v.supported for v in vs),
                "mean_score": round(sum(v.score for v in vs) / len(vs), 4),
            }
            for name, vs in by_subset.items()
        }
    return out


def evaluate_file(
    path: str | Path,
    fmt: str,
    *,
    threshold: float | None = None,
    semantic: str = "borderline",
    judge: str | Any | None = None,
    judge_mode: str = "borderline",
    judge_cache: str | Path | None = None,
    limit: int | None = None,
    checker: Any = None,
    negatives: str | None = None,
    question_checks: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """Read a benchmark file and evaluate the (default) checker (in `workers` processes).

    Examples with questions are checked as `grounded check` checks QA pairs (question checks and
    question-answer fit checks on); a file without questions (WiCE claims) as standalone claims.
    question_checks=False turns off not_a_question, answer_in_question and
    question_not_about_evidence (benchmarks/bench_faithfulness.py's setting, for questions that
    are not ours). negatives: SQuAD negative mode (benchmarks.SQUAD_NEGATIVES).
    """
    from itertools import islice

    from grounded.checker import default_checker
    from grounded.eval.benchmarks import read_examples

    examples = list(islice(read_examples(path, fmt, negatives=negatives), limit))
    if not examples:
        raise CheckError(f"{path}: no examples")
    if checker is None:
        checker = default_checker(
            threshold=threshold,
            semantic=semantic,
            judge=judge,
            judge_mode=judge_mode,
            judge_cache=judge_cache,
            answer_only=fmt == "wice" or not any(ex.question.strip() for ex in examples),
            question_checks=question_checks,
        )
    result = evaluate(examples, checker, threshold=threshold, workers=workers)
    out = {"file": str(path), "format": fmt, **result.summary}
    out["question_checks"] = question_checks
    if negatives is not None:
        out["negatives"] = negatives
    return out
