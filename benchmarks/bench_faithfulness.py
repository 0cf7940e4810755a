"""Faithfulness of the default checker on public benchmarks, against a naive overlap baseline.

    .venv/bin/python benchmarks/bench_faithfulness.py [--bench ../shared/bench] [--judge MODEL]

Prints, per dataset, balanced accuracy (at the checker's own default threshold), AUROC and F1
for "unsupported", on the held-out half (the half benchmarks/fit_checker.py did not fit on) and
on the full dev set. SQuAD's first half (its human answers, with same-paragraph negatives) was
fitted on, so for both SQuAD lines the second half is the held-out one (other-paragraph answer
swaps: the first --squad-limit examples only). "squad-same-paragraph": wrong answers that are another question's answer from the same
paragraph (in the context, not answering the question). The baseline is content-word overlap (share of the answer's content words found in
the context) with an ORACLE threshold picked on the very data it is scored on, so it flatters
the baseline. Throughput is pairs/s of the default checker (no judge) in this process; the
"generated-style" line checks SQuAD pairs carrying an evidence quote with offsets, as
`grounded generate` writes them, through `grounded.checker`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
DATASETS = [
    ("halueval", "halueval/qa_one-turn_data.json"),
    ("wice", "wice/claim-dev.jsonl"),
    ("squad", "squad/dev-v1.1-part-a.json"),
    ("squad-same-paragraph", "squad/dev-v1.1-part-a.json"),
]
_WORD = re.compile(r"\w+")
_STOP = frozenset(
    "a an the of in on at to for by with and or is was are were be it its as from that this which who what".split()
)


def overlap(answer: str, context: str) -> float:
    """The baseline: share of the answer's content words that occur in the context."""
    words = [w for w in _WORD.findall(answer.lower()) if w not in _STOP]
    if not words:
        return 1.0
    ctx = set(_WORD.findall(context.lower()))
    return sum(w in ctx for w in words) / len(words)


def held_out(fmt: str, examples: list) -> list[int]:
    """Indices of the examples fit_checker.py did not fit on (second half of the labelled ones)."""
    labelled = [i for i, e in enumerate(examples) if e.label is not None]
    return labelled[len(labelled) // 2 :]


def row(name: str, m: dict) -> str:
    return (
        f"  {name:28s} n={m['n']:5d}  bal.acc {m['balanced_accuracy']:.3f}  AUROC {m['auroc']:.3f}  "
        f"F1(unsupported) {m['f1']:.3f}"
    )


def main() -> int:
    from grounded.checker import default_checker
    from grounded.eval.benchmarks import read_examples
    from grounded.eval.faithfulness import best_threshold, metrics, run_checker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument(
        "--judge",
        default=None,
        help="litellm model string: also run with an LLM judge (borderline).",
    )
    ap.add_argument(
        "--squad-limit", type=int, default=2000, help="SQuAD examples to use (it is large)."
    )
    args = ap.parse_args()

    from grounded.checker.answer_type import spacy_pipeline

    started = time.perf_counter()
    spacy_pipeline()  # loaded once per process: not part of any set's throughput
    print(f"spaCy en_core_web_sm (parser, ner) loaded in {time.perf_counter() - started:.1f} s")
    for fmt, rel in DATASETS:
        path = args.bench / rel
        if not path.exists():
            print(f"{fmt}: {path} missing, skipped")
            continue
        name = fmt
        if fmt == "squad-same-paragraph":
            fmt = "squad"
            examples = list(read_examples(path, fmt, negatives="same-paragraph"))
        else:
            examples = list(read_examples(path, fmt))
        if fmt == "squad" and name == "squad":
            examples = examples[: args.squad_limit]
        claim = fmt == "wice"
        configs = [("default", default_checker(answer_only=claim, question_checks=False))]
        if args.judge:
            configs.append(
                (
                    f"judge {args.judge}",
                    default_checker(
                        answer_only=claim,
                        question_checks=False,
                        judge=args.judge,
                        judge_cache=ROOT / ".cache" / "judge.sqlite",
                    ),
                )
            )
        print(
            f"{name}: {len(examples)} examples ({sum(e.label is None for e in examples)} outside the main metric)"
        )
        held = set(held_out(name, examples))
        for name, checker in configs:
            cpu = time.process_time()
            verdicts, seconds = run_checker(examples, checker)
            cpu = time.process_time() - cpu
            for part, idx in (
                ("held-out", sorted(held)),
                ("full dev", [i for i, e in enumerate(examples) if e.label is not None]),
            ):
                labels = [bool(examples[i].label) for i in idx]
                m = metrics(
                    labels, [verdicts[i].score for i in idx], [verdicts[i].supported for i in idx]
                )
                print(row(f"{name} {part}", m))
            print(
                f"  {name} throughput: {len(examples) / seconds:.0f} pairs/s, {len(examples) / cpu:.0f} pairs per "
                f"CPU-second (threshold {checker.threshold})"
            )
            if fmt == "squad":
                human = [v for e, v in zip(examples, verdicts, strict=True) if e.label]
                print(
                    f"  {name} human pairs rejected: {sum(not v.supported for v in human)}/{len(human)} "
                    f"({sum(not v.supported for v in human) / len(human):.1%})"
                )
        for part, idx in (
            ("held-out", sorted(held)),
            ("full dev", [i for i, e in enumerate(examples) if e.label is not None]),
        ):
            labels = [bool(examples[i].label) for i in idx]
            scores = [overlap(examples[i].answer, " ".join(examples[i].contexts)) for i in idx]
            t, _ = best_threshold(labels, scores)
            m = metrics(labels, scores, [s >= t for s in scores])
            print(row(f"baseline(oracle thr) {part}", m))
        if fmt == "wice":
            partial = [i for i, e in enumerate(examples) if e.subset == "partial"]
            if partial:
                v, _ = run_checker([examples[i] for i in partial], configs[0][1])
                print(
                    f"  partially_supported (not in the metric): {len(partial)}, kept {sum(x.supported for x in v)}"
                )
    throughput_generated(args.bench / "squad/dev-v1.1-part-a.json")
    return 0


def throughput_generated(path: Path, n: int = 2000) -> None:
    """Pairs as generation writes them (evidence quote with offsets) through grounded.checker.check."""
    if not path.exists():
        return
    from grounded.checker import check
    from grounded.eval.benchmarks import read_examples
    from grounded.text import split_sentences
    from grounded.types import Evidence, QAPair

    pairs = []
    for ex in read_examples(path, "squad"):
        if not ex.label:
            continue
        ctx = ex.contexts[0]
        sent = next(
            (
                s
                for s in split_sentences(ctx)
                if re.search(rf"(?<!\w){re.escape(ex.answer)}(?!\w)", s)
            ),
            None,
        )
        if sent is None:
            continue
        start = ctx.find(sent)
        ev = Evidence("doc", "doc:0", start, start + len(sent), sent, 1.0, sent)
        pairs.append(
            QAPair(
                id=ex.id,
                question=ex.question,
                answer=ex.answer,
                evidence=(ev,),
                contexts=(ctx,),
                doc_ids=("doc",),
            )
        )
        if len(pairs) >= n:
            break
    started = time.perf_counter()
    out = list(check(pairs))
    seconds = time.perf_counter() - started
    kept = sum(v.supported for _, v in out)
    print(
        f"generated-style SQuAD pairs with evidence: {len(out)} checked, {kept} kept, {len(out) / seconds:.0f} pairs/s"
    )


if __name__ == "__main__":
    sys.exit(main())
