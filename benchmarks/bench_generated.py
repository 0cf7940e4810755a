"""The default checker on the labelled generated pairs (benchmarks/data/generated_pairs.jsonl).

    .venv/bin/python benchmarks/bench_generated.py [--set PATH] [--semantic borderline|all|off]

Documents are split into two halves by a fixed hash of doc_title (sha1, even/odd first byte):
"tune" and "held-out". For the held-out half and for all rows, for the bundled model's rows
(source smollm2) and for every row, prints: rows, good, kept, precision of the kept set (share
good), recall of the good pairs, balanced accuracy and AUROC of the checker score; then the
rejection rate per label category. Each row is checked the way `grounded check` checks a row
with an inline `context`: the passage is the source, the evidence quote is located in it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grounded.checker import default_checker, inline_sources
from grounded.checkfile import pair_from_row

SET = Path(__file__).parent / "data" / "generated_pairs.jsonl"
KIND = {"multi_hop": "multi_hop", "unanswerable": "unanswerable"}
# names from the built-in prompts' few-shot examples (factoid, multi_hop, unanswerable)
FEW_SHOT = re.compile(
    r"\b(old mill|mill bridge|tavy|lydford|john pike|slate|marie curie|curie|"
    r"vistula|eiffel)\b",
    re.IGNORECASE,
)


def half(title: str) -> str:
    """The fixed half of a document: 'tune' or 'held-out'."""
    return "held-out" if hashlib.sha1(title.encode("utf-8")).digest()[0] % 2 else "tune"


def load(path: Path) -> list[dict[str, Any]]:
    """The labelled rows."""
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def score_rows(rows: list[dict[str, Any]], *, semantic: str) -> list[tuple[bool, float]]:
    """(kept, score) per row from the default checker."""
    checker = default_checker(semantic=semantic)
    items = []
    for i, r in enumerate(rows):
        kind = KIND.get(r.get("prompt", ""), "factoid")
        row = {
            "id": r["id"],
            "question": r["question"],
            "answer": r["answer"],
            "kind": kind,
            "context": r["passage"],
            "evidence": [r["evidence"]] if r.get("evidence") else [],
        }
        pair = pair_from_row(row, where=f"row {i + 1}")
        items.append((pair, inline_sources(pair)))
    out: list[tuple[bool, float]] = []
    for start in range(0, len(items), 64):
        out += [(v.supported, v.score) for v in checker.check_many(items[start : start + 64])]
    return out


def auroc(scores: Sequence[float], good: Sequence[bool]) -> float | None:
    """Probability that a good row scores above a bad one (ties count half)."""
    pos = [s for s, g in zip(scores, good, strict=True) if g]
    neg = [s for s, g in zip(scores, good, strict=True) if not g]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def figures(sel: list[tuple[dict[str, Any], bool, float]]) -> dict[str, Any]:
    """Kept count, precision of kept, recall of good, balanced accuracy, AUROC."""
    good = [r["label"] == "good" for r, _, _ in sel]
    kept = [k for _, k, _ in sel]
    tp = sum(g and k for g, k in zip(good, kept, strict=True))
    tn = sum(not g and not k for g, k in zip(good, kept, strict=True))
    n_good, n_bad, n_kept = sum(good), len(good) - sum(good), sum(kept)
    tpr = tp / n_good if n_good else None
    tnr = tn / n_bad if n_bad else None
    return {
        "rows": len(sel),
        "good": n_good,
        "kept": n_kept,
        "precision": tp / n_kept if n_kept else None,
        "recall": tpr,
        "balanced_acc": (tpr + tnr) / 2 if tpr is not None and tnr is not None else None,
        "auroc": auroc([s for _, _, s in sel], good),
    }


def _fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def report(rows: list[dict[str, Any]], verdicts: list[tuple[bool, float]]) -> None:
    """Print the figures table and the per-category rejection rates."""
    joined = [(r, k, s) for r, (k, s) in zip(rows, verdicts, strict=True)]
    cols = ["rows", "good", "kept", "precision", "recall", "balanced_acc", "auroc"]
    print(f"{'half':9} {'rows of':8} " + " ".join(f"{c:>12}" for c in cols))
    for name in ("held-out", "tune", "all"):
        part = [j for j in joined if name == "all" or half(j[0]["doc_title"]) == name]
        for who in ("smollm2", "all"):
            sel = [j for j in part if who == "all" or j[0]["source"] == who]
            f = figures(sel)
            print(f"{name:9} {who:8} " + " ".join(f"{_fmt(f[c]):>12}" for c in cols))
    print("\nrejection rate by category (all halves; source in brackets)")
    by: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r, k, _ in joined:
        cat = "good" if r["label"] == "good" else r.get("category") or "other"
        src = "smollm2" if r["source"] == "smollm2" else "squad"
        by[(cat, src)].append(k)
    for (cat, src), kept in sorted(by.items()):
        rej = len(kept) - sum(kept)
        print(f"  {cat:24} [{src:7}] {rej:4}/{len(kept):<4} rejected = {rej / len(kept):.2f}")


def leaks(rows: list[dict[str, Any]]) -> None:
    """Per prompt of the bundled model: questions with few-shot names absent from the passage."""
    print("\nfew-shot leak and good rate per prompt (smollm2 rows)")
    print(f"  {'prompt':22} {'rows':>5} {'passages':>8} {'leaked':>12} {'good':>12}")
    for prompt in sorted({r["prompt"] for r in rows if r["source"] == "smollm2"}):
        sel = [r for r in rows if r["source"] == "smollm2" and r["prompt"] == prompt]
        leaked = sum(
            any(
                m.group(0).lower() not in r["passage"].lower()
                for m in FEW_SHOT.finditer(r["question"])
            )
            for r in sel
        )
        good = sum(r["label"] == "good" for r in sel)
        n = len(sel)
        print(
            f"  {prompt:22} {n:5} {len({r['passage'] for r in sel}):8} "
            f"{leaked:4} ({leaked / n:4.0%}) {good:4} ({good / n:4.0%})"
        )


def errors(rows: list[dict[str, Any]], verdicts: list[tuple[bool, float]]) -> None:
    """The checker's mistakes: bad rows it kept and good rows it rejected."""
    print("\nchecker mistakes (label, category, score: question | answer)")
    for r, (kept, score) in zip(rows, verdicts, strict=True):
        if kept != (r["label"] == "good"):
            what = "kept bad" if kept else "dropped good"
            print(
                f"  {what:12} {r['category'] or '-':22} {score:.2f}: {r['question'][:70]} | {r['answer'][:30]}"
            )


def main() -> None:
    """Score the set and print the figures."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--set", type=Path, default=SET)
    ap.add_argument("--errors", action="store_true", help="list the checker's mistakes")
    ap.add_argument("--semantic", default="borderline", choices=["borderline", "all", "off"])
    args = ap.parse_args()
    rows = [r for r in load(args.set) if r.get("label") in ("good", "bad")]
    if not rows:
        sys.exit(f"no labelled rows in {args.set}")
    leaks(rows)
    verdicts = score_rows(rows, semantic=args.semantic)
    report(rows, verdicts)
    if args.errors:
        errors(rows, verdicts)


if __name__ == "__main__":
    main()
