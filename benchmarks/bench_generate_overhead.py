"""Orchestration overhead of `generate`: pairs/s with an instant fake LLM (target >= 500/s at
concurrency 32), and with a simulated 20 ms model latency to show what concurrency buys.

    .venv/bin/python benchmarks/bench_generate_overhead.py [--pairs 1500]

Everything except the model runs for real: planning over SQuAD paragraphs, prompt rendering,
SQLite call cache, JSON extraction + pydantic validation, quote alignment, JSONL writes (fsync
per call). The checker is a pass-through so the figure is generate's own overhead.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes import FakeIndex, FakeLLM, register_fake  # noqa: E402

from grounded.generation import generate  # noqa: E402
from grounded.types import Verdict  # noqa: E402

SQUAD = Path("/work/shared/bench/squad/dev-v1.1-part-a.json")


class PassChecker:
    def check(self, pair, sources):  # noqa: ANN001, ANN201
        return Verdict(True, 1.0)


def squad_index() -> FakeIndex:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    docs = {f"a{i}": [p["context"] for p in art["paragraphs"]] for i, art in enumerate(data)}
    return FakeIndex.from_texts(docs)


def measure(index: FakeIndex, pairs: int, concurrency: int, delay: float) -> tuple[float, dict]:
    fake = FakeLLM(delay=delay)
    model = register_fake(fake)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        s = generate(
            index=index,
            out=tmp,
            n=pairs,
            model=model,
            concurrency=concurrency,
            pairs_per_call=3,
            checker=PassChecker(),
            max_rounds=1,
        )
        elapsed = time.perf_counter() - start
    return s.kept / elapsed, s.to_dict()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1500)
    args = ap.parse_args()
    index = squad_index()
    print(
        f"index: {sum(1 for _ in index.chunks())} SQuAD paragraphs; {args.pairs} pairs, 3 per call"
    )
    measure(index, 30, 4, 0.0)  # warm imports and litellm's first-call setup
    for delay in (0.0, 0.02):
        label = "instant fake" if delay == 0 else f"{delay * 1000:.0f} ms fake"
        base, s1 = measure(index, args.pairs, 1, delay)
        fast, s32 = measure(index, args.pairs, 32, delay)
        print(
            f"{label:>13}: concurrency 1: {base:7.1f} pairs/s | concurrency 32: {fast:7.1f} pairs/s "
            f"| ratio {fast / base:4.2f}x | kept {s32['kept']}, calls {s32['llm_calls']}"
        )


if __name__ == "__main__":
    main()
