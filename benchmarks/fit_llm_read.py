"""Fit and measure the local model's reading (grounded.checker.llm_read) on the dev sets' halves.

    .venv/bin/python benchmarks/fit_llm_read.py --per-set 80            # fit half: fit, print
    .venv/bin/python benchmarks/fit_llm_read.py --per-set 80 --write    # ... and ship the fit
    .venv/bin/python benchmarks/fit_llm_read.py --part held-out --per-set 80   # report

Sets (the halves of benchmarks/bench_verifier.py and training/train_verifier.py): Quiz Design (fit:
even doc_id, held-out: odd; label = the teacher's keep), SQuAD part a same-paragraph answer swaps
(fit: first half of the questions, held-out: second), the labelled generated pairs
(benchmarks/data/generated_pairs.jsonl, by document half) and HaluEval (records 0-249 / 250-499).
`--per-set` examples spread evenly over each set. The hand checker scores every pair; the model
reads those it has not already rejected (policy "keepable"), and the model's signals join the
hand score in a stacked, sign-constrained logistic fit:

    logit(score) = a * hand_logit + b * llm_yes + c * llm_agree + d      (a, b, c >= 0)

written to grounded/checker/calibration.json as the "qa+llm_yes+llm_agree" and
"qa+sem+llm_yes+llm_agree" models (the hand models' weights times a, plus b, c; the bias
a * bias + d). Every call is cached in --cache, so a refit or a rerun reads nothing twice.
Prints, per set and for the hand checker alone and with reading: n, kept, precision, recall,
balanced accuracy, AUROC, the share of human SQuAD pairs rejected, and seconds per pair read.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_verifier  # noqa: E402  (its dev-set readers and halves)

from grounded.eval.benchmarks import Example, read_examples  # noqa: E402
from grounded.eval.faithfulness import auroc, balanced_accuracy, example_pair  # noqa: E402

BENCH = ROOT.parent / "shared" / "bench"
CAL = ROOT / "grounded" / "checker" / "calibration.json"
LLM_FEATURES = ("llm_yes", "llm_agree")


def spread(items: list[Example], n: int) -> list[Example]:
    """About `n` examples spread evenly over the set, taken a passage at a time (up to `n / 10`
    or 6 from each, whichever is more): a passage's examples stay together, as a run reads them,
    so its prefix is evaluated once."""
    if not n or n >= len(items):
        return items
    groups: dict[tuple[str, ...], list[Example]] = {}
    for e in items:
        groups.setdefault(e.contexts, []).append(e)
    cap = max(6, n // 10, -(-n // len(groups)))
    chosen = list(groups.values())
    mean = sum(min(len(g), cap) for g in chosen) / len(chosen)
    k = min(len(chosen), -(-n // max(1, int(mean))))
    out: list[Example] = []
    for i in range(k):
        g = chosen[i * len(chosen) // k]
        take = min(len(g), cap, n - len(out))
        out.extend(g[j * len(g) // take] for j in range(take))
        if len(out) >= n:
            break
    return out


def quiz_design(part: str, n: int) -> list[Example]:
    return spread(
        bench_verifier.quiz_design(BENCH / "quiz_design" / "quiz_design_groups.jsonl", part), n
    )


def squad(part: str, n: int) -> list[Example]:
    import train_verifier as T

    path = BENCH / "squad" / "dev-v1.1-part-a.json"
    keep = {str(qa.get("id")) for _, _, qa in T.squad_half(path, part=part)}
    return spread(
        [
            e
            for e in read_examples(path, "squad", negatives="same-paragraph")
            if e.id.split("-")[1] in keep
        ],
        n,
    )


def generated(part: str, n: int) -> list[Example]:
    path = ROOT / "benchmarks" / "data" / "generated_pairs.jsonl"
    return spread(bench_verifier.generated(path, part), n)


def halueval(part: str, n: int) -> list[Example]:
    examples = list(read_examples(BENCH / "halueval" / "qa_one-turn_data.json", "halueval"))
    return spread(examples[:500] if part == "fit" else examples[500:1000], n)


SETS = {"quiz_design": quiz_design, "squad": squad, "generated": generated, "halueval": halueval}


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def hand_logit(signals: dict[str, float]) -> float:
    from grounded.checker.calibration import calibration_for

    base = {k: v for k, v in signals.items() if k not in LLM_FEATURES}
    return logit(calibration_for("qa", base).score(base))


def fit(rows: list[tuple[list[float], int]]) -> list[float]:
    """Sign-constrained logistic regression (L2 0.01, balanced classes): [a, b, c, d]."""
    import numpy as np
    from scipy.optimize import minimize

    x = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[1] for r in rows], dtype=float)
    w_pos = len(y) / (2 * max(1.0, y.sum()))
    w_neg = len(y) / (2 * max(1.0, len(y) - y.sum()))
    sw = np.where(y == 1, w_pos, w_neg)
    xb = np.hstack([x, np.ones((len(x), 1))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = xb @ w
        p = 1 / (1 + np.exp(-np.clip(z, -30, 30)))
        ll = -(sw * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))).sum() / len(y)
        grad = xb.T @ (sw * (p - y)) / len(y)
        reg = 0.01 * (w[:-1] ** 2).sum()
        grad[:-1] += 0.02 * w[:-1]
        return ll + reg, grad

    bounds = [(0, None)] * x.shape[1] + [(None, None)]
    res = minimize(loss, np.array([1.0, 0.3, 0.3, 0.0]), jac=True, bounds=bounds)
    return [float(v) for v in res.x]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("fit", "held-out"), default="fit")
    ap.add_argument("--per-set", type=int, default=80)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument(
        "--sizes", default="", help="per-set sizes overriding --per-set, e.g. squad=40,halueval=20"
    )
    ap.add_argument("--model", default="grounded-local/qwen2.5-coder-1.5b")
    ap.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "grounded-bench" / "llm_read.sqlite"
    )
    ap.add_argument("--write", action="store_true", help="write the fit into calibration.json")
    args = ap.parse_args()

    from grounded.checker import default_checker
    from grounded.checker.calibration import CALIBRATION, DEFAULT_THRESHOLDS, Calibration
    from grounded.checker.llm_read import LLMReadCheck
    from grounded.llm import LLM

    args.cache.parent.mkdir(parents=True, exist_ok=True)
    llm = LLM(args.model, cache=args.cache, timeout=600)
    hand = default_checker()
    read = LLMReadCheck(llm)
    thr = DEFAULT_THRESHOLDS["qa"]
    rows: list[tuple[list[float], int]] = []
    per_set: dict[str, list[tuple[Example, object, object]]] = {}
    sizes = {k: int(v) for k, v in (kv.split("=") for kv in args.sizes.split(",") if kv)}
    for name in args.sets.split(","):
        examples = SETS[name](args.part, sizes.get(name, args.per_set))
        items = [example_pair(e) for e in examples]
        started, calls = time.perf_counter(), llm.stats.calls
        base = hand.check_many(items)
        reading = default_checker()
        reading.models.append((read, "keepable"))
        withr = reading.check_many(items)
        secs = time.perf_counter() - started
        new = llm.stats.calls - calls
        per_set[name] = list(zip(examples, base, withr, strict=True))
        for ex, v in zip(examples, withr, strict=True):
            if ex.label is not None and "llm_yes" in v.signals:
                s = dict(v.signals)
                rows.append(
                    ([hand_logit(s), s["llm_yes"], s.get("llm_agree", 0.5)], int(bool(ex.label)))
                )
        print(f"{name}: {len(examples)} pairs, {new} new model calls, {secs:.0f} s", flush=True)

    if args.part == "fit" and rows:
        a, b, c, d = fit(rows)
        print(
            f"fit on {len(rows)} read pairs: a={a:.3f} llm_yes={b:.3f} llm_agree={c:.3f} d={d:.3f}"
        )
        data = json.loads(CAL.read_text(encoding="utf-8"))
        for base_name in ("qa", "qa+sem"):
            m = data["models"][base_name]
            data["models"][f"{base_name}+llm_yes+llm_agree"] = {
                "features": [*m["features"], *LLM_FEATURES],
                "weights": [round(a * w, 4) for w in m["weights"]] + [round(b, 4), round(c, 4)],
                "bias": round(a * m["bias"] + d, 4),
            }
        if args.write:
            data["fitted_by_llm_read"] = (
                f"benchmarks/fit_llm_read.py (fit halves, {len(rows)} pairs read by {args.model})"
            )
            CAL.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            print(f"wrote {CAL}")
        models = {
            k: Calibration(tuple(v["features"]), tuple(v["weights"]), float(v["bias"]))
            for k, v in data["models"].items()
        }
    else:
        models = dict(CALIBRATION)

    from grounded.checker.calibration import calibration_for

    print(
        f"\n{'set':12} {'checker':8} {'n':>4} {'kept':>4} {'prec':>6} {'recall':>6} {'bal_acc':>7} {'AUROC':>6}"
    )
    for name, triples in per_set.items():
        labelled = [(e, b, w) for e, b, w in triples if e.label is not None]
        y = [bool(e.label) for e, _, _ in labelled]
        for label in ("hand", "read"):
            scores, kept = [], []
            for _, b, w in labelled:
                if label == "hand":
                    scores.append(b.score)
                    kept.append(b.supported)
                    continue
                s = dict(w.signals)
                score = calibration_for("qa", s, models).score(s) if "llm_yes" in s else w.score
                blocked = (
                    not b.supported and b.score >= thr
                )  # a blocking reason, whatever the score
                scores.append(score)
                kept.append(score >= thr and not blocked and (b.supported or "llm_yes" in s))
            good = sum(1 for t, k in zip(y, kept, strict=True) if t and k)
            prec = good / sum(kept) if sum(kept) else float("nan")
            rec = good / sum(y) if sum(y) else float("nan")
            print(
                f"{name:12} {label:8} {len(y):4} {sum(kept):4} {prec:6.3f} {rec:6.3f} "
                f"{balanced_accuracy(y, kept):7.3f} {auroc(y, scores):6.3f}"
            )
            if name == "squad":
                human = [k for t, k in zip(y, kept, strict=True) if t]
                print(f"{'':12} {label:8} human pairs rejected {1 - sum(human) / len(human):.3f}")
    print(f"\nmodel calls {llm.stats.calls} new, {llm.stats.cached_calls} cached")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
