"""How long `grounded run`'s event loop is blocked while candidates are checked.

    .venv/bin/python benchmarks/bench_loop_lag.py [--articles 8] [-n 40]

The oracle corpus: held-out SQuAD articles, and a perfect generator on loopback (an
OpenAI-compatible server, tests/fault_server.py, that answers each call with the human SQuAD
pairs of the passages shown; in a process of its own, as a real server is, so its work never
competes with the run's for the GIL). The real run (default checker, `--embedder fast`) goes on as usual
while a probe task on the run's event loop sleeps 5 ms at a time and records how late it wakes:
the lag is how long the loop could read no socket and cache no reply. Each mode runs in a fresh
process (so each pays the checker's first load and litellm's first call):

    sync      the first path: each call's candidates checked on the event loop
    thread    checks in the check thread; each reply parsed, its quotes located and its rows
              written on the loop; the checker's models and litellm set up on first use
    off-loop  the default: that per-reply work in the check thread too, and the checker's models
              and litellm's first-call setup loaded before the loop starts

Prints, per mode, the longest block and the total blocked time (wake-ups later than 1 ms), the
longest single callback on the loop (what asyncio's debug mode calls slow: a block is longer when
several replies are handled in one turn of the loop), and the kept pairs, which must be the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SQUAD = Path("/work/shared/bench/squad/dev-v1.1-part-a.json")
TICK = 0.005
COUNTED = 0.001  # lateness below this is scheduling noise, not a block
MODES = ("sync", "thread", "off-loop")


def write_corpus(folder: Path, articles: int) -> list[dict[str, str]]:
    """The last `articles` SQuAD articles as text files; their pairs with the sentence quoted."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"][-articles:]
    pairs = []
    for i, art in enumerate(data):
        paragraphs = [p["context"] for p in art["paragraphs"]]
        (folder / f"a{i}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                ans = qa["answers"][0]
                start = p["context"].rfind(". ", 0, ans["answer_start"])
                end = p["context"].find(". ", ans["answer_start"])
                quote = p["context"][start + 2 if start >= 0 else 0 : end + 1 if end >= 0 else None]
                pairs.append({"quote": quote, "answer": ans["text"], "question": qa["question"]})
    return pairs


def oracle(pairs: list[dict[str, str]]) -> Any:
    """A server reply function: the SQuAD pairs whose quote lies in a passage shown."""
    from fakes import passages_of, requested_n
    from fault_server import ok

    quotes = [re.sub(r"\s+", " ", p["quote"]) for p in pairs]

    def answer(body: dict[str, Any]) -> Any:
        messages = body.get("messages") or []
        shown = re.sub(r"\s+", " ", "\n".join(passages_of(messages)))
        found = [p for p, quote in zip(pairs, quotes, strict=True) if quote in shown]
        return ok(json.dumps({"pairs": found[: requested_n(messages)]}))

    return answer


LAGS: list[float] = []
PROBING: list[bool] = []  # non-empty while a run's probe is on


async def probe() -> None:
    """Sleep 5 ms at a time and record how late each wake-up is."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(TICK)
        LAGS.append(time.perf_counter() - start - TICK)


def time_callbacks() -> list[float]:
    """Time every callback the event loops run (what asyncio's debug mode reports as slow)."""
    durations: list[float] = []
    run = asyncio.events.Handle._run

    def timed(self: asyncio.events.Handle) -> None:
        start = time.perf_counter()
        try:
            run(self)
        finally:
            if PROBING:
                durations.append(time.perf_counter() - start)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    return durations


def probe_runs(generation: Any) -> None:
    """Run the probe on the loop of each generate run while its calls run (not on a loop of
    its own, such as litellm's warm-up's, where no reply is waited for)."""
    execute = generation._Run.execute

    async def probed(self: Any, *args: Any, **kw: Any) -> Any:
        task = asyncio.ensure_future(probe())
        PROBING.append(True)
        try:
            return await execute(self, *args, **kw)
        finally:
            PROBING.clear()
            task.cancel()

    generation._Run.execute = probed


def serve(folder: Path, articles: int) -> None:
    """Write the corpus into `folder`, print the oracle server's URL, serve until stdin closes."""
    from fault_server import FaultServer

    pairs = write_corpus(folder, articles)
    with FaultServer(default=oracle(pairs)) as server:
        print(server.url, flush=True)
        sys.stdin.read()


def run_mode(mode: str, articles: int, n: int) -> dict[str, Any]:
    import grounded
    from grounded.generation import api as generation_api
    from grounded.generation import run as generation
    from grounded.stages import CheckStage

    if mode in ("sync", "thread"):

        async def on_loop(self: Any, fn: Any, *args: Any) -> Any:
            return fn(*args)  # on the loop, as before

        generation._Run._off_loop = on_loop  # type: ignore[method-assign]
        generation_api.warm_llm = lambda model: None  # type: ignore[assignment]
        CheckStage.warm = lambda self: None  # type: ignore[method-assign]
    if mode == "sync":

        def inline(self: CheckStage, fn: Any, *args: Any) -> asyncio.Future[Any]:
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(fn(*args))  # on the loop, as before the check thread
            return fut

        CheckStage.in_thread = inline  # type: ignore[method-assign]
    probe_runs(generation)
    callbacks = time_callbacks()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(docs), "--articles", str(articles)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            started = time.perf_counter()
            summary = grounded.run(
                [docs],
                out=Path(tmp) / "out",
                model="openai/oracle",
                api_base=url,
                n=n,
                embedder="fast",
            )
            seconds = time.perf_counter() - started
        finally:
            server.communicate()  # closes its stdin: the server stops
        kept = [
            json.loads(line)["question"]
            for line in (Path(tmp) / "out" / "qa.jsonl").read_text().splitlines()
        ]
    lags = LAGS
    return {
        "mode": mode,
        "max_block_ms": round(1000 * max(lags, default=0.0), 1),
        "total_block_ms": round(1000 * sum(x for x in lags if x > COUNTED), 1),
        "max_callback_ms": round(1000 * max(callbacks, default=0.0), 1),
        "ticks": len(lags),
        "llm_calls": summary.llm_calls,
        "kept": len(kept),
        "kept_questions": kept,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=8)
    ap.add_argument("-n", type=int, default=40)
    ap.add_argument("--mode", choices=MODES, help="run one mode here (internal)")
    ap.add_argument("--serve", type=Path, help="run the oracle server (internal)")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.articles)
        return
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.articles, args.n)))
        return
    results = []
    for mode in MODES:
        out = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--articles", str(args.articles)]
            + ["-n", str(args.n)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"{'mode':<10}{'longest block':>15}{'total blocked':>15}{'longest callback':>18}"
        f"{'calls':>7}{'kept':>6}{'s':>7}"
    )
    for r in results:
        print(
            f"{r['mode']:<10}{r['max_block_ms']:>12.1f} ms{r['total_block_ms']:>12.1f} ms"
            f"{r['max_callback_ms']:>15.1f} ms"
            f"{r['llm_calls']:>7}{r['kept']:>6}{r['seconds']:>7}"
        )
    same = all(r["kept_questions"] == results[0]["kept_questions"] for r in results)
    print(f"same kept pairs in every mode: {same}")


if __name__ == "__main__":
    main()
