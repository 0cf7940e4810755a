"""Dataset health on SQuAD: figures on the human set, narrowing quiet on human halves and firing on
a template-collapsed set, and dedup throughput on ~5,000 questions.

    python benchmarks/bench_dataset_health.py [--squad PATH] [--no-embed]

`--no-embed` skips MiniLM (question similarity and paraphrase dedup), which dominates the time
on a small CPU.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from rapidfuzz import fuzz

from grounded.dedup import dedup, normalise
from grounded.eval.dataset import dataset_health
from grounded.qaset import QASet, read_squad
from grounded.types import QAPair

SQUAD = Path("/work/shared/bench/squad/dev-v1.1-part-a.json")

# A collapsed generator: a few templates, reworded, filled with the article's topic or an answer.
TEMPLATES = (
    "What is {x}?",
    "What is meant by {x}?",
    "What does {x} refer to?",
    "Can you explain what {x} is?",
    "What is the significance of {topic}?",
    "What is the main idea of {topic}?",
    "What is important about {topic}?",
    "Why is {topic} important?",
)


def collapsed(squad: QASet, k: int = 1000, seed: int = 0) -> QASet:
    rng = random.Random(seed)
    rows = []
    for i, pair in enumerate(rng.sample(list(squad.pairs), k)):
        topic = pair.doc_ids[0].replace("_", " ")
        question = rng.choice(TEMPLATES).format(x=pair.answer, topic=topic)
        rows.append(
            QAPair(
                id=f"c{i}",
                question=question,
                answer=pair.answer,
                evidence=pair.evidence,
                doc_ids=pair.doc_ids,
                chunk_ids=pair.chunk_ids,
                contexts=pair.contexts,
            )
        )
    return QASet(
        tuple(rows), name="collapsed", documents=squad.documents, chunks_total=squad.chunks_total
    )


def halves(squad: QASet) -> tuple[QASet, QASet]:
    docs = list(squad.documents or ())
    first = {d["doc_id"] for d in docs[: len(docs) // 2]}

    def part(inside: bool) -> QASet:
        keep = [d for d in docs if (d["doc_id"] in first) == inside]
        return QASet(
            tuple(p for p in squad.pairs if (p.doc_ids[0] in first) == inside),
            name="first half" if inside else "second half",
            documents=tuple(keep),
            chunks_total=sum(int(d["chunks"]) for d in keep),
        )

    return part(True), part(False)


def line(name: str, h: dict) -> str:
    m = h.get("matched") or {}
    d2 = m.get("distinct_2") or {}
    sim = (h.get("similarity") or {}).get("mean_cosine")
    ref = h.get("reference") or {}
    ref_sim = (ref.get("similarity") or {}).get("mean_cosine")
    parts = [
        f"{name:<34}",
        f"n={h['n']:<5}",
        f"distinct-2 {d2.get('set', h['distinct_2']):.3f} vs {d2.get('reference', float('nan')):.3f} (m={m.get('size', '-')})",
        f"wh-H {h['wh']['entropy_bits']:.2f} vs {ref.get('wh', {}).get('entropy_bits', float('nan')):.2f}",
    ]
    if sim is not None:
        parts.append(f"cos {sim:.3f} vs {ref_sim:.3f}")
    parts.append(
        f"top-opening {h['top_prefix']['share']:.0%} vs {ref.get('top_prefix', {}).get('share', 0):.0%}"
    )
    parts.append(f"NARROWING={h['narrowing']['warning']}")
    return "  ".join(parts)


def naive_pairs_per_s(texts: list[str], limit: float = 5.0) -> float:
    """Baseline: a Python double loop over fuzz.ratio, as a dedup without blocking would run."""
    done = 0
    start = time.perf_counter()
    for i in range(len(texts)):
        a = texts[i]
        for j in range(i):
            fuzz.ratio(a, texts[j])
        done += i
        if time.perf_counter() - start > limit:
            break
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--no-embed", action="store_true", help="skip MiniLM")
    args = parser.parse_args()
    embedder = None if args.no_embed else "minilm"

    squad = read_squad(args.squad)
    print(
        f"SQuAD: {len(squad)} questions, {len(squad.documents or ())} articles, {squad.chunks_total} paragraphs"
    )

    t = time.perf_counter()
    human = dataset_health(squad, embedder=embedder)
    print(f"\n[human set] ({time.perf_counter() - t:.1f}s)")
    print(
        f"  distinct-1/2/3 {human['distinct_1']:.3f} / {human['distinct_2']:.3f} / {human['distinct_3']:.3f}"
    )
    print(
        f"  wh entropy {human['wh']['entropy_bits']:.2f} bits; shares "
        + ", ".join(f"{k} {v:.0%}" for k, v in human["wh"]["shares"].items())
    )
    if human.get("similarity"):
        print(
            f"  mean pairwise cosine {human['similarity']['mean_cosine']:.3f} (sample {human['similarity']['sampled']})"
        )
    print(
        f"  answer words mean {human['answer_length']['mean']:.1f}, median {human['answer_length']['median']:.0f}, p90 {human['answer_length']['p90']:.0f}"
    )
    cov = human["coverage"]
    print(
        f"  coverage: {cov['documents_cited']}/{cov['documents_total']} articles, {cov['chunks_cited']}/{cov['chunks_total']} paragraphs"
    )

    print("\n[narrowing] (must be False, False, False, True)")
    a, b = halves(squad)
    rng = random.Random(1)
    sample = QASet(
        tuple(rng.sample(list(squad.pairs), 300)),
        name="sample",
        documents=squad.documents,
        chunks_total=squad.chunks_total,
    )
    col = collapsed(squad)
    results = {}
    for name, qs, ref in (
        ("first half vs second half", a, b),
        ("second half vs first half", b, a),
        ("300-question sample vs whole", sample, squad),
        ("templated collapsed set vs whole", col, squad),
    ):
        t = time.perf_counter()
        h = dataset_health(qs, reference=ref, embedder=embedder)
        results[name] = h["narrowing"]["warning"]
        print("  " + line(name, h) + f"  ({time.perf_counter() - t:.1f}s)")
        for reason in h["narrowing"]["reasons"]:
            print(f"      - {reason}")
    ok = list(results.values()) == [False, False, False, True]
    print(f"  expected outcome: {'yes' if ok else 'NO'}")

    print("\n[dedup] SQuAD questions")
    pairs = list(squad.pairs)
    n = len(pairs)
    npairs = n * (n - 1) // 2
    t = time.perf_counter()
    kept, removed = dedup(pairs, embedder=None)
    dt = time.perf_counter() - t
    print(
        f"  exact+near on {n} questions: {dt:.2f}s = {npairs / dt:,.0f} question pairs/s, {n / dt:,.0f} questions/s; removed {len(removed)}"
    )
    base = naive_pairs_per_s([normalise(p.question) for p in pairs])
    print(
        f"  baseline Python double loop (fuzz.ratio only): {base:,.0f} pairs/s -> blocked cdist is {npairs / dt / base:.1f}x faster while computing two scorers"
    )
    if embedder:
        t = time.perf_counter()
        kept, removed = dedup(pairs, embedder=embedder)
        dt = time.perf_counter() - t
        kinds: dict[str, int] = {}
        for r in removed:
            kind = r.reasons[0].message.split(" (")[0].split(" of ")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        print(
            f"  exact+near+paraphrase (MiniLM, embedding included): {dt:.1f}s = {npairs / dt:,.0f} question pairs/s; removed {len(removed)} {kinds}"
        )


if __name__ == "__main__":
    main()
