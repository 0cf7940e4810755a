"""The checker without and with the learned verifier, on the verifier's held-out halves.

    .venv/bin/python benchmarks/bench_verifier.py                 # every held-out set
    .venv/bin/python benchmarks/bench_verifier.py --squad-questions 600 --speed 400

Held out from the verifier's training (training/train_verifier.py) and from the checker's calibration
fit: Quiz Design documents with an odd doc_id (every judged question; label = the teacher's keep),
SQuAD part a's second half of questions (human answers and same-paragraph answer swaps; also the
share of human pairs rejected), HaluEval records 250-499, and the held-out half of the labelled
generated pairs (benchmarks/data/generated_pairs.jsonl). Per set and configuration: kept, the
precision of the kept set, the recall of the good pairs, balanced accuracy and AUROC of the score.
Then the checker's throughput without and with the verifier on the same pairs, in the same
process, as a ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

from grounded.eval.benchmarks import Example  # noqa: E402
from grounded.eval.faithfulness import auroc, balanced_accuracy, run_checker  # noqa: E402

BENCH = ROOT.parent / "shared" / "bench"


def quiz_design(path: Path, part: str = "held-out") -> list[Example]:
    """Every judged question of the documents with an odd doc_id (part "fit": even)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        g = json.loads(line)
        if (int(g["doc_id"]) % 2 == 0) == (part == "fit"):
            for k, q in enumerate(g["questions"]):
                out.append(
                    Example(
                        f"qd-{g['group_id']}-{k}",
                        (g["context"],),
                        g["answer_span"],
                        q["question"],
                        bool(q["label"]),
                        metadata={"reason": q.get("reason")},
                    )
                )
    return out


def squad(path: Path, limit: int) -> list[Example]:
    """The second half's human pairs and their same-paragraph swaps (`limit` questions spread
    evenly over the half, 0: all)."""
    import train_verifier as T

    from grounded.eval.benchmarks import read_examples

    keep = {str(qa.get("id")) for _, _, qa in T.squad_half(path, part="held-out", limit=limit)}
    return [
        e
        for e in read_examples(path, "squad", negatives="same-paragraph")
        if e.id.split("-")[1] in keep
    ]


def halueval(path: Path) -> list[Example]:
    from grounded.eval.benchmarks import read_examples

    examples = list(read_examples(path, "halueval"))
    return examples[500:]  # two examples per record: records 250-499


def generated(path: Path, part: str = "held-out") -> list[Example]:
    """The labelled generated pairs of the held-out documents (part "fit": the other half)."""
    import train_verifier as T

    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if (T.half(r["doc_title"]) == "held-out") == (part == "held-out"):
            out.append(
                Example(
                    r["id"],
                    (r["passage"],),
                    r["answer"],
                    r["question"],
                    r["label"] == "good",
                    metadata={"source": r["source"]},
                )
            )
    return out


def figures(examples: list[Example], verdicts: list) -> dict[str, float]:
    labels = [bool(e.label) for e in examples]
    kept = [v.supported for v in verdicts]
    good_kept = sum(1 for y, k in zip(labels, kept, strict=True) if y and k)
    return {
        "n": len(examples),
        "kept": sum(kept),
        "precision": good_kept / sum(kept) if sum(kept) else float("nan"),
        "recall": good_kept / sum(labels) if sum(labels) else float("nan"),
        "bal_acc": balanced_accuracy(labels, kept),
        "auroc": auroc(labels, [v.score for v in verdicts]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument(
        "--squad-questions", type=int, default=0, help="held-out SQuAD questions (0: all)"
    )
    ap.add_argument("--speed", type=int, default=300, help="pairs for the throughput ratio")
    args = ap.parse_args()
    from grounded.checker import default_checker

    sets = {
        "quiz_design": quiz_design(args.bench / "quiz_design" / "quiz_design_groups.jsonl"),
        "squad_same_paragraph": squad(
            args.bench / "squad" / "dev-v1.1-part-a.json", args.squad_questions
        ),
        "halueval": halueval(args.bench / "halueval" / "qa_one-turn_data.json"),
        "generated": generated(ROOT / "benchmarks" / "data" / "generated_pairs.jsonl"),
    }
    checkers = {"without": default_checker(verifier="off"), "with": default_checker()}
    print(
        f"{'set':22} {'verifier':8} {'n':>5} {'kept':>5} {'precision':>9} {'recall':>6} {'bal_acc':>7} {'AUROC':>6}"
    )
    for name, examples in sets.items():
        for label, checker in checkers.items():
            verdicts, _ = run_checker(examples, checker)
            f = figures(examples, verdicts)
            print(
                f"{name:22} {label:8} {f['n']:5} {f['kept']:5} {f['precision']:9.3f} {f['recall']:6.3f} "
                f"{f['bal_acc']:7.3f} {f['auroc']:6.3f}",
                flush=True,
            )
            if name == "squad_same_paragraph":
                human = [(e, v) for e, v in zip(examples, verdicts, strict=True) if e.label]
                rejected = sum(1 for _, v in human if not v.supported) / len(human)
                print(f"{'  squad human rejected':22} {label:8} {len(human):5} {rejected:.3f}")
    sample = (sets["squad_same_paragraph"] + sets["quiz_design"])[: args.speed]
    if not sample:  # --speed 0: no throughput ratio
        return 0
    rates = {}
    for label, checker in (
        ("without", default_checker(verifier="off")),
        ("with", default_checker()),
    ):
        run_checker(sample[:16], checker)  # load models outside the timing
        start = time.perf_counter()
        run_checker(sample, checker)
        rates[label] = len(sample) / (time.perf_counter() - start)
    print(
        f"throughput on {len(sample)} pairs: without {rates['without']:.0f} pairs/s, with {rates['with']:.0f} "
        f"pairs/s (ratio {rates['with'] / rates['without']:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
