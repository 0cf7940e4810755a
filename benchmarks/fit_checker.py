"""Fit the checker's calibration (logistic regression over its support signals) on dev data.

    .venv/bin/python benchmarks/fit_checker.py            # print fitted constants and figures
    .venv/bin/python benchmarks/fit_checker.py --write    # also rewrite them in grounded/check.py

Mode "qa" is fitted on HaluEval QA (answers read with their questions), mode "claim" on WiCE
(standalone claims; supported vs not_supported, partially_supported left out). Each is fitted on
the FIRST half of its dev set (HaluEval: the first 250 records, i.e. 500 answers; WiCE: the
first half of the labelled claims, in file order), with balanced class weights and C=1.0; the
threshold is the one with the highest balanced accuracy on that same half. The second half is
held out and its figures are printed next to the fitting half's. Each mode gets a lexical model
and a lexical+MiniLM model (`sem`), used when the semantic check ran.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
SETS = {
    "qa": ("halueval", "halueval/qa_one-turn_data.json"),
    "claim": ("wice", "wice/claim-dev.jsonl"),
}


def signals_for(fmt: str, path: Path, cache: Path | None) -> tuple[list[dict[str, float]], list[bool]]:
    """Every support signal (semantic included) for the labelled examples of one dev set."""
    from grounded.eval.faithfulness import run_checker
    from grounded.eval.readers import read_examples

    from grounded.check import default_checker

    if cache is not None and cache.exists():
        data = json.loads(cache.read_text())
        return data["signals"], data["labels"]
    examples = [e for e in read_examples(path, fmt) if e.label is not None]
    checker = default_checker(semantic="all", answer_only=fmt == "wice", question_checks=False)
    started = time.perf_counter()
    verdicts, _ = run_checker(examples, checker)
    print(f"  {fmt}: {len(examples)} examples, signals in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sigs = [dict(v.signals) for v in verdicts]
    labels = [bool(e.label) for e in examples]
    if cache is not None:
        cache.write_text(json.dumps({"signals": sigs, "labels": labels}))
    return sigs, labels


def fit(X: np.ndarray, y: np.ndarray, C: float) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=5000, class_weight="balanced").fit(X, y)


def main() -> int:
    from grounded.eval.faithfulness import auroc, balanced_accuracy, best_threshold

    from grounded.check import FEATURES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--cache-dir", type=Path, default=None, help="Keep computed signals here (for re-fitting quickly).")
    ap.add_argument("--write", action="store_true", help="Rewrite the fitted block in grounded/check.py.")
    ap.add_argument("--reverse", action="store_true", help="Fit on the second half, hold out the first (a robustness check; never written).")
    args = ap.parse_args()

    models: dict[str, tuple[tuple[str, ...], list[float], float]] = {}
    thresholds: dict[str, float] = {}
    for mode, (fmt, rel) in SETS.items():
        cache = args.cache_dir / f"signals-{fmt}.json" if args.cache_dir else None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
        sigs, labels = signals_for(fmt, args.bench / rel, cache)
        y = np.array(labels)
        half = len(y) // 2
        if args.reverse:  # swap the halves: the first becomes the held-out one
            order = list(range(half, len(y))) + list(range(half))
            y, sigs = y[order], [sigs[i] for i in order]
            half = len(y) - half
        for with_sem in (False, True):
            feats = (*FEATURES, "sem") if with_sem else FEATURES
            X = np.array([[s.get(f, 0.0) for f in feats] for s in sigs])
            m = fit(X[:half], y[:half], args.C)
            p = m.predict_proba(X)[:, 1]
            thr, _ = best_threshold(list(y[:half]), list(p[:half]))
            name = mode + ("+sem" if with_sem else "")
            models[name] = (feats, [round(float(w), 3) for w in m.coef_[0]], round(float(m.intercept_[0]), 3))
            if not with_sem:
                thresholds[mode] = round(float(thr), 3)
            t = thresholds[mode]
            for part, sl in (("fit half", slice(0, half)), ("held-out", slice(half, None))):
                yy, pp = list(y[sl]), list(p[sl])
                print(f"{name:10s} {part:9s} n={len(yy):4d} auroc {auroc(yy, pp):.3f} "
                      f"bal.acc@{t:.3f} {balanced_accuracy(yy, [v >= t for v in pp]):.3f}")
    block = render(models, thresholds)
    print(block)
    if args.write and not args.reverse:
        path = ROOT / "grounded" / "check.py"
        text = path.read_text()
        new = re.sub(r"# BEGIN FITTED.*?# END FITTED\n", lambda _m: block, text, flags=re.S)
        path.write_text(new)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def render(models: dict[str, tuple[tuple[str, ...], list[float], float]], thresholds: dict[str, float]) -> str:
    from grounded.check import FEATURES

    lines = ["# BEGIN FITTED (benchmarks/fit_checker.py)", "CALIBRATION: dict[str, Calibration] = {"]
    for name, (feats, weights, bias) in models.items():
        fs = "FEATURES" if feats == FEATURES else '(*FEATURES, "sem")'
        lines.append(f'    "{name}": Calibration({fs}, {tuple(weights)!r}, {bias!r}),')
    lines.append("}")
    lines.append("# Thresholds on the calibrated score: the maximum balanced accuracy on the fitting half.")
    lines.append(f"DEFAULT_THRESHOLDS: dict[str, float] = {thresholds!r}")
    lines.append("# END FITTED")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
