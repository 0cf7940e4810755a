"""LLM calls per kept (checker-passed) pair, generating from SQuAD v1.1 dev paragraphs.

    .venv/bin/python benchmarks/bench_generate_squad.py [--model M] [--paragraphs 24] [--pairs 24]

Target with a capable model: <= 0.5 calls per kept pair (3 pairs per call, most kept). The
default is the embedded SmolLM2-135M (offline, CPU); expect far more calls per kept pair from it.
Calls include repair attempts and top-up rounds; the checker is `grounded.checker.default_checker()`.
Data: /work/shared/bench/squad/dev-v1.1-part-a.json (CC BY-SA 4.0).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grounded.checker import default_checker
from grounded.generation import generate
from grounded.jsonl import read_jsonl
from grounded.types import Chunk, Hit

SQUAD = Path("/work/shared/bench/squad/dev-v1.1-part-a.json")


class ParagraphIndex:
    """The Index read interface over SQuAD paragraphs, one chunk each (no embeddings needed
    for single-passage prompts; `similar` is not used)."""

    def __init__(self, paragraphs: list[tuple[str, str]]) -> None:
        self._chunks = [
            Chunk(Chunk.make_id(doc, 0, len(text)), doc, text, 0, len(text), title=doc)
            for doc, text in paragraphs
        ]

    def chunks(self) -> Iterator[Chunk]:
        return iter(self._chunks)

    def get_chunks(self, ids: list[str]) -> list[Chunk]:
        return [c for c in self._chunks if c.id in set(ids)]

    def similar(self, chunk: Chunk, k: int = 5) -> list[Hit]:
        raise NotImplementedError("single-passage prompts only")

    def documents(self) -> list[dict[str, Any]]:
        return [
            {"doc_id": c.doc_id, "sources": [], "title": c.title, "chunks": 1} for c in self._chunks
        ]


def sample(paragraphs: int, seed: int) -> list[tuple[str, str]]:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    rng = random.Random(seed)
    out = []
    for i in range(paragraphs):
        art = data[i % len(data)]
        para = rng.choice(art["paragraphs"])["context"]
        out.append((f"{art['title']}-{i}", para))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="litellm model (default: local SmolLM2)")
    ap.add_argument("--paragraphs", type=int, default=24)
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--pairs-per-call", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="keep outputs here (default: a temp dir)")
    args = ap.parse_args()
    index = ParagraphIndex(sample(args.paragraphs, args.seed))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-squad-"))
    start = time.perf_counter()
    s = generate(
        index=index,
        out=out,
        n=args.pairs,
        model=args.model,
        pairs_per_call=args.pairs_per_call,
        concurrency=4,
        checker=default_checker(),
        timeout=300,
    )
    elapsed = time.perf_counter() - start
    calls = s.llm_calls + s.cached_calls
    print(
        f"model {s.model}; {args.paragraphs} SQuAD paragraphs; asked for {args.pairs} pairs, {args.pairs_per_call} per call"
    )
    print(
        f"calls {calls} ({s.llm_calls} new, {s.cached_calls} cached; planned first round {s.planned_calls}); "
        f"kept {s.kept}; rejected {s.rejected}; duplicates {s.duplicates}"
    )
    ratio = f"{calls / s.kept:.2f}" if s.kept else "inf (nothing kept)"
    print(f"LLM calls per kept pair: {ratio} (target <= 0.5 with a capable model)")
    print(f"rejections by reason: {s.rejected_by_reason}")
    print(f"tokens {s.prompt_tokens}+{s.completion_tokens}; cost ${s.cost:.4f}; {elapsed:.0f} s")
    for row in list(read_jsonl(out / "qa.jsonl"))[:5] if (out / "qa.jsonl").exists() else []:
        print(f"  kept: {row['question']} -> {row['answer']}")
    print(f"outputs: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
