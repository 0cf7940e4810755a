"""The local models on the example corpus: speed, prefix reuse and seconds per kept pair.

    python benchmarks/bench_local_model.py                       # Qwen (default) and SmolLM2, -n 6
    python benchmarks/bench_local_model.py --n 12 --models qwen2.5-coder-1.5b
    python benchmarks/bench_local_model.py --threads-only        # tokens/s by thread count

For each model, in this process one after the other: `grounded run examples/corpus -n N` into a
fresh folder (ingest included, `--verify` at its default: a local model reads its own pairs back),
then the worker's own counts: prompt tokens asked for and evaluated (the rest came from a reused
prefix: the hit rate), prompt and generated tokens/s while llama.cpp evaluated them, the run's
wall time, kept pairs and seconds per kept pair, with the ratio to the first model.
`--threads-only`: one fixed completion per thread count (GROUNDED_LOCAL_THREADS picks the run's).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSAGE = (
    "The Skerry Point lighthouse was built in 1843 by the engineer Alan Stevenson. Its tower is "
    "48 metres tall and is made of granite brought from Aberdeen. The light was automated in 1984."
)


def run_once(model: str, n: int) -> dict[str, float]:
    import grounded
    from grounded import local_llm

    local_llm.register()
    engine = local_llm.engine()
    engine.close()  # a fresh worker: its counts are this run's
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        summary = grounded.run(
            [ROOT / "examples" / "corpus"], out=Path(tmp) / "out", n=n, model=model
        )
        wall = time.monotonic() - started
        stats = engine.request({"op": "stats"})
    engine.close()
    prompt, evaluated = stats["prompt_tokens"], stats["prompt_evaluated"]
    return {
        "wall_s": wall,
        "kept": summary.kept,
        "calls": summary.llm_calls,
        "s_per_kept": wall / summary.kept if summary.kept else float("nan"),
        "prompt_tokens": prompt,
        "prefix_hit": 1 - evaluated / prompt if prompt else 0.0,
        "prompt_tps": evaluated / stats["prompt_s"] if stats["prompt_s"] else 0.0,
        "gen_tps": stats["completion_tokens"] / stats["generated_s"]
        if stats["generated_s"]
        else 0.0,
    }


def threads_only(threads: list[int], tokens: int) -> None:
    from grounded.local_llm import LocalLLM

    base = None
    for n in threads:
        llm = LocalLLM(n_threads=n)
        messages = [{"role": "user", "content": f"{PASSAGE}\n\nWrite three questions about it."}]
        try:
            started = time.monotonic()
            llm.chat("default", [{"role": "user", "content": "Hi"}], {"max_tokens": 1})
            load = time.monotonic() - started
            started = time.monotonic()
            reply = llm.chat("default", messages, {"max_tokens": tokens, "temperature": 0.0})
            rate = int(reply["usage"]["completion_tokens"]) / (time.monotonic() - started)
        finally:
            llm.close()
        base = base or rate
        print(f"threads {n}: load {load:.1f} s, {rate:.1f} tokens/s (x{rate / base:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-1.5b", "smollm2"])
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--threads-only", action="store_true")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()
    if args.threads_only:
        threads_only(args.threads, args.tokens)
        return
    print(
        f"{'model':20} {'wall s':>7} {'calls':>5} {'kept':>4} {'s/kept':>7} {'prompt tok':>10} "
        f"{'prefix hit':>10} {'prompt t/s':>10} {'gen t/s':>7}"
    )
    first = None
    for name in args.models:
        f = run_once(f"grounded-local/{name}", args.n)
        first = first or f
        print(
            f"{name:20} {f['wall_s']:7.0f} {f['calls']:5.0f} {f['kept']:4.0f} {f['s_per_kept']:7.1f} "
            f"{f['prompt_tokens']:10.0f} {f['prefix_hit']:10.2f} {f['prompt_tps']:10.1f} "
            f"{f['gen_tps']:7.1f}   s/kept x{f['s_per_kept'] / first['s_per_kept']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
