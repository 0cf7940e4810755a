"""Fit the weight of the learned verifier's signal `ver` in the checker's "qa+ver" calibration.

    .venv/bin/python benchmarks/fit_verifier.py          # print the stacked model
    .venv/bin/python benchmarks/fit_verifier.py --write  # and put it in calibration.json
    (benchmarks/fit_checker.py calls `stacked_model` and writes it with the others)

The "qa+ver" model is the fitted "qa" model plus one sign-constrained term: logit = qa logit +
w * (ver - 0.5), w >= 0 (a yes from the verifier can only raise the score, a no only lower it). It is
fitted on SQuAD part a questions of the calibration's fitting half that the verifier was NOT
trained on (training/train_verifier.py fits on --squad-questions of that half, spread evenly; the rest
are these), with their same-paragraph answer swaps: a stacked model must be fitted on data its
inner model has not seen, or it trusts that model's overconfident training-set answers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))
BENCH = ROOT.parent / "shared" / "bench"


def unseen_squad(path: Path) -> list:
    """SQuAD fitting-half examples (human pairs and same-paragraph swaps) the verifier never saw."""
    import train_verifier as T

    from grounded.checker.verifier import CONFIG, MODEL_DIR
    from grounded.eval.benchmarks import read_examples

    config = json.loads((MODEL_DIR / CONFIG).read_text(encoding="utf-8"))
    limit = int(config.get("squad_questions") or 0)
    ids = lambda chosen: {str(qa.get("id")) for _, _, qa in chosen}  # noqa: E731
    unseen = ids(T.squad_half(path, part="fit")) - ids(T.squad_half(path, part="fit", limit=limit))
    return [
        e
        for e in read_examples(path, "squad", negatives="same-paragraph")
        if e.id.split("-")[1] in unseen
    ]


def stacked_model(
    qa: tuple[tuple[str, ...], list[float], float], *, bench: Path = BENCH, verbose: bool = True
) -> tuple[tuple[str, ...], list[float], float] | None:
    """The "qa+ver" model (features, weights, bias) stacked on the fitted "qa" model, or None when
    no verifier ships or no unseen data is left."""
    from grounded.checker import default_checker
    from grounded.checker.verifier import Verifier
    from grounded.eval.faithfulness import auroc, run_checker

    if not Verifier.available():
        return None
    examples = unseen_squad(bench / "squad" / "dev-v1.1-part-a.json")
    if not examples:
        return None
    feats, weights, bias = qa
    verdicts, _ = run_checker(examples, default_checker(verifier="all", semantic="off"))
    rows = [
        (v.signals, bool(e.label))
        for e, v in zip(examples, verdicts, strict=True)
        if "ver" in v.signals
    ]
    z = np.array(
        [
            bias + sum(w * s.get(f, 0.0) for f, w in zip(feats, weights, strict=True))
            for s, _ in rows
        ]
    )
    ver = np.array([s["ver"] for s, _ in rows])
    y = np.array([lab for _, lab in rows], dtype=float)
    cw = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))

    centred = ver - 0.5  # a yes (> 0.5) can only raise the qa score, a no only lower it

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        p = 1 / (1 + np.exp(-(z + theta[0] * centred)))
        eps = 1e-9
        value = -np.sum(cw * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))) / len(y)
        value += 0.5 * theta[0] ** 2 / len(y)
        grad = np.sum(cw * (p - y) * centred) / len(y) + theta[0] / len(y)
        return float(value), np.array([grad])

    res = minimize(loss, np.zeros(1), jac=True, method="L-BFGS-B", bounds=[(0.0, None)])
    w = float(res.x[0])
    if verbose:
        p = 1 / (1 + np.exp(-(z + w * centred)))
        print(
            f"qa+ver: stacked on {len(y)} unseen SQuAD pairs: w_ver {w:.3f}; "
            f"AUROC qa {auroc(list(y), list(z)):.3f} -> qa+ver {auroc(list(y), list(p)):.3f}",
            file=sys.stderr,
        )
    # logit = qa logit + w * (ver - 0.5), written as a weight on `ver` and a bias shift
    return (*feats, "ver"), [*weights, round(w, 3)], round(bias - 0.5 * w, 3)


def main() -> int:
    """Print the stacked model on the shipped "qa" model; --write puts it in calibration.json
    (what benchmarks/fit_checker.py --write also does after a full refit)."""
    from grounded.checker.calibration import CALIBRATION

    qa = CALIBRATION["qa"]
    out = stacked_model((qa.features, list(qa.weights), qa.bias))
    print(json.dumps(out))
    if out is not None and "--write" in sys.argv[1:]:
        path = ROOT / "grounded" / "checker" / "calibration.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        feats, weights, bias = out
        data["models"]["qa+ver"] = {"features": list(feats), "weights": weights, "bias": bias}
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
