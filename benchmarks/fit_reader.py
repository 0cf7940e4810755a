"""Fit the checker's span reader (grounded/checker/reader.py) on SQuAD dev part a, first half.

    .venv/bin/python benchmarks/fit_reader.py            # fit and print held-out figures
    .venv/bin/python benchmarks/fit_reader.py --write    # also write grounded/checker/reader.json

The SQuAD examples are read as benchmarks/fit_checker.py reads them (same-paragraph swap
negatives, file order) and split the same way: the first half is fitted on, the second is held
out. Positives are the human answers of the first half's questions; negatives are every other
span the reader would compare them with (runs of up to MAX_SPAN content words of the sentences
the question is about). The swapped answers are never fitted on. Logistic regression
(scikit-learn, balanced classes, C=1, seed 0). Printed: how often the human answer outranks
every other span (top-1), and the AUROC of `rd_score` and `rd_margin` between human and swapped
answers, on each half.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
SQUAD = "squad/dev-v1.1-part-a.json"


def analysed(examples):
    """Per example: the (context, question words, answer words, terms, expected type) the checker reads."""
    from grounded.checker import inline_sources
    from grounded.checker.context import Context
    from grounded.checker.reader import inputs
    from grounded.types import QAPair

    out = []
    for e in examples:
        pair = QAPair(id=e.id, question=e.question, answer=e.answer, contexts=tuple(e.contexts))
        ctx = Context(pair, inline_sources(pair))
        out.append((ctx, *inputs(ctx)))
    return out


def _best(mine: list[list[float]]) -> list[list[float]]:
    """The occurrence of the answer nearest the question's terms in the best sentence."""
    return [max(mine, key=lambda f: f[4] * f[5])] if mine else []


def main() -> int:
    from sklearn.linear_model import LogisticRegression

    from grounded.checker.reader import FEATURE_NAMES, READER_FILE, ReaderModel, read, spans
    from grounded.eval.benchmarks import read_examples
    from grounded.eval.faithfulness import auroc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--write", action="store_true", help="Write grounded/checker/reader.json.")
    args = ap.parse_args()

    path = args.bench / SQUAD
    examples = [
        e for e in read_examples(path, "squad", negatives="same-paragraph") if e.label is not None
    ]
    first = np.arange(len(examples)) < len(examples) // 2
    started = time.perf_counter()
    inputs = analysed(examples)
    rows = [spans(*a) for a in inputs]
    print(f"spans of {len(examples)} examples in {time.perf_counter() - started:.0f} s")
    pos = [
        f
        for e, (mine, _), fit in zip(examples, rows, first, strict=True)
        if fit and e.label
        for f in _best(mine)
    ]
    neg = [
        f
        for e, (_, rivals), fit in zip(examples, rows, first, strict=True)
        if fit and e.label
        for f in rivals
    ]
    X = np.array(pos + neg)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    clf = LogisticRegression(C=args.C, max_iter=5000, class_weight="balanced", random_state=0)
    clf.fit(X, y)
    model = ReaderModel(tuple(float(w) for w in clf.coef_[0]), float(clf.intercept_[0]))
    print(f"fitted on {len(pos)} human answers against {len(neg)} other spans")
    labels = np.array([bool(e.label) for e in examples])
    score = np.full(len(examples), np.nan)
    margin = np.full(len(examples), np.nan)
    for i, a in enumerate(inputs):  # as the checker reads them (rivals near the question's terms)
        if rows[i][0]:
            signals = read(model, *a)
            score[i], margin[i] = signals["rd_score"], signals["rd_margin"]
    for part, sel in (("fit half", first), ("held-out", ~first)):
        ok = sel & ~np.isnan(score)
        top1 = float(np.mean(margin[ok & labels] > 0))
        print(
            f"{part}: located {ok.sum()}/{sel.sum()}, human top-1 {top1:.3f}, "
            f"auroc rd_score {auroc(list(labels[ok]), list(score[ok])):.3f}, "
            f"rd_margin {auroc(list(labels[ok]), list(margin[ok])):.3f}"
        )
    data = {
        "fitted_by": "benchmarks/fit_reader.py (SQuAD dev part a, first half; human answers vs other spans)",
        "data": {"path": SQUAD, "half": "first", "positives": len(pos), "negatives": len(neg)},
        "features": list(FEATURE_NAMES),
        "weights": [round(w, 4) for w in model.weights],
        "bias": round(model.bias, 4),
    }
    if args.write:
        out = ROOT / "grounded" / "checker" / READER_FILE
        out.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
