"""Run generate() in a subprocess with a slow fake model (for the kill -9 test).

usage: fake_run.py OUT LOG DELAY N PAIRS_PER_CALL CONCURRENCY
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for fakes.py

from fakes import FakeChecker, FakeIndex, FakeLLM, register_fake  # noqa: E402

from grounded.generation import generate  # noqa: E402


def corpus_index() -> FakeIndex:
    docs = {}
    for p in sorted((HERE / "corpus").glob("*.txt")):
        docs[p.stem] = [b for b in p.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    return FakeIndex.from_texts(docs)


def main() -> None:
    out, log, delay, n, k, conc = sys.argv[1:7]
    model = register_fake(FakeLLM(delay=float(delay), log=log))
    summary = generate(
        index=corpus_index(),
        out=out,
        n=int(n),
        pairs_per_call=int(k),
        concurrency=int(conc),
        model=model,
        checker=FakeChecker(),
    )
    print(json.dumps(summary.to_dict()))


if __name__ == "__main__":
    main()
