"""Tokens/s of the bundled SmolLM2 in its worker process, by thread count (same process, same prompt).

    python benchmarks/bench_local_model.py [--threads 1 2] [--tokens 96]

Prints load time, prompt and completion tokens/s per thread count, and the ratio to the first.
"""

from __future__ import annotations

import argparse
import time

from grounded.local_llm import LocalLLM

PASSAGE = (
    "The Skerry Point lighthouse was built in 1843 by the engineer Alan Stevenson. Its tower is "
    "48 metres tall and is made of granite brought from Aberdeen. The light was automated in 1984."
)


def measure(threads: int, tokens: int) -> tuple[float, float]:
    llm = LocalLLM(n_threads=threads)
    messages = [
        {"role": "user", "content": f"{PASSAGE}\n\nWrite three questions about the passage."}
    ]
    try:
        started = time.monotonic()
        llm.chat("smollm2", [{"role": "user", "content": "Hi"}], {"max_tokens": 1})
        load = time.monotonic() - started
        started = time.monotonic()
        reply = llm.chat("smollm2", messages, {"max_tokens": tokens, "temperature": 0.0, "seed": 0})
        seconds = time.monotonic() - started
    finally:
        llm.close()
    done = int(reply["usage"]["completion_tokens"])
    return load, done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()
    base = None
    for threads in args.threads:
        load, rate = measure(threads, args.tokens)
        base = base or rate
        print(
            f"threads {threads}: worker start + load {load:.1f} s, {rate:.1f} tokens/s "
            f"(x{rate / base:.2f} of threads {args.threads[0]})",
            flush=True,
        )


if __name__ == "__main__":
    main()
