"""`grounded run` at scale, in-process and on Ray: same kept/rejected sets, stage throughput, memory.

    .venv/bin/python benchmarks/bench_scale.py [--docs 2000] [--pairs 300] [--embedder fast]

The corpus is >= 2,000 text files built from the SQuAD paragraphs and HaluEval knowledge texts in
../shared/bench plus generated filler (20 / 10 / 70 %, so doubling it keeps the mix). The LLM is
the test suite's fake (tests/fakes.py: quotes the passages' sentences, answers instantly, no
network), registered as a litellm provider in the same process, so every other part runs for
real: loading, chunking, embedding, Chroma, planning, the call cache, the checker, dedup, health
and the report. Each configuration runs in its own process, so the peak RSS is that run's driver:
  local N, Ray local with 2 workers on N (right after, so both load the same code), local 2N
  (memory flat when the corpus doubles?).
The kept and rejected sets of local N and Ray N are compared row by row (order aside).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
SQUAD = BENCH / "squad" / "dev-v1.1-part-a.json"
HALUEVAL = BENCH / "halueval" / "qa_one-turn_data.json"
FILLER_WORDS = (
    "river harbour council engine winter market bridge library garden station valley "
    "museum railway festival quarry mill canal orchard tower chapel"
).split()


def build_corpus(folder: Path, docs: int, *, seed: int = 0) -> int:
    """Write `docs` .txt files: 20% SQuAD paragraphs, 10% HaluEval knowledge texts, 70% filler."""
    folder.mkdir(parents=True, exist_ok=True)
    squad = [
        p["context"]
        for art in json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
        for p in art["paragraphs"]
    ]
    halu: list[str] = []
    with HALUEVAL.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                halu.append(json.loads(line)["knowledge"])
    n_squad, n_halu = docs // 5, docs // 10
    if n_squad > len(squad) or n_halu > len(halu):
        raise SystemExit(
            f"at most {min(5 * len(squad), 10 * len(halu))} documents from this bench data"
        )
    rng = random.Random(seed)
    texts = squad[:n_squad] + [_spaced(t) for t in halu[:n_halu]]
    texts += [_filler(rng, i) for i in range(docs - len(texts))]
    for i, text in enumerate(texts):
        (folder / f"doc{i:05d}.txt").write_text(text, encoding="utf-8")
    return len(texts)


def _spaced(text: str) -> str:
    # HaluEval joins its sentences without a space ("...century.First for Women is ...").
    out = []
    for i, ch in enumerate(text):
        out.append(ch)
        if ch == "." and i + 1 < len(text) and text[i + 1].isupper():
            out.append(" ")
    return "".join(out)


def _filler(rng: random.Random, i: int) -> str:
    sentences = []
    for j in range(rng.randint(4, 9)):
        words = rng.sample(FILLER_WORDS, 6)
        sentences.append(
            f"The {words[0]} of Northfield {i} opened in {1800 + (i * 7 + j) % 200} beside the "
            f"{words[1]} and the {words[2]}, with {rng.randint(2, 900)} {words[3]}s near the {words[4]}."
        )
    return " ".join(sentences)


def one(corpus: Path, out: Path, executor: str, pairs: int, embedder: str, trace: bool) -> dict:
    """One run in this process; its figures as a dict."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fakes import FakeLLM, register_fake

    import grounded

    digest = source_digest()
    model = register_fake(FakeLLM())  # quoting_responder: instant, quotes the passages exactly
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    # n beyond reach and a call budget: generation stops at max_calls, never at the n cap, whose
    # cut (which of the last round's pairs are written) depends on which call finished first.
    summary = grounded.run(
        [corpus],
        out=out,
        model=model,
        n=3 * pairs,  # below 3 per passage, so every call still asks for 3 pairs
        max_calls=-(-pairs // 3),
        embedder=embedder,
        chunk_tokens=256,
        overlap_tokens=0,
        executor=executor,
        workers=2 if executor == "ray" else 1,
    )
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    return {
        "source": digest,
        "executor": executor,
        "seconds": round(seconds, 1),
        "kept": summary.kept,
        "rejected": summary.rejected,
        "documents": summary.ingest["documents"],
        "chunks": summary.ingest["chunks"],
        "llm_calls": summary.llm_calls,
        "stages": summary.stages,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tracemalloc_peak_mb": round(traced / 2**20, 1) if traced is not None else None,
    }


def source_digest() -> str:
    """A hash of grounded's code and package data: runs to compare must have loaded the same."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((ROOT / "grounded").rglob("*")):
        if path.suffix in (".py", ".json") and path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def rows(path: Path) -> set[str]:
    """Rows as canonical JSON without their creation time: a set to compare runs by."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for holder in (row, row.get("pair") or {}):
            (holder.get("provenance") or {}).pop("created", None)
        out.add(json.dumps(row, sort_keys=True))
    return out


def spawn(corpus: Path, out: Path, executor: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        str(corpus),
        str(out),
        executor,
        "--pairs",
        str(args.pairs),
        "--embedder",
        args.embedder,
    ] + (["--tracemalloc"] if args.tracemalloc else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{executor} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(label: str, r: dict) -> None:
    st = r["stages"]
    rates = ", ".join(
        f"{name} {s['records_in']} in {s['seconds']:.1f}s ({s['records_per_s'] or 0:,.0f}/s)"
        for name, s in st.items()
    )
    print(
        f"{label}: {r['documents']} docs, {r['chunks']} chunks, {r['llm_calls']} calls, kept {r['kept']}, "
        f"rejected {r['rejected']}, {r['seconds']} s, peak driver RSS {r['peak_rss_mb']} MB"
        + (
            f", tracemalloc peak {r['tracemalloc_peak_mb']} MB"
            if r["tracemalloc_peak_mb"] is not None
            else ""
        )
    )
    print(f"  stages: {rates}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument(
        "--pairs", type=int, default=300, help="pairs asked for (the same for N and 2N)"
    )
    ap.add_argument("--embedder", default="fast")
    ap.add_argument(
        "--tracemalloc", action="store_true", help="also trace Python allocations (slower)"
    )
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--one", nargs=3, metavar=("CORPUS", "OUT", "EXECUTOR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        corpus, out, executor = args.one
        print(
            json.dumps(
                one(Path(corpus), Path(out), executor, args.pairs, args.embedder, args.tracemalloc)
            )
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small, big = root / "corpus-n", root / "corpus-2n"
        build_corpus(small, args.docs)
        build_corpus(big, 2 * args.docs)
        print(
            f"corpus: {args.docs} and {2 * args.docs} documents (SQuAD 20%, HaluEval 10%, filler 70%); "
            f"{args.pairs} pairs asked; embedder {args.embedder}; fake instant LLM"
        )
        local = spawn(small, root / "local-n", "local", args)
        show(f"in-process, {args.docs} docs", local)
        if not args.no_ray:  # right after the local run: both load the same code
            on_ray = spawn(small, root / "ray-n", "ray", args)
            show(f"Ray local (2 workers), {args.docs} docs", on_ray)
            same_kept = rows(root / "ray-n" / "qa.jsonl") == rows(root / "local-n" / "qa.jsonl")
            same_rej = rows(root / "ray-n" / "rejected.jsonl") == rows(
                root / "local-n" / "rejected.jsonl"
            )
            print(
                f"Ray vs in-process: identical kept set: {same_kept}; identical rejected set: {same_rej}; "
                f"time {on_ray['seconds'] / local['seconds']:.2f}x; peak driver RSS {on_ray['peak_rss_mb']} MB"
            )
            if on_ray["source"] != local["source"]:
                print(
                    "  (grounded's code changed between the two runs: the comparison is void, rerun)"
                )
        local2 = spawn(big, root / "local-2n", "local", args)
        show(f"in-process, {2 * args.docs} docs", local2)
        print(
            f"peak driver RSS 2N/N: {local2['peak_rss_mb'] / local['peak_rss_mb']:.2f}"
            + (
                f"; tracemalloc peak 2N/N: {local2['tracemalloc_peak_mb'] / local['tracemalloc_peak_mb']:.2f}"
                if args.tracemalloc
                else ""
            )
        )


if __name__ == "__main__":
    main()
